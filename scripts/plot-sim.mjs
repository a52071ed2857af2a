#!/usr/bin/env node
// Plots a shoal-sim JSON report (`shoal-sim --scenario FILE --json REPORT.json`) as an SVG:
// CDN egress (Mbit/s) and stalled viewers over time, with Shoal and without (the
// baseline run of the same world), the scenario's CDN faults shaded.
//
//   node scripts/plot-sim.mjs REPORT.json OUT.svg
//
// No dependencies: the SVG is written by hand.
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/plot-sim.mjs REPORT.json OUT.svg');
  process.exit(2);
}

const report = JSON.parse(readFileSync(input, 'utf8'));
const shoal = report.shoal?.timeseries ?? [];
const base = report.baseline?.timeseries ?? [];
if (shoal.length === 0) {
  console.error(`${input}: no time series in the Shoal run`);
  process.exit(1);
}
const hasBaseline = base.length > 0;

const W = 900;
const PANEL_H = 230;
const M = { left: 70, right: 190, top: 75, gap: 60, bottom: 45 };
const plotW = W - M.left - M.right;
const H = M.top + 2 * PANEL_H + M.gap + M.bottom;
const tMax = Math.max(report.durationS ?? 0, ...shoal.map((r) => r.tS));

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v) => (Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** A "nice" upper bound and tick step for an axis from 0 to max. */
function niceScale(max) {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step, step };
}

function panel(y0, title, unit, series) {
  const max = Math.max(0, ...series.flatMap((s) => s.rows.map(s.value)));
  const { top, step } = niceScale(max);
  const x = (t) => M.left + (t / tMax) * plotW;
  const y = (v) => y0 + PANEL_H - (v / top) * PANEL_H;
  const out = [];
  for (const o of report.outages ?? []) {
    // The scenario's own field names (snake_case, as in the TOML).
    const from = o.from_s ?? o.fromS ?? 0;
    const dur = o.duration_s ?? o.durationS ?? 0;
    const a = x(Math.max(0, from));
    const b = x(Math.min(tMax, from + dur));
    const label = `CDN ${o.kind}${o.kind === 'throttle' ? ` ${o.mbps} Mb/s` : ''}, ${Math.round(o.fraction * 100)}% of viewers`;
    out.push(`<rect x="${a}" y="${y0}" width="${Math.max(0, b - a)}" height="${PANEL_H}" fill="#f4c7c3" opacity="0.55"><title>${esc(label)}</title></rect>`);
    out.push(`<text x="${a + 4}" y="${y0 + 14}" font-size="11" fill="#a33">${esc(label)}</text>`);
  }
  for (let v = 0; v <= top + 1e-9; v += step) {
    out.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${fmt(v)}</text>`);
  }
  const tStep = niceScale(tMax).step;
  for (let t = 0; t <= tMax + 1e-9; t += tStep) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${y0 + PANEL_H}" y2="${y0 + PANEL_H + 4}" stroke="#333"/>`);
    out.push(`<text x="${x(t)}" y="${y0 + PANEL_H + 17}" font-size="11" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${y0}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${M.left}" y="${y0 - 8}" font-size="13" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text transform="translate(${M.left - 50},${y0 + PANEL_H / 2}) rotate(-90)" font-size="11" text-anchor="middle">${esc(unit)}</text>`);
  series.forEach((s, i) => {
    if (s.rows.length === 0) return;
    const pts = s.rows.map((r) => `${x(r.tS).toFixed(1)},${y(s.value(r)).toFixed(1)}`).join(' ');
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="1.8"${dash}/>`);
    const ly = y0 + 16 + i * 18;
    const lx = M.left + plotW + 12;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 30}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

const affected = shoal.some((r) => (r.stalledAffected ?? 0) > 0) || base.some((r) => (r.stalledAffected ?? 0) > 0);
const cdnSeries = [{ name: 'with Shoal', rows: shoal, value: (r) => r.cdnMbps, color: '#1f6fb2' }];
if (hasBaseline) cdnSeries.push({ name: 'without Shoal', rows: base, value: (r) => r.cdnMbps, color: '#c0392b', dash: '6 4' });
cdnSeries.push({ name: 'P2P (with Shoal)', rows: shoal, value: (r) => r.p2pMbps, color: '#27ae60', dash: '2 3' });
const stallSeries = [{ name: 'with Shoal', rows: shoal, value: (r) => r.stalled, color: '#1f6fb2' }];
if (hasBaseline) stallSeries.push({ name: 'without Shoal', rows: base, value: (r) => r.stalled, color: '#c0392b', dash: '6 4' });
if (affected) {
  stallSeries.push({ name: 'affected, with Shoal', rows: shoal, value: (r) => r.stalledAffected ?? 0, color: '#8e44ad', dash: '2 3' });
}

const s = report.shoal;
const b = report.baseline;
const subtitle = [
  `${s.viewers} viewers, ${report.live ? 'live' : 'VOD'}, ${report.durationS} s, seed ${report.seed}, byte scale ${report.byteScale}`,
  `offload ${(s.offload * 100).toFixed(1)}%, CDN bytes ÷${report.cdnRatio}, rebuffer ${(s.rebufferRatio * 100).toFixed(3)}%` +
    (hasBaseline ? ` (without Shoal ${(b.rebufferRatio * 100).toFixed(3)}%)` : '') +
    (s.affected ? `; affected viewers ${(s.affected.rebufferRatio * 100).toFixed(3)}%` + (hasBaseline && b.affected ? ` vs ${(b.affected.rebufferRatio * 100).toFixed(3)}%` : '') : ''),
].join(' — ');

const y1 = M.top;
const y2 = M.top + PANEL_H + M.gap;
const svg = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${M.left}" y="20" font-size="15" font-weight="bold">${esc(`shoal-sim: ${report.scenario}`)}</text>
<text x="${M.left}" y="38" font-size="11" fill="#444">${esc(subtitle.split(' — ')[0])}</text>
<text x="${M.left}" y="54" font-size="11" fill="#444">${esc(subtitle.split(' — ')[1] ?? '')}</text>
${panel(y1, 'CDN egress', 'Mbit/s', cdnSeries)}
${panel(y2, 'Stalled viewers (sampled)', 'viewers', stallSeries)}
<text x="${M.left + plotW / 2}" y="${H - 8}" font-size="11" text-anchor="middle">simulated time (s)</text>
</svg>
`;
writeFileSync(output, svg);
console.log(`wrote ${output}`);
