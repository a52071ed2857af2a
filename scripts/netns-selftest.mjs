#!/usr/bin/env node
// Self-test of the private network namespace: two headless Chromium pages open an
// RTCDataChannel to each other with iceServers: [] and echo a message. Checks both layouts
// the viewers use: two contexts of one browser, and two separate browsers.
// Run: bash scripts/netns-run.sh node scripts/netns-selftest.mjs   (exits non-zero on failure)
import { launchBrowser } from './lib/viewers.mjs';

const offerSide = async () => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pc = pc;
  const dc = pc.createDataChannel('t');
  window.got = new Promise((resolve) => { dc.onmessage = (e) => resolve(e.data); });
  dc.onopen = () => dc.send('ping');
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  return pc.localDescription.toJSON();
};
const answerSide = async (offer) => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pc = pc;
  pc.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send('pong:' + m.data); };
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  return pc.localDescription.toJSON();
};

async function pair(label, pageA, pageB) {
  const offer = await pageA.evaluate(offerSide);
  const cands = offer.sdp.split('\n').filter((l) => l.startsWith('a=candidate')).map((l) => l.trim());
  const answer = await pageB.evaluate(answerSide, offer);
  await pageA.evaluate((a) => window.pc.setRemoteDescription(a), answer);
  const reply = await Promise.race([
    pageA.evaluate(() => window.got),
    new Promise((_, rej) => setTimeout(() => rej(new Error('no data channel message within 10 s')), 10_000)),
  ]);
  if (reply !== 'pong:ping') throw new Error(`unexpected reply ${reply}`);
  console.log(`ok   ${label}: data channel echo; offer candidates: ${cands.map((c) => c.split(' ').slice(4, 6).join(':')).join(', ')}`);
}

let failed = false;
const browsers = [];
try {
  const b1 = await launchBrowser();
  browsers.push(b1);
  const [c1, c2] = [await b1.newContext(), await b1.newContext()];
  await pair('two contexts, one browser', await c1.newPage(), await c2.newPage());
  const b2 = await launchBrowser();
  browsers.push(b2);
  await pair('two browsers', await (await b1.newContext()).newPage(), await (await b2.newContext()).newPage());
} catch (e) {
  failed = true;
  console.error(`FAIL netns self-test: ${e.message}`);
  if (process.env.SHOAL_NETNS !== '1') console.error('  (not inside scripts/netns-run.sh: WebRTC may have no usable interface)');
} finally {
  await Promise.all(browsers.map((b) => b.close().catch(() => {})));
}
process.exit(failed ? 1 : 0);
