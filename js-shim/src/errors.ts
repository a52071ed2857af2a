/**
 * The one error type the package emits. `code` says which layer failed; `cause` keeps the
 * original exception. Every ShoalError reported through `on('error')` means P2P was turned off
 * for that player (fail open) unless `fatal` is false.
 */
export type ShoalErrorCode =
  | 'wasm-load' // the wasm module could not be fetched or instantiated
  | 'core' // the engine threw
  | 'transport' // a transport (HTTP, WebRTC, tracker) threw unexpectedly
  | 'tracker' // a tracker refused or dropped us (not fatal: others may work)
  | 'manifest' // the integrity manifest could not be fetched
  | 'config'; // invalid configuration

export class ShoalError extends Error {
  readonly code: ShoalErrorCode;
  /** True when P2P was disabled for this player because of the error. */
  readonly fatal: boolean;

  constructor(code: ShoalErrorCode, message: string, options: { cause?: unknown; fatal?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShoalError';
    this.code = code;
    this.fatal = options.fatal ?? true;
  }
}

/** Short human text for anything thrown (Error, string, wasm-bindgen JsValue). */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
