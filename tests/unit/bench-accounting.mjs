// The bench's byte accounting: a viewer whose counted bytes (origin + peers) disagree with what
// its player loaded is flagged, one whose counts agree is not; live segments are never cacheable
// (live DASH repeats segment URLs every loop, and a browser cache would hide them from the origin).
import assert from 'node:assert/strict';
import { summarizeRun, byteDiscrepancy, BYTE_CHECK_TOLERANCE } from '../../scripts/lib/metrics.mjs';
import { segmentCacheControl } from '../../scripts/lib/origin.mjs';

const snap = (fragBytes, p2pDown = 0) => ({ mode: 'x', state: 'playing', fragBytes, watchedMs: 1000, stalledMs: 0, shoal: { p2pDown, httpDown: 0 } });
const run = summarizeRun({
  mode: 'baseline',
  snapshots: { agree: snap(10_000_000, 4_000_000), cached: snap(27_000_000), ahead: snap(10_000_000, 1_000_000) },
  originClients: { agree: { segmentBytes: 6_100_000 }, cached: { segmentBytes: 16_500_000 }, ahead: { segmentBytes: 10_000_000 } },
});
assert.deepEqual(run.byteCheck.mismatched.map((m) => [m.id, m.kind]), [['cached', 'undercount'], ['ahead', 'overfetch']]);
assert.equal(run.byteCheck.received, 37_600_000);
assert.equal(run.byteCheck.fragBytes, 47_000_000);
assert.ok(byteDiscrepancy(101, 100) < BYTE_CHECK_TOLERANCE);
assert.ok(byteDiscrepancy(0, 100) > BYTE_CHECK_TOLERANCE);
assert.equal(byteDiscrepancy(0, 0), 0);

assert.equal(segmentCacheControl('segment', '/live/dash/number/chunk-stream0-00001.m4s'), 'no-store');
assert.equal(segmentCacheControl('segment', '/media/ts/720p/seg_001.ts'), 'public, max-age=86400');
assert.notEqual(segmentCacheControl('playlist', '/live/ts/master.m3u8'), 'public, max-age=86400');
console.log('bench-accounting: ok');
