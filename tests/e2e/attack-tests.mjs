// Malicious-viewer browser tests (issue 7 item 4), registered into tests/e2e/run.mjs.
// The attacker is an ordinary viewer page (demo-page/viewer.html) whose shim runs with the
// test-only `testFault` (the shim's test build, js-shim/src/testing/faults.ts, which
// demo-page/player-common.mjs loads when asked): 'corrupt-upload' inverts the payload of every
// Data message it sends; 'corrupt-upload-subtle' flips one byte inside a TS packet per chunk
// (the structural checks pass it); 'lie-have' announces segments it does not have. The honest
// viewers check every fragment hls.js receives against the origin's SHA-256
// (demo-page/player.mjs), so "0 corrupted" is measured at the player, after whatever the
// engine accepted.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchViewer } from '../../scripts/lib/viewers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// One rendition for everyone (the viewer page's video is small), so all share one swarm.
const HLS = { capLevelToPlayerSize: true, startLevel: 0 };

/**
 * The shoal-manifest binary: $SHOAL_MANIFEST_BIN, else the debug build, which `cargo test`
 * (CI step 2d, same features) has already produced, so this cargo call only checks freshness.
 */
function manifestTool() {
  if (process.env.SHOAL_MANIFEST_BIN) return process.env.SHOAL_MANIFEST_BIN;
  execFileSync('cargo', ['build', '--quiet', '--features', 'sim', '--bin', 'shoal-manifest'], { cwd: ROOT, stdio: 'inherit' });
  return path.join(process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target'), 'debug', 'shoal-manifest');
}

/**
 * A fresh key pair and signed manifests of the TS media, written beside its playlists (media/
 * is generated and gitignored). Returns the 360p rendition's manifest path and the public key:
 * the renditions reuse segment names, so there is no combined master manifest (PROTECT.md).
 */
function signMedia(mediaDir) {
  const tool = manifestTool();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-e2e-key-'));
  try {
    const key = path.join(tmp, 'stream.key');
    const publicKey = execFileSync(tool, ['keygen', '--out', key], { encoding: 'utf8' }).trim();
    execFileSync(tool, ['sign', '--key', key, path.join(mediaDir, 'ts')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const manifest = path.join(mediaDir, 'ts/360p/index.m3u8.shoal');
    execFileSync(tool, ['verify', '--public-key', publicKey, manifest, '--dir', path.join(mediaDir, 'ts/360p')], { stdio: ['ignore', 'ignore', 'inherit'] });
    return { publicKey, urlPath: '/media/ts/360p/index.m3u8.shoal', text: fs.readFileSync(manifest, 'utf8') };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function registerAttackTests({ test, check, waitFor, sleep }) {
  /** The engine's per-peer counters, read through the shim's internals (test only). */
  const perPeer = (v) => v.page.evaluate(() => window.shoalViewer.shoal.driver.coreStats()?.perPeer ?? []);

  async function attackRun(env, { prefix, fault, shoal = {}, src = '/media/ts/master.m3u8' }) {
    const open = (id, extra = {}) => launchViewer({
      browser: env.browser, originUrl: env.origin.url, id, src, trackers: [env.tracker.url], hlsConfig: HLS,
      shoalConfig: { ...shoal, ...extra },
    }).then((v) => { env.opened.push({ id: v.id, log: v.log, close: () => v.close() }); return v; });
    // The attacker comes first and buffers, so it holds what the others will ask for.
    const attacker = await open(`${prefix}-evil`, { testFault: fault });
    await attacker.waitFor((m) => m.state === 'playing' && m.currentTime > 4, 40_000);
    const evilId = await waitFor('attacker peer id', async () => {
      const id = await attacker.peerId();
      return id ? { ok: true, value: id } : { ok: false };
    }, 20_000);
    const honest = [];
    for (let i = 0; i < 3; i++) {
      honest.push(await open(`${prefix}-h${i}`));
      await sleep(1500); // staggered joins
    }
    // Play on until every honest viewer is 20 s in. Whom the attacker served is sampled as it
    // goes: a peer that bans it closes the connection, and the engine then forgets its counters.
    const servedTo = new Set();
    await waitFor('honest viewers 20 s in', async () => {
      for (const p of await perPeer(attacker)) if (p.upBytes > 0) servedTo.add(p.peer);
      const ms = await Promise.all(honest.map((v) => v.metrics()));
      const a = await attacker.metrics();
      const why = `honest t=${ms.map((m) => m.currentTime.toFixed(0)).join(',')} attacker up=${a.shoal?.p2pUp ?? 0}`;
      return ms.every((m) => m.currentTime >= 20 || m.state === 'ended') ? { ok: true } : { ok: false, why };
    }, 90_000, 200);
    await sleep(1500); // let the last page-side hash checks come back
    const ms = await Promise.all(honest.map((v) => v.metrics()));
    const evs = await Promise.all(honest.map((v) => v.coreEvents()));
    const ids = await Promise.all(honest.map((v) => v.peerId()));
    for (const p of await perPeer(attacker)) if (p.upBytes > 0) servedTo.add(p.peer);
    return { attacker, evilId, honest, ms, evs, ids, servedTo, evilUp: (await attacker.metrics()).shoal?.p2pUp ?? 0 };
  }

  test('attack: 3 honest viewers + 1 corrupter (VOD, no manifest): 0 corrupted, attacker banned, no stall', { engine: 'real' }, async (env) => {
    const r = await attackRun(env, { prefix: 'atk', fault: 'corrupt-upload' });
    // Who received the attacker's data: the honest engines' verificationFailed events name it
    // (the engine's perPeer counters forget a peer once it is banned and closed).
    r.ids.forEach((id, i) => { if (r.evs[i].some((e) => e.kind === 'verificationFailed' && e.peer === r.evilId)) r.servedTo.add(id); });
    check(r.servedTo.size > 0, `no honest viewer received data from the attacker (up ${r.evilUp} B): nothing was attacked [events ${JSON.stringify(r.evs.map((e) => e.slice(-4)))}]`);
    const lines = [];
    r.honest.forEach((v, i) => {
      const m = r.ms[i];
      const ev = r.evs[i];
      check(m.corrupted === 0, `${v.id}: ${m.corrupted} corrupted fragment(s) reached hls.js: ${m.errors.filter((e) => e.startsWith('corrupted')).join('; ')}`);
      check(m.verified > 0, `${v.id}: no fragment verified against the origin`);
      check(m.stalls === 0, `${v.id}: ${m.stalls} stall(s), ${Math.round(m.stalledMs)} ms`);
      const failed = ev.filter((e) => e.kind === 'verificationFailed' && e.peer === r.evilId).length;
      const ban = ev.find((e) => e.kind === 'peerBanned' && e.peer === r.evilId);
      const bannedHonest = ev.filter((e) => e.kind === 'peerBanned' && e.peer !== r.evilId);
      check(bannedHonest.length === 0, `${v.id}: banned an honest peer: ${JSON.stringify(bannedHonest)}`);
      if (r.servedTo.has(r.ids[i])) check(ban, `${v.id}: received data from the attacker but did not ban it (verificationFailed ${failed}, events ${JSON.stringify(ev.slice(-5))})`);
      if (ban) {
        const firstBad = ev.find((e) => e.kind === 'verificationFailed' && e.peer === r.evilId);
        // Banned at its first bad segment: no second failed check from it before the ban.
        check(failed <= 1, `${v.id}: ${failed} failed checks from the attacker before/after its ban`);
        lines.push(`${v.id}: ${m.verified} verified, p2p ${m.shoal?.p2pDown ?? 0} B, banned attacker (${ban.reason}: ${firstBad?.detail}) ${ban.t - (firstBad?.t ?? ban.t)} ms after its first bad data`);
      } else lines.push(`${v.id}: ${m.verified} verified, p2p ${m.shoal?.p2pDown ?? 0} B, not served by the attacker`);
    });
    return `attacker up ${r.evilUp} B to ${r.servedTo.size} peer(s); ${lines.join('; ')}`;
  });

  test('attack: subtle in-packet flips + lying haves, signed manifest: 0 corrupted, attacker banned at its first chunk, no stall', { engine: 'real' }, async (env) => {
    const signed = signMedia(env.origin.mediaDir);
    const chunks = signed.text.split('\n').filter((l) => l.startsWith('segment ')).map((l) => l.split(' ')[4]?.split(',').length ?? 0);
    check(chunks.length > 0 && chunks.every((n) => n > 0), 'the signed manifest has no chunk hashes');
    const r = await attackRun(env, {
      prefix: 'sig',
      fault: ['corrupt-upload-subtle', 'lie-have'],
      shoal: { integrityManifestUrl: `${env.origin.url}${signed.urlPath}`, integrityPublicKey: signed.publicKey },
    });
    r.ids.forEach((id, i) => { if (r.evs[i].some((e) => e.kind === 'verificationFailed' && e.peer === r.evilId)) r.servedTo.add(id); });
    check(r.servedTo.size > 0, `no honest viewer received data from the attacker (up ${r.evilUp} B): nothing was attacked`);
    const lines = [];
    r.honest.forEach((v, i) => {
      const m = r.ms[i];
      const ev = r.evs[i];
      check(!ev.some((e) => e.kind === 'manifestRejected'), `${v.id}: manifest rejected: ${JSON.stringify(ev.filter((e) => e.kind === 'manifestRejected'))}`);
      check(m.corrupted === 0, `${v.id}: ${m.corrupted} corrupted fragment(s) reached hls.js: ${m.errors.filter((e) => e.startsWith('corrupted')).join('; ')}`);
      check(m.verified > 0, `${v.id}: no fragment verified against the origin`);
      check(m.stalls === 0, `${v.id}: ${m.stalls} stall(s), ${Math.round(m.stalledMs)} ms`);
      const bannedHonest = ev.filter((e) => e.kind === 'peerBanned' && e.peer !== r.evilId);
      check(bannedHonest.length === 0, `${v.id}: banned an honest peer: ${JSON.stringify(bannedHonest)}`);
      const failed = ev.filter((e) => e.kind === 'verificationFailed' && e.peer === r.evilId);
      const ban = ev.find((e) => e.kind === 'peerBanned' && e.peer === r.evilId);
      if (!r.servedTo.has(r.ids[i])) { lines.push(`${v.id}: ${m.verified} verified, not served by the attacker`); return; }
      check(ban, `${v.id}: received data from the attacker but did not ban it (events ${JSON.stringify(ev.slice(-5))})`);
      check(ban.reason === 'corruptData', `${v.id}: attacker banned for ${ban.reason}, not corrupt data`);
      // The flips keep every TS sync byte: only the manifest's chunk hashes can catch them, and
      // every chunk the attacker sends is bad, so its first chunk is the one that gets it banned.
      check(failed.length === 1, `${v.id}: ${failed.length} failed checks from the attacker (want exactly 1: its first chunk)`);
      check(/chunk \d+ sha256 mismatch/.test(failed[0].detail), `${v.id}: caught by "${failed[0].detail}", not by a chunk hash`);
      lines.push(`${v.id}: ${m.verified} verified, p2p ${m.shoal?.p2pDown ?? 0} B, banned attacker (${failed[0].detail}) ${ban.t - failed[0].t} ms after its first bad chunk`);
    });
    return `attacker up ${r.evilUp} B to ${r.servedTo.size} peer(s); ${lines.join('; ')}`;
  });
}
