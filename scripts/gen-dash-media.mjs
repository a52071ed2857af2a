#!/usr/bin/env node
// Generates the DASH test media (media/dash/) the dash.js demo, benchmark and browser tests play:
// the same synthetic clip as gen-media.mjs (testsrc2 + sine, CBR, keyframes every 2 s), encoded
// once (two video renditions + one audio track, each a separate file), then packaged by stream
// copy with ffmpeg's DASH muxer into three addressing flavours sharing identical segments:
//   media/dash/number/manifest.mpd   SegmentTemplate with $Number$ (no timeline)
//   media/dash/time/manifest.mpd     SegmentTemplate + SegmentTimeline with $Time$
//   media/dash/ranges/manifest.mpd   one file per representation, SegmentList with mediaRange byte ranges
// media/dash/manifest.json is written last and marks the set complete (idempotent; gen-media's
// --force wipes media/, which simply makes this run again).
// Usage: node scripts/gen-dash-media.mjs [--force] [--seconds 60] [--out DIR (default media/dash)]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SEG_S = 2;
const FPS = 30;
export const DASH_RENDITIONS = [
  { id: 'v360', width: 640, height: 360, vkbps: 800 },
  { id: 'v720', width: 1280, height: 720, vkbps: 2000 },
];
const AUDIO_KBPS = 128;
export const DASH_FLAVOURS = ['number', 'time', 'ranges'];

function ffmpeg(args, label) {
  const t0 = Date.now();
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new Error(`ffmpeg not runnable (${r.error.message}); install ffmpeg`);
  if (r.status !== 0) throw new Error(`ffmpeg failed (${label}), exit ${r.status}`);
  console.log(`  ${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export function dashMediaComplete(outDir = path.join(ROOT, 'media', 'dash')) {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
    return Array.isArray(m.files) && m.files.length > 0 && m.files.every((f) => fs.existsSync(path.join(outDir, f)));
  } catch {
    return false;
  }
}

export function generateDashMedia({ outDir = path.join(ROOT, 'media', 'dash'), seconds = 60, force = false } = {}) {
  if (!force && dashMediaComplete(outDir)) {
    console.log(`dash media: complete in ${path.relative(process.cwd(), outDir) || '.'} (skip; --force to redo)`);
    return JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
  }
  fs.rmSync(outDir, { recursive: true, force: true });
  const mezz = path.join(outDir, '.mezzanine');
  fs.mkdirSync(mezz, { recursive: true });
  console.log(`dash media: encoding ${seconds} s, ${DASH_RENDITIONS.map((r) => r.id).join(' + ')} + audio (${SEG_S} s GOPs)`);
  const split = DASH_RENDITIONS.map((_, i) => `[v${i}]`).join('');
  const scales = DASH_RENDITIONS.map((r, i) => `[v${i}]scale=${r.width}:${r.height}[o${i}]`).join(';');
  const enc = [
    '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=${FPS}:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:beep_factor=4:sample_rate=48000:duration=${seconds}`,
    '-filter_complex', `[0:v]split=${DASH_RENDITIONS.length}${split};${scales}`,
  ];
  DASH_RENDITIONS.forEach((r, i) => {
    const k = r.vkbps;
    enc.push(
      '-map', `[o${i}]`, '-an',
      '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-level', '3.1', '-pix_fmt', 'yuv420p',
      '-b:v', `${k}k`, '-minrate', `${k}k`, '-maxrate', `${k}k`, '-bufsize', `${k}k`,
      '-x264-params', 'nal-hrd=cbr:scenecut=0',
      '-g', String(FPS * SEG_S), '-keyint_min', String(FPS * SEG_S),
      '-force_key_frames', `expr:gte(t,n_forced*${SEG_S})`,
      path.join(mezz, `${r.id}.mp4`),
    );
  });
  enc.push('-map', '1:a', '-vn', '-c:a', 'aac', '-b:a', `${AUDIO_KBPS}k`, '-ac', '2', path.join(mezz, 'audio.mp4'));
  ffmpeg(enc, 'encode');

  const inputs = [...DASH_RENDITIONS.map((r) => path.join(mezz, `${r.id}.mp4`)), path.join(mezz, 'audio.mp4')];
  const files = [];
  for (const flavour of DASH_FLAVOURS) {
    const dir = path.join(outDir, flavour);
    fs.mkdirSync(dir, { recursive: true });
    const args = [];
    for (const f of inputs) args.push('-i', f);
    inputs.forEach((_, i) => args.push('-map', String(i)));
    args.push('-c', 'copy', '-f', 'dash', '-seg_duration', String(SEG_S), '-adaptation_sets', 'id=0,streams=v id=1,streams=a');
    if (flavour === 'number') {
      args.push('-use_template', '1', '-use_timeline', '0',
        '-init_seg_name', 'init-$RepresentationID$.m4s', '-media_seg_name', 'seg-$RepresentationID$-$Number%05d$.m4s');
    } else if (flavour === 'time') {
      args.push('-use_template', '1', '-use_timeline', '1',
        '-init_seg_name', 'init-$RepresentationID$.m4s', '-media_seg_name', 'seg-$RepresentationID$-$Time$.m4s');
    } else {
      args.push('-single_file', '1', '-single_file_name', 'rep-$RepresentationID$.mp4');
    }
    args.push(path.join(dir, 'manifest.mpd'));
    ffmpeg(args, `dash/${flavour}`);
    if (flavour === 'time') {
      // ffmpeg 5.1 names the first AAC segment after its negative priming DTS (`-1024`) while
      // its MPD says S@t=0: give the file the name the MPD asks for.
      for (const f of fs.readdirSync(dir)) {
        const m = /^(seg-.+)--\d+\.m4s$/.exec(f);
        if (m) fs.renameSync(path.join(dir, f), path.join(dir, `${m[1]}-0.m4s`));
      }
    }
    for (const f of fs.readdirSync(dir)) files.push(path.posix.join(flavour, f));
  }
  fs.rmSync(mezz, { recursive: true, force: true });
  const manifest = {
    generated: new Date().toISOString(),
    seconds,
    segmentSeconds: SEG_S,
    renditions: DASH_RENDITIONS,
    audioKbps: AUDIO_KBPS,
    mpds: Object.fromEntries(DASH_FLAVOURS.map((f) => [f, `${f}/manifest.mpd`])),
    files: files.sort(),
  };
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  let bytes = 0;
  for (const f of files) bytes += fs.statSync(path.join(outDir, f)).size;
  console.log(`dash media: wrote ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB under ${path.relative(process.cwd(), outDir) || outDir}/`);
  return manifest;
}

/** Generates media/dash if missing or incomplete; returns its absolute path. */
export function ensureDashMedia({ outDir = path.join(ROOT, 'media', 'dash'), seconds = 60 } = {}) {
  if (!dashMediaComplete(outDir)) generateDashMedia({ outDir, seconds });
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name, def) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : def;
  };
  try {
    generateDashMedia({
      outDir: path.resolve(opt('--out', path.join(ROOT, 'media', 'dash'))),
      seconds: Number(opt('--seconds', 60)),
      force: argv.includes('--force'),
    });
  } catch (e) {
    console.error(`gen-dash-media: ${e.message}`);
    process.exit(1);
  }
}
