#!/usr/bin/env node
// Generates the test media the demo, the benchmark and the browser tests play:
// a synthetic clip (testsrc2 + sine) encoded once per rendition, then packaged (stream copy,
// no re-encode) as HLS in three flavours that share the same 2 s GOPs:
//   media/ts/        master.m3u8 + MPEG-TS variants
//   media/fmp4/      master.m3u8 + fMP4 variants (init.mp4 + .m4s)
//   media/byterange/ master.m3u8 + one .ts file per variant addressed with EXT-X-BYTERANGE
// media/manifest.json is written last and marks the set complete, so an interrupted run is
// redone and a complete one is skipped (idempotent). Usage: node scripts/gen-media.mjs [--force]
// [--seconds 60] [--out DIR]. gen-dash-media.mjs (media/dash/) reuses the ffmpeg helpers exported here.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const RENDITIONS = [
  // CBR keeps segment sizes close to the advertised bandwidth, which makes offload and
  // bytes-per-viewer figures comparable between runs.
  { name: '360p', width: 640, height: 360, vkbps: 800, akbps: 96 },
  { name: '720p', width: 1280, height: 720, vkbps: 2000, akbps: 128 },
];
export const SEG_S = 2;
export const FPS = 30;
// H.264 Main@3.1 and AAC-LC, stated in the master playlist so players need no probing.
const CODECS = 'avc1.4d401f,mp4a.40.2';

/** Runs ffmpeg quietly; throws with `label` if it fails. */
export function ffmpeg(args, label) {
  const t0 = Date.now();
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error) throw new Error(`ffmpeg not runnable (${r.error.message}); install ffmpeg`);
  if (r.status !== 0) throw new Error(`ffmpeg failed (${label}), exit ${r.status}`);
  console.log(`  ${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * ffmpeg inputs of the synthetic clip (testsrc2 + sine) and a filter graph that scales the video
 * to each size: stream `[o<i>]` is `sizes[i]`, the audio is input `1:a`.
 */
export function synthClipArgs(seconds, sizes) {
  const split = sizes.map((_, i) => `[v${i}]`).join('');
  const scales = sizes.map((r, i) => `[v${i}]scale=${r.width}:${r.height}[o${i}]`).join(';');
  return [
    '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=${FPS}:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:beep_factor=4:sample_rate=48000:duration=${seconds}`,
    '-filter_complex', `[0:v]split=${sizes.length}${split};${scales}`,
  ];
}

/**
 * H.264 Main@`level` (3.1 unless told) at a constant `kbps`, keyframes exactly every SEG_S seconds, so every flavour
 * can be cut by stream copy at identical boundaries (CBR keeps segment sizes comparable).
 */
export function x264CbrArgs(kbps, level = '3.1') {
  return [
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-level', level, '-pix_fmt', 'yuv420p',
    '-b:v', `${kbps}k`, '-minrate', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${kbps}k`,
    '-x264-params', 'nal-hrd=cbr:scenecut=0',
    '-g', String(FPS * SEG_S), '-keyint_min', String(FPS * SEG_S),
    '-force_key_frames', `expr:gte(t,n_forced*${SEG_S})`,
  ];
}

/** True when `outDir/manifest.json` lists files that all exist (a finished, complete run). */
export function setComplete(outDir) {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
    return Array.isArray(m.files) && m.files.length > 0 && m.files.every((f) => fs.existsSync(path.join(outDir, f)));
  } catch {
    return false;
  }
}

/** Writes `outDir/manifest.json` last (it marks the set complete) and prints the total size. */
export function writeSetManifest(outDir, manifest, label) {
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  let bytes = 0;
  for (const f of manifest.files) bytes += fs.statSync(path.join(outDir, f)).size;
  console.log(`${label}: wrote ${manifest.files.length} files, ${(bytes / 1e6).toFixed(1)} MB under ${path.relative(process.cwd(), outDir) || outDir}/`);
}

/** Command-line entry of a generator module: `--out DIR`, `--seconds N`, `--force`. */
export function runCli(moduleUrl, name, defaultOut, generate) {
  if (!process.argv[1] || path.resolve(process.argv[1]) !== fileURLToPath(moduleUrl)) return;
  const argv = process.argv.slice(2);
  const opt = (flag, def) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : def;
  };
  try {
    generate({ outDir: path.resolve(opt('--out', defaultOut)), seconds: Number(opt('--seconds', 60)), force: argv.includes('--force') });
  } catch (e) {
    console.error(`${name}: ${e.message}`);
    process.exit(1);
  }
}

function masterPlaylist(flavour, variantUri) {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:' + (flavour === 'fmp4' ? 7 : 4), '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const r of RENDITIONS) {
    const bw = Math.round((r.vkbps + r.akbps) * 1000 * 1.1);
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${bw},AVERAGE-BANDWIDTH=${(r.vkbps + r.akbps) * 1000},` +
        `RESOLUTION=${r.width}x${r.height},FRAME-RATE=${FPS}.000,CODECS="${CODECS}"`,
      `${r.name}/${variantUri}`,
    );
  }
  return lines.join('\n') + '\n';
}

