/**
 * `<script src=".../shoal.iife.js">`: both players; defines the globals `ShoalHls`,
 * `ShoalDash` and `ShoalError` (the one-player scripts `shoal-hls.iife.js` and
 * `shoal-dash.iife.js` are smaller).
 */
export { ShoalHls } from './global-hls.js';
export { ShoalDash, ShoalError } from './global-dash.js';
