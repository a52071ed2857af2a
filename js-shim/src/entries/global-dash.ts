/**
 * `<script src=".../shoal-dash.iife.js">`: defines the globals `ShoalDash` and `ShoalError`.
 * The engine's .wasm is loaded from next to the script unless `wasmUrl` says otherwise.
 */
import { ShoalDash as ShoalDashModule, type ShoalDashOptions } from '../dashjs.js';
import { ShoalError } from '../errors.js';
import { withScriptWasmUrl } from './script-url.js';

export class ShoalDash extends ShoalDashModule {
  constructor(config: ShoalDashOptions = {}) {
    super(withScriptWasmUrl(config));
  }
}

export { ShoalError };

Object.assign(globalThis, { ShoalDash, ShoalError });