export function mediaComplete(outDir = path.join(ROOT, 'media')) {
  return setComplete(outDir);
}

export function generateMedia({ outDir = path.join(ROOT, 'media'), seconds = 60, force = false } = {}) {
  if (!force && mediaComplete(outDir)) {
    console.log(`media: complete in ${path.relative(process.cwd(), outDir) || '.'} (skip; --force to redo)`);
    return JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
  }
  fs.rmSync(outDir, { recursive: true, force: true });
  const mezz = path.join(outDir, '.mezzanine');
  fs.mkdirSync(mezz, { recursive: true });
  console.log(`media: encoding ${seconds} s, ${RENDITIONS.map((r) => r.name).join(' + ')} (x264 veryfast, ${SEG_S} s GOPs)`);

  // One decode of the sources, one encode per rendition.
  const args = synthClipArgs(seconds, RENDITIONS);
  RENDITIONS.forEach((r, i) => {
    args.push(
      '-map', `[o${i}]`, '-map', '1:a',
      ...x264CbrArgs(r.vkbps),
      '-c:a', 'aac', '-b:a', `${r.akbps}k`, '-ac', '2',
      '-movflags', '+faststart',
      path.join(mezz, `${r.name}.mp4`),
    );
  });
  ffmpeg(args, 'encode');

  const files = [];
  for (const flavour of ['ts', 'fmp4', 'byterange']) {
    for (const r of RENDITIONS) {
      const dir = path.join(outDir, flavour, r.name);
      fs.mkdirSync(dir, { recursive: true });
      const hls = ['-i', path.join(mezz, `${r.name}.mp4`), '-map', '0', '-c', 'copy', '-f', 'hls',
        '-hls_time', String(SEG_S), '-hls_playlist_type', 'vod', '-hls_list_size', '0'];
      if (flavour === 'ts') {
        hls.push('-hls_segment_type', 'mpegts', '-hls_segment_filename', path.join(dir, 'seg_%03d.ts'));
      } else if (flavour === 'fmp4') {
        hls.push('-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'init.mp4',
          '-hls_segment_filename', path.join(dir, 'seg_%03d.m4s'));
      } else {
        hls.push('-hls_segment_type', 'mpegts', '-hls_flags', 'single_file',
          '-hls_segment_filename', path.join(dir, 'main.ts'));
      }
      hls.push(path.join(dir, 'index.m3u8'));
      ffmpeg(hls, `${flavour}/${r.name}`);
      for (const f of fs.readdirSync(dir)) files.push(path.posix.join(flavour, r.name, f));
    }
    fs.writeFileSync(path.join(outDir, flavour, 'master.m3u8'), masterPlaylist(flavour, 'index.m3u8'));
    files.push(`${flavour}/master.m3u8`);
  }
  fs.rmSync(mezz, { recursive: true, force: true });

  const manifest = {
    generated: new Date().toISOString(),
    seconds,
    segmentSeconds: SEG_S,
    renditions: RENDITIONS,
    masters: { ts: 'ts/master.m3u8', fmp4: 'fmp4/master.m3u8', byterange: 'byterange/master.m3u8' },
    files: files.sort(),
  };
  writeSetManifest(outDir, manifest, 'media');
  for (const [k, v] of Object.entries(manifest.masters)) console.log(`  ${k.padEnd(9)} ${v}`);
  return manifest;
}

runCli(import.meta.url, 'gen-media', path.join(ROOT, 'media'), generateMedia);
