/**
 * shoal-p2p: peer-assisted HLS for hls.js (`ShoalHls`) and DASH for dash.js (`ShoalDash`).
 * `shoal-p2p/hls` and `shoal-p2p/dash` export one player each (a smaller bundle).
 *
 * ```ts
 * const shoal = new ShoalHls({ trackers: ['wss://tracker.example'] });
 * const hls = new Hls(shoal.hlsConfig({ maxBufferLength: 30 }));
 * shoal.attach(hls);
 * hls.loadSource(url); hls.attachMedia(video);
 * ```
 */
export type * from './shared-types.js';
export type { AbrTiming, HlsAdapterCounters } from './adapters/hlsjs.js';
export type { WasmModuleApi, WasmEngineApi } from './core-types.js';
export { ShoalError } from './errors.js';

export { ShoalHls, type ShoalHlsOptions, type ShoalDiagnostics } from './hlsjs.js';
export { ShoalDash, type ShoalDashOptions, type ShoalDashDiagnostics, type DashPlayer, type DashAdapterCounters } from './dashjs.js';
