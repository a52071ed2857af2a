#!/usr/bin/env node
// Generates the high-bitrate test stream (media/hibitrate/) the benchmark plays with
// `--media hibitrate`: a 15 Mbit/s rendition over a 1 Mbit/s one, 2 s MPEG-TS segments (HLS).
// The bitrate of a 4K stream at a fraction of its decoding cost: small frames (640x360 and
// 320x180) filled with heavy temporal noise, so x264 must spend the bits on real picture data
// (CBR, no filler) while the headless viewers' decoders stay cheap on a 2-core machine.
// media/hibitrate/manifest.json is written last and marks the set complete (idempotent).
// Usage: node scripts/gen-hibitrate-media.mjs [--force] [--seconds 60] [--out DIR]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FPS, SEG_S, ffmpeg, runCli, setComplete, writeSetManifest, x264CbrArgs } from './gen-media.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const HIBITRATE_DIR = path.join(ROOT, 'media', 'hibitrate');
export const HIBITRATE_RENDITIONS = [
  { name: 'low', width: 320, height: 180, vkbps: 1000, akbps: 64 },
  { name: 'high', width: 640, height: 360, vkbps: 15000, akbps: 128 },
];
// Main@4.0: Main@3.1 caps the video bitrate at 14 Mbit/s.
const LEVEL = '4.0';
const CODECS = 'avc1.4d4028,mp4a.40.2';

export function generateHibitrateMedia({ outDir = HIBITRATE_DIR, seconds = 60, force = false } = {}) {
  if (!force && setComplete(outDir)) {
    console.log(`hibitrate media: complete in ${path.relative(process.cwd(), outDir) || '.'} (skip; --force to redo)`);
    return outDir;
  }
  fs.rmSync(outDir, { recursive: true, force: true });
  const mezz = path.join(outDir, '.mezzanine');
  fs.mkdirSync(mezz, { recursive: true });
  const R = HIBITRATE_RENDITIONS;
  console.log(`hibitrate media: encoding ${seconds} s, ${R.map((r) => `${r.width}x${r.height} @ ${r.vkbps} kbit/s`).join(' + ')}`);
  const split = R.map((_, i) => `[v${i}]`).join('');
  const scales = R.map((r, i) => `[v${i}]scale=${r.width}:${r.height},noise=alls=80:allf=t+u[o${i}]`).join(';');
  const args = [
    '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${FPS}:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:beep_factor=4:sample_rate=48000:duration=${seconds}`,
    '-filter_complex', `[0:v]split=${R.length}${split};${scales}`,
  ];
  R.forEach((r, i) => args.push(
    '-map', `[o${i}]`, '-map', '1:a', ...x264CbrArgs(r.vkbps, LEVEL),
    '-c:a', 'aac', '-b:a', `${r.akbps}k`, '-ac', '2', path.join(mezz, `${r.name}.mp4`),
  ));
  ffmpeg(args, 'encode');

  const files = [];
  const master = ['#EXTM3U', '#EXT-X-VERSION:4', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const r of R) {
    const dir = path.join(outDir, 'ts', r.name);
    fs.mkdirSync(dir, { recursive: true });
    ffmpeg(['-i', path.join(mezz, `${r.name}.mp4`), '-map', '0', '-c', 'copy', '-f', 'hls',
      '-hls_time', String(SEG_S), '-hls_playlist_type', 'vod', '-hls_list_size', '0',
      '-hls_segment_type', 'mpegts', '-hls_segment_filename', path.join(dir, 'seg_%03d.ts'),
      path.join(dir, 'index.m3u8')], `ts/${r.name}`);
    for (const f of fs.readdirSync(dir)) files.push(path.posix.join('ts', r.name, f));
    const bw = Math.round((r.vkbps + r.akbps) * 1000 * 1.1);
    master.push(`#EXT-X-STREAM-INF:BANDWIDTH=${bw},AVERAGE-BANDWIDTH=${(r.vkbps + r.akbps) * 1000},` +
      `RESOLUTION=${r.width}x${r.height},FRAME-RATE=${FPS}.000,CODECS="${CODECS}"`, `${r.name}/index.m3u8`);
  }
  fs.writeFileSync(path.join(outDir, 'ts', 'master.m3u8'), master.join('\n') + '\n');
  files.push('ts/master.m3u8');
  fs.rmSync(mezz, { recursive: true, force: true });
  writeSetManifest(outDir, {
    generated: new Date().toISOString(), seconds, segmentSeconds: SEG_S, renditions: R,
    masters: { ts: 'ts/master.m3u8' }, files: files.sort(),
  }, 'hibitrate media');
  return outDir;
}

runCli(import.meta.url, 'gen-hibitrate-media', HIBITRATE_DIR, generateHibitrateMedia);
