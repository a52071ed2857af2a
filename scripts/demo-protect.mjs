// `npm run demo -- --protect`: the demo stream with signed integrity manifests (docs/PROTECT.md).
//
// - Key: .cache/demo-protect/stream.key (gitignored), made by `shoal-manifest keygen` on first
//   use; the public key goes to every viewer through the origin's /_shoal/config.
// - Media: manifests key segments by file name (docs/MANIFEST.md "Keys"), and the test media's
//   renditions reuse names (360p/seg_000.ts, 720p/seg_000.ts), as do the origin's live names
//   (index@<seq>.ts). So the flavour is mirrored (hard links) under media/protect/<flavour>/
//   with the rendition in every name: 360p/360p.m3u8, 360p/360p-seg_000.ts, ...
// - VOD: `shoal-manifest sign` writes master.m3u8.shoal beside the mirrored master playlist.
// - Live: the origin serves a sliding window that loops the VOD segments under new names
//   (<rendition>@<seq>.ts, see scripts/lib/origin.mjs). Every second this script rewrites
//   master.m3u8.shoal with the entries of the segments around the live edge (the VOD entry's
//   size and hashes under the live name), signed with the same key (Node's Ed25519, the same
//   bytes the tool would sign; the first file is checked with `shoal-manifest verify`), and
//   renames it into place, as `shoal-manifest sign --watch` does for a real packager.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, parseMediaPlaylist } from './lib/origin.mjs';

const KEY_DIR = path.join(ROOT, '.cache/demo-protect');
const SIGNING_CONTEXT = 'shoal-manifest-signature-v1\n';
// PKCS#8 DER prefix of an Ed25519 private key (RFC 8410); the 32-byte seed follows.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Builds shoal-manifest (release, as docs/PROTECT.md says) and returns its path. */
function manifestTool() {
  console.log('protect: cargo build --release --bin shoal-manifest');
  execFileSync('cargo', ['build', '--quiet', '--release', '--bin', 'shoal-manifest'], { cwd: ROOT, stdio: 'inherit' });
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
  return path.join(target, 'release', 'shoal-manifest');
}

/** The demo's key pair: {keyFile, publicKey}. */
function demoKey(tool) {
  fs.mkdirSync(KEY_DIR, { recursive: true, mode: 0o700 });
  const keyFile = path.join(KEY_DIR, 'stream.key');
  const publicKey = fs.existsSync(keyFile)
    ? execFileSync(tool, ['pubkey', '--key', keyFile], { encoding: 'utf8' }).trim()
    : execFileSync(tool, ['keygen', '--out', keyFile], { encoding: 'utf8' }).trim();
  return { keyFile, publicKey };
}

function linkOrCopy(from, to) {
  fs.rmSync(to, { force: true });
  try { fs.linkSync(from, to); } catch { fs.copyFileSync(from, to); }
}

/**
 * Mirrors <mediaDir>/<flavour>/ to <mediaDir>/protect/<flavour>/ with unique names.
 * Returns the mirrored media playlists: [{name, file}].
 */
function mirror(mediaDir, flavour) {
  const src = path.join(mediaDir, flavour);
  const dst = path.join(mediaDir, 'protect', flavour);
  fs.rmSync(dst, { recursive: true, force: true });
  fs.mkdirSync(dst, { recursive: true });
  const master = fs.readFileSync(path.join(src, 'master.m3u8'), 'utf8').split('\n');
  const renditions = [];
  const out = master.map((line) => {
    if (!line || line.startsWith('#')) return line;
    const name = path.posix.dirname(line) !== '.' ? path.posix.basename(path.posix.dirname(line)) : `v${renditions.length}`;
    const from = path.join(src, line);
    const dir = path.join(dst, name);
    fs.mkdirSync(dir, { recursive: true });
    const rename = (uri) => `${name}-${path.posix.basename(uri)}`;
    const linked = new Set();
    const link = (uri) => {
      const f = path.resolve(path.dirname(from), decodeURIComponent(uri.split('?')[0]));
      if (!linked.has(f)) { linked.add(f); linkOrCopy(f, path.join(dir, rename(uri))); }
      return rename(uri);
    };
    const media = fs.readFileSync(from, 'utf8').split('\n').map((l) => {
      if (l.startsWith('#EXT-X-MAP:')) return l.replace(/URI="([^"]+)"/, (_, u) => `URI="${link(u)}"`);
      return !l || l.startsWith('#') ? l : link(l);
    });
    const file = path.join(dir, `${name}.m3u8`);
    fs.writeFileSync(file, media.join('\n'));
    renditions.push({ name, file });
    return `${name}/${name}.m3u8`;
  });
  fs.writeFileSync(path.join(dst, 'master.m3u8'), out.join('\n'));
  return { dir: dst, renditions };
}

