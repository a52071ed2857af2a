#!/usr/bin/env node
// The tracker client carrying out the engine's quiet announces (its start hold: `offers: 0`,
// `inbound: 'queue'`) against the real npm `bittorrent-tracker` server on 127.0.0.1, in Node
// (WebSocket from the `ws` package):
// - a quiet viewer's announce carries no offer, yet the tracker counts it and answers with the
//   swarm's size (onSwarmPeers);
// - an offer another viewer sends it is queued, not answered, until an announce that answers;
// - that announce hands the queued offer over and makes the offers it orders;
// - with `inbound: 'ignore'` (the engine's swarm-size gate) an offer is dropped, not queued.
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
function client(peerHex) {
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
  const tc = new TrackerClient([tracker.url], peerHex, hooks);
  /** Resolves once pred() holds (checked after every hook call); fails after 5 s. */
  const until = (pred, what) => new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${JSON.stringify({ ...seen, offers: seen.offers.length })}`)), 5000);
    const check = () => { if (pred()) { clearTimeout(timer); resolve(); } else waiters.push(check); };
    waiters.push(check);
  });
  return { tc, seen, until };
}

/** The engine's `Announce` order, as the driver passes it (queue limits: the engine's defaults). */
const order = (event, offers, inbound) => ({ event, numwant: 10, offers, inbound, queueMax: 16, queueMaxAgeMs: 10_000 });

const tracker = await startTracker({ quiet: true });
const results = [];
try {
  const a = client('01'.repeat(20));
  a.tc.announce(SWARM, order('started', 0, 'queue'));
  await a.until(() => a.seen.counts.length > 0, 'the tracker count for quiet A');
  assert.deepEqual(a.seen.counts, [0], 'the first viewer hears 0 others');
  assert.equal(a.seen.made, 0, 'a quiet announce makes no offer');
  results.push('quiet announce: counted (0 others), no offer made');

  const b = client('02'.repeat(20));
  b.tc.announce(SWARM, order('started', 5, 'answer'));
  await b.until(() => b.seen.counts.length > 0 && b.seen.made > 0, 'B counted and offering');
  assert.deepEqual(b.seen.counts, [1], 'B hears the quiet viewer counted by the tracker');
  // B's offer reaches A (the only other peer); give the relay the time a round trip takes by
  // waiting for a second announce answer of A's own, sent after B's offers went out.
  a.tc.announce(SWARM, order('update', 0, 'queue'));
  await a.until(() => a.seen.counts.length > 1, 'a second answer for A');
  assert.equal(a.seen.offers.length, 0, 'a quiet viewer answers no offer');
  results.push(`offer while quiet: queued (B made ${b.seen.made} offer(s), A answered none)`);

  a.tc.announce(SWARM, order('update', 2, 'answer'));
  await a.until(() => a.seen.offers.length > 0, 'the queued offer after the answering announce');
  assert.equal(a.seen.offers[0].peer, '02'.repeat(20));
  await a.until(() => a.seen.made > 0, 'A offering after the answering announce');
  assert.equal(a.seen.made, 2, 'A makes the offers the order says');
  // A answers the queued offer through the tracker: B gets the answer for its own offer.
  a.seen.offers[0].reply(sdp('answer'));
  await b.until(() => b.seen.answers.length > 0, 'B receiving the answer');
  assert.equal(b.seen.answers[0].peer, '01'.repeat(20));
  results.push(`answering announce: queued offer handed over and answered, A made ${a.seen.made} offer(s)`);

  // A gated viewer (inbound 'ignore') in a fresh swarm: B's offers reach it and are dropped.
  const SWARM2 = 'cd'.repeat(20);
  const c = client('03'.repeat(20));
  c.tc.announce(SWARM2, order('started', 0, 'ignore'));
  await c.until(() => c.seen.counts.length > 0, 'the tracker count for gated C');
  const madeBefore = b.seen.made;
  b.tc.announce(SWARM2, order('started', 3, 'answer'));
  await b.until(() => b.seen.made >= madeBefore + 3 && b.seen.counts.length > 1, 'B offering in the second swarm');
  c.tc.announce(SWARM2, order('update', 0, 'ignore'));
  await c.until(() => c.seen.counts.length > 1, 'a second answer for C');
  c.tc.announce(SWARM2, order('update', 0, 'answer'));
  await c.until(() => c.seen.counts.length > 2, 'a third answer for C');
  assert.equal(c.seen.offers.length, 0, 'a gated viewer neither answers nor keeps offers');
  results.push(`gated (inbound 'ignore'): B's offers dropped, none handed over later`);
  a.tc.destroy();
  b.tc.destroy();
  c.tc.destroy();
} finally {
  await tracker.close();
}
for (const r of results) console.log(`PASS tracker quiet mode: ${r}`);
process.exit(0);
