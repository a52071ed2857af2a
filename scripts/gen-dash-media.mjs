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
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEG_S, ffmpeg, runCli, setComplete, synthClipArgs, writeSetManifest, x264CbrArgs } from './gen-media.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DASH_RENDITIONS = [
  { id: 'v360', width: 640, height: 360, vkbps: 800 },
  { id: 'v720', width: 1280, height: 720, vkbps: 2000 },
];
const AUDIO_KBPS = 128;
export const DASH_FLAVOURS = ['number', 'time', 'ranges'];

export function dashMediaComplete(outDir = path.join(ROOT, 'media', 'dash')) {
  return setComplete(outDir);
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
  const enc = synthClipArgs(seconds, DASH_RENDITIONS);
  DASH_RENDITIONS.forEach((r, i) => enc.push('-map', `[o${i}]`, '-an', ...x264CbrArgs(r.vkbps), path.join(mezz, `${r.id}.mp4`)));
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
  writeSetManifest(outDir, manifest, 'dash media');
  return manifest;
}

/** Generates media/dash if missing or incomplete; returns its absolute path. */
export function ensureDashMedia({ outDir = path.join(ROOT, 'media', 'dash'), seconds = 60 } = {}) {
  if (!dashMediaComplete(outDir)) generateDashMedia({ outDir, seconds });
  return outDir;
}

runCli(import.meta.url, 'gen-dash-media', path.join(ROOT, 'media', 'dash'), generateDashMedia);