/** `segment` lines of a manifest by key: {size, rest} (rest = size and hashes as written). */
function entries(text) {
  const m = new Map();
  for (const l of text.split('\n')) {
    if (!l.startsWith('segment ')) continue;
    const [, key, ...rest] = l.split(' ');
    m.set(key, rest.join(' '));
  }
  return m;
}

function signText(unsigned, seed) {
  const key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const sig = crypto.sign(null, Buffer.concat([Buffer.from(SIGNING_CONTEXT), Buffer.from(unsigned)]), key);
  return `${unsigned}signature ed25519 ${sig.toString('base64')}\n`;
}

function writeAtomic(file, text) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/**
 * Prepares the protected stream. Returns {src, manifestPath, publicKey, start(origin), stop()}:
 * src and manifestPath are URL paths on the origin; start() begins the live re-signing.
 */
export function setupProtection({ mediaDir, flavour = 'ts', live }) {
  const tool = manifestTool();
  const { keyFile, publicKey } = demoKey(tool);
  const { dir, renditions } = mirror(mediaDir, flavour);
  execFileSync(tool, ['sign', '--key', keyFile, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const manifestFile = path.join(dir, 'master.m3u8.shoal');
  const vod = fs.readFileSync(manifestFile, 'utf8');
  const mode = live ? 'live' : 'media';
  const rel = path.relative(mediaDir, dir).split(path.sep).join('/');
  const res = {
    src: `/${mode}/${rel}/master.m3u8`,
    manifestPath: `/${mode}/${rel}/master.m3u8.shoal`,
    publicKey,
    keyFile: path.relative(ROOT, keyFile),
    start: async () => {},
    stop: () => {},
  };
  if (!live) return res;

  const seed = Buffer.from(fs.readFileSync(keyFile, 'utf8').trim(), 'hex');
  const byKey = entries(vod);
  const lists = renditions.map((r) => {
    const p = parseMediaPlaylist(fs.readFileSync(r.file, 'utf8'), r.file);
    let acc = 0;
    const cumEnd = p.segs.map((s) => (acc += s.duration));
    const vodKeys = p.segs.map((s) => path.basename(s.file) + (s.range ? `@${s.range[0]}-${s.range[1]}` : ''));
    return { name: r.name, segs: p.segs, cumEnd, loop: acc, vodKeys };
  });
  let timer = null;
  res.start = async (origin) => {
    const info = await fetch(`${origin.url}/_shoal/info`).then((r) => r.json());
    const t0 = Date.parse(info.liveStartedAt);
    const window = info.windowSegments;
    let last = '';
    let checked = false;
    const tick = () => {
      const lines = [];
      for (const l of lists) {
        // The origin's live edge (scripts/lib/origin.mjs liveEdge): last complete segment.
        const elapsed = (Date.now() - t0) / 1000;
        const loops = Math.floor(elapsed / l.loop);
        const rem = elapsed - loops * l.loop;
        let k = 0;
        while (k < l.cumEnd.length && l.cumEnd[k] <= rem) k++;
        const edge = loops * l.segs.length + k - 1;
        // The window, a few segments that just left it (players that loaded the previous
        // playlist), and the next two (listed before any playlist names them).
        for (let s = Math.max(0, edge - window - 3); s <= edge + 2; s++) {
          const i = s % l.segs.length;
          const e = byKey.get(l.vodKeys[i]);
          if (e) lines.push(`segment ${l.name}@${s}${l.segs[i].ext} ${e}`);
        }
      }
      const body = lines.join('\n');
      if (body === last) return;
      last = body;
      writeAtomic(manifestFile, signText(`shoal-manifest 1\n# live window of ${rel}, re-signed by scripts/demo-protect.mjs\nchunk-size 15360\n${body}\n`, seed));
      if (!checked) {
        checked = true;
        execFileSync(tool, ['verify', '--public-key', publicKey, manifestFile], { stdio: ['ignore', 'ignore', 'inherit'] });
        console.log(`protect: live manifest ${res.manifestPath} re-signed every second (${(fs.statSync(manifestFile).size / 1024).toFixed(0)} KiB, checked with shoal-manifest verify)`);
      }
    };
    tick();
    timer = setInterval(() => { try { tick(); } catch (e) { console.error(`protect: ${e.message}`); } }, 1000);
  };
  res.stop = () => clearInterval(timer);
  return res;
}
