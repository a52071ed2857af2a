/**
 * `shoal-p2p/dash`: the dash.js entry alone (no hls.js adapter), for pages that ship one player.
 * Same classes as the package root, so `instanceof` holds across both imports.
 */
export {
  ShoalDash,
  type ShoalDashOptions,
  type ShoalDashDiagnostics,
  type DashPlayer,
  type DashAdapterCounters,
} from '../dashjs.js';
export { ShoalError } from '../errors.js';
export type * from '../shared-types.js';
