#!/usr/bin/env node
// The tracker client's quiet mode (the shim's startup period) against the real npm
// `bittorrent-tracker` server on 127.0.0.1, in Node (WebSocket from the `ws` package):
// - a quiet viewer's announce carries no offer, yet the tracker counts it and answers with the
//   swarm's size (onSwarmPeers);
// - an offer another viewer sends it is queued, not answered, until wake();
// - wake() hands the queued offer over and announces with offers.
// The client is compiled from js-shim/src/transport/tracker.ts with esbuild, as the shim is.
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { WebSocket } from 'ws';
import { startTracker } from '../../scripts/lib/tracker.mjs';

globalThis.WebSocket ??= WebSocket;

const out = await build({
  entryPoints: [new URL('../../js-shim/src/transport/tracker.ts', import.meta.url).pathname],
  bundle: true, format: 'esm', platform: 'neutral', write: false,
});
const { TrackerClient } = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);

const SWARM = 'ab'.repeat(20);
const sdp = (type) => ({ type, sdp: `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=${type}\r\n` });

/** A client whose hooks record what happens; `createOffer` hands out numbered stand-in offers. */
function client(peerHex, quiet) {
  const seen = { counts: [], offers: [], answers: [], made: 0, warnings: [] };
  const waiters = [];
  const note = () => { for (const w of waiters.splice(0)) w(); };
  const hooks = {
    createOffer: async () => { seen.made++; return { payload: seen.made, sdp: sdp('offer') }; },
    dropOffer: () => {},
    onAnswer: (swarm, peer, offer, answer) => { seen.answers.push({ peer, offer: offer.payload, answer }); note(); },
    onOffer: (swarm, peer, offer, reply) => { seen.offers.push({ peer, reply }); note(); },
    onWarning: (url, detail) => { seen.warnings.push(detail); },
    onSwarmPeers: (swarm, others) => { seen.counts.push(others); note(); },
  };
  const tc = new TrackerClient([tracker.url], peerHex, 0, hooks, quiet);
  /** Resolves once pred() holds (checked after every hook call); fails after 5 s. */
  const until = (pred, what) => new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${JSON.stringify({ ...seen, offers: seen.offers.length })}`)), 5000);
    const check = () => { if (pred()) { clearTimeout(timer); resolve(); } else waiters.push(check); };
    waiters.push(check);
  });
  return { tc, seen, until };
}

const tracker = await startTracker({ quiet: true });
const results = [];
try {
  const a = client('01'.repeat(20), true);
  a.tc.announce(SWARM, 'started', 5);
  await a.until(() => a.seen.counts.length > 0, 'the tracker count for quiet A');
  assert.deepEqual(a.seen.counts, [0], 'the first viewer hears 0 others');
  assert.equal(a.seen.made, 0, 'a quiet announce makes no offer');
  results.push('quiet announce: counted (0 others), no offer made');

  const b = client('02'.repeat(20), false);
  b.tc.announce(SWARM, 'started', 5);
  await b.until(() => b.seen.counts.length > 0 && b.seen.made > 0, 'B counted and offering');
  assert.deepEqual(b.seen.counts, [1], 'B hears the quiet viewer counted by the tracker');
  // B's offer reaches A (the only other peer); give the relay the time a round trip takes by
  // waiting for a second announce answer of A's own, sent after B's offers went out.
  a.tc.announce(SWARM, 'update', 5);
  await a.until(() => a.seen.counts.length > 1, 'a second answer for A');
  assert.equal(a.seen.offers.length, 0, 'a quiet viewer answers no offer');
  results.push(`offer while quiet: queued (B made ${b.seen.made} offer(s), A answered none)`);

  a.tc.wake();
  await a.until(() => a.seen.offers.length > 0, 'the queued offer after wake()');
  assert.equal(a.seen.offers[0].peer, '02'.repeat(20));
  await a.until(() => a.seen.made > 0, 'A offering after wake()');
  // A answers the queued offer through the tracker: B gets the answer for its own offer.
  a.seen.offers[0].reply(sdp('answer'));
  await b.until(() => b.seen.answers.length > 0, 'B receiving the answer');
  assert.equal(b.seen.answers[0].peer, '01'.repeat(20));
  results.push(`wake(): queued offer handed over and answered, A made ${a.seen.made} offer(s)`);
  a.tc.destroy();
  b.tc.destroy();
} finally {
  await tracker.close();
}
for (const r of results) console.log(`PASS tracker quiet mode: ${r}`);
process.exit(0);
