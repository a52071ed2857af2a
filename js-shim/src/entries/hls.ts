/**
 * `shoal-p2p/hls`: the hls.js entry alone (no dash.js adapter), for pages that ship one player.
 * Same classes as the package root, so `instanceof` holds across both imports.
 */
export { ShoalHls, type ShoalHlsOptions, type ShoalDiagnostics } from '../hlsjs.js';
export { ShoalError } from '../errors.js';
export type { AbrTiming, HlsAdapterCounters } from '../adapters/hlsjs.js';
export type * from '../shared-types.js';
