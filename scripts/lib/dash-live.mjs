// Live DASH from a VOD MPD: the origin serves /live/<path>.mpd as a dynamic MPD that loops the
// VOD presentation forever, one Period per loop (ids p0, p1, …, each starting at k × the VOD
// duration). Segments keep their VOD URLs: a loop's media timestamps restart at 0, which a new
// Period (presentationTimeOffset 0) maps to the right presentation time, so no byte is
// rewritten. Periods in the time-shift window plus the next one are listed; the MPD carries a
// UTCTiming element with the origin's clock (the namespace has no route to a time server).

/** ISO-8601 duration with days/hours/minutes/seconds (`PT1M0.0S`, `P1DT2H`) in seconds, or NaN. */
export function isoDurationS(d) {
  const m = /^P(?:(\d+)D)?(?:T(?:([\d.]+)H)?(?:([\d.]+)M)?(?:([\d.]+)S)?)?$/.exec(String(d || ''));
  if (!m) return NaN;
  const [days, h, min, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  return days * 86400 + h * 3600 + min * 60 + s;
}

const iso = (ms) => new Date(ms).toISOString();
const secs = (s) => `PT${Number(s.toFixed(3))}S`;

/**
 * @param {string} vodMpd  the VOD MPD text (one Period, static)
 * @param {{t0Ms: number, nowMs?: number, windowS?: number, delayS?: number}} o
 *   t0Ms: availabilityStartTime (the live clock's origin); windowS: timeShiftBufferDepth
 */
export function liveDashMpd(vodMpd, { t0Ms, nowMs = Date.now(), windowS = 12, delayS = 6 }) {
  const loopS = isoDurationS(/mediaPresentationDuration="([^"]+)"/.exec(vodMpd)?.[1]);
  const period = /<Period\b[^>]*>([\s\S]*?)<\/Period>/.exec(vodMpd);
  if (!Number.isFinite(loopS) || loopS <= 0 || !period) throw new Error('live DASH: VOD MPD without duration or Period');
  const maxSeg = /maxSegmentDuration="([^"]+)"/.exec(vodMpd)?.[1] ?? 'PT2S';
  const elapsedS = Math.max(0, (nowMs - t0Ms) / 1000);
  const first = Math.max(0, Math.floor((elapsedS - windowS - delayS) / loopS));
  const last = Math.floor(elapsedS / loopS) + 1;
  const periods = [];
  for (let k = first; k <= last; k++) {
    periods.push(`\t<Period id="p${k}" start="${secs(k * loopS)}" duration="${secs(loopS)}">${period[1]}</Period>`);
  }
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic"',
    `\tavailabilityStartTime="${iso(t0Ms)}" publishTime="${iso(nowMs)}" minimumUpdatePeriod="PT2S"`,
    `\ttimeShiftBufferDepth="${secs(windowS)}" suggestedPresentationDelay="${secs(delayS)}" maxSegmentDuration="${maxSeg}" minBufferTime="PT4S">`,
    ...periods,
    `\t<UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="${iso(nowMs)}"/>`,
    '</MPD>',
    '',
  ].join('\n');
}
