/**
 * `<script src=".../shoal-hls.iife.js">`: defines the globals `ShoalHls` and `ShoalError`.
 * The engine's .wasm is loaded from next to the script unless `wasmUrl` says otherwise.
 */
import { ShoalHls as ShoalHlsModule, type ShoalHlsOptions } from '../hlsjs.js';
import { ShoalError } from '../errors.js';
import { withScriptWasmUrl } from './script-url.js';

export class ShoalHls extends ShoalHlsModule {
  constructor(config: ShoalHlsOptions = {}) {
    super(withScriptWasmUrl(config));
  }
}

export { ShoalError };

Object.assign(globalThis, { ShoalHls, ShoalError });
