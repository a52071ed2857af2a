// Helpers shared by tests/e2e/run.mjs and tests/e2e/abr.mjs: harness pages (pages/harness.html
// served under /e2e/ on the origin's host), waiting on page state, playback assertions.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SEG_MS = 2000;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export class Skip extends Error {}
export function check(cond, msg) { if (!cond) throw new Error(msg); }

export async function waitFor(label, fn, timeoutMs, pollMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last && last.ok) return last.value;
    if (Date.now() > end) throw new Error(`timeout (${timeoutMs} ms) waiting for ${label}${last && last.why ? `: ${last.why}` : ''}`);
    await sleep(pollMs);
  }
}

const pagesDir = path.join(HERE, 'pages');
export async function openHarness(env, id, opts) {
  const context = await env.browser.newContext();
  await context.addCookies([{ name: 'shoal_viewer', value: id, url: env.origin.url }]);
  // The harness pages are served from tests/e2e/pages under /e2e/ on the origin's host, so they
  // share its origin (no CORS) and its import paths.
  await context.route('**/e2e/**', (route) => {
    const name = path.basename(new URL(route.request().url()).pathname);
    const file = path.join(pagesDir, name);
    if (!fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
    const type = name.endsWith('.html') ? 'text/html' : 'text/javascript';
    return route.fulfill({ status: 200, contentType: type, body: fs.readFileSync(file) });
  });
  if (opts.delayWasmMs) {
    // Make the engine arrive after the first playlists (the adapter must replay them).
    await context.route('**/*.wasm', async (route) => { await sleep(opts.delayWasmMs); await route.continue(); });
  }
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => { if (m.type() === 'error' && log.length < 50) log.push(m.text()); });
  page.on('pageerror', (e) => { if (log.length < 50) log.push(`pageerror: ${e.message}`); });
  await page.goto(`${env.origin.url}/e2e/${opts.page ?? 'harness.html'}`);
  await page.waitForFunction(() => window.harnessReady === true, null, { timeout: 45_000 })
    .catch((e) => { throw new Error(`${id}: harness page not ready (${e.message.split('\n')[0]}); console: ${log.join(' | ')}`); });
  const engine = opts.engine ?? env.engine;
  const startOpts = {
    src: `${env.origin.url}${opts.src ?? '/media/ts/master.m3u8'}`,
    trackers: opts.trackers ?? [env.tracker.url],
    shoal: opts.shoal ?? {},
    hls: opts.hls ?? {},
    dash: opts.dash ?? {},
    fake: engine === 'fake' ? (opts.fake ?? {}) : undefined,
  };
  await page.evaluate((o) => window.harness.start(o), startOpts);
  const v = {
    id, page, context, log,
    snap: () => page.evaluate(() => window.harness.snapshot()),
    async until(label, pred, timeoutMs = 30_000) {
      return waitFor(`${id}: ${label}`, async () => {
        const s = await v.snap();
        const r = pred(s);
        return r === true ? { ok: true, value: s } : { ok: false, why: typeof r === 'string' ? r : `t=${s.currentTime.toFixed(1)} errors=${s.errors.slice(-3).join('; ')}` };
      }, timeoutMs);
    },
    close: () => context.close().catch(() => {}),
  };
  env.opened.push(v);
  return v;
}

/** Playback advanced by `seconds` from now, with no stall longer than one segment. */
export async function playsOn(v, seconds, timeoutMs) {
  const s0 = await v.snap();
  const target = s0.currentTime + seconds;
  const s = await v.until(`play to ${target.toFixed(1)} s`, (s) => s.currentTime >= target || s.ended, timeoutMs ?? seconds * 1000 + 20_000);
  check(s.maxStallMs <= SEG_MS, `${v.id}: stalled ${Math.round(s.maxStallMs)} ms (> one segment)`);
  check(!s.errors.some((e) => e.startsWith('hls FATAL')), `${v.id}: fatal hls.js error: ${s.errors.join('; ')}`);
  return s;
}

export function assertGenuine(s, id) {
  check(s.corrupted === 0, `${id}: ${s.corrupted} corrupted fragment(s)`);
  check(s.verified > 0, `${id}: no fragment verified against the origin`);
}

