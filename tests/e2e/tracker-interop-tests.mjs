// Interop with aquatic_ws, the high-performance WebTorrent tracker large deployments run
// (crates.io `aquatic_ws`). Registered into tests/e2e/run.mjs; runs when the binary is found
// (SHOAL_AQUATIC_WS=/path/to/aquatic_ws, or `aquatic_ws` on PATH) and is skipped, saying how
// to get it, otherwise: building it takes tens of minutes, too long for every CI run.
//   cargo install aquatic_ws --version 0.9.0 --root DIR   then   SHOAL_AQUATIC_WS=DIR/bin/aquatic_ws
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

function findAquatic() {
  const env = process.env.SHOAL_AQUATIC_WS;
  if (env) return fs.existsSync(env) ? env : null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'aquatic_ws');
    if (dir && fs.existsSync(p)) return p;
  }
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** Starts aquatic_ws on 127.0.0.1 with its default configuration otherwise. */
async function startAquatic(bin, waitFor) {
  const port = await freePort();
  const defaults = execFileSync(bin, ['-p'], { encoding: 'utf8' });
  const config = defaults.replace(/^address = .*$/m, `address = "127.0.0.1:${port}"`);
  if (config === defaults) throw new Error('aquatic_ws -p printed no [network] address line');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-aquatic-'));
  const file = path.join(dir, 'aquatic_ws.toml');
  fs.writeFileSync(file, config);
  const proc = spawn(bin, ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  let exited = null;
  proc.on('exit', (code) => { exited = code; });
  await waitFor('aquatic_ws listening', async () => {
    if (exited !== null) throw new Error(`aquatic_ws exited (${exited}): ${stderr}`);
    return { ok: await canConnect(port), why: 'port closed' };
  }, 10_000);
  return {
    url: `ws://127.0.0.1:${port}`,
    stop() {
      proc.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function registerTrackerInteropTests({ test, openHarness, playsOn, assertGenuine, check, waitFor, sleep, Skip }) {
  test('tracker interop: a 3-viewer swarm found through aquatic_ws', { engine: 'real' }, async (env) => {
    const bin = findAquatic();
    if (!bin) {
      throw new Skip('aquatic_ws not found: `cargo install aquatic_ws --version 0.9.0 --root DIR` and set SHOAL_AQUATIC_WS=DIR/bin/aquatic_ws');
    }
    const tracker = await startAquatic(bin, waitFor);
    try {
      const vs = [];
      for (let i = 0; i < 3; i++) {
        vs.push(await openHarness(env, `aq${i}`, { trackers: [tracker.url], shoal: { swarmId: 'aquatic-interop' } }));
        await sleep(1500); // staggered joins
      }
      const results = await Promise.all(vs.map((v) => playsOn(v, 12, 60_000)));
      results.forEach((s, i) => assertGenuine(s, vs[i].id));
      const peers = results.map((s) => s.stats.peers);
      const p2p = results.map((s) => s.stats.p2pDown);
      check(peers.every((n) => n >= 1), `viewers without peers through aquatic_ws: ${peers.join(', ')}`);
      check(p2p.some((b) => b > 0), `no P2P bytes through aquatic_ws: ${p2p.join(', ')}`);
      check(results.every((s) => !s.errors.some((e) => e.startsWith('tracker'))), `tracker errors: ${results.flatMap((s) => s.errors.filter((e) => e.startsWith('tracker'))).join('; ')}`);
      return `peers=${peers.join(',')} p2pDown=${p2p.join(',')}`;
    } finally {
      tracker.stop();
    }
  });
}
