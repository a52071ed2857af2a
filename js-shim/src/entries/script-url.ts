/**
 * For the `<script>` (IIFE) builds: where the engine's .wasm is. A classic script has no
 * `import.meta.url`; `document.currentScript` names the script only while it first runs, so it
 * is read here, at evaluation, and the .wasm is looked up next to it
 * (`<dir of the script>/wasm/shoal_bg.wasm`, the package's dist layout). The `wasmUrl` option
 * overrides it, e.g. when the script is served from one place and the .wasm from another.
 */
import type { ShoalPlayerOptions } from '../player-base.js';

const current = typeof document === 'undefined' ? null : document.currentScript;
const scriptSrc = current !== null && current instanceof HTMLScriptElement && current.src !== '' ? current.src : undefined;

/** `config` with `wasmUrl` defaulting to the .wasm next to this script (when it is known). */
export function withScriptWasmUrl<T extends ShoalPlayerOptions>(config: T): T {
  if (config.wasmUrl !== undefined || config.engineModule !== undefined || scriptSrc === undefined) return config;
  return { ...config, wasmUrl: new URL('wasm/shoal_bg.wasm', scriptSrc).href };
}
