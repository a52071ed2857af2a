/** The app-facing counters, shared by every player entry (`ShoalHls`, `ShoalDash`). */
import type { Driver } from './driver.js';
import type { ShoalStats } from './index.js';

/** `fallbackHttp`: bytes the player loaded with its own loader (fail open, init segments, other tracks). */
export function collectStats(driver: Driver, fallbackHttp: number): ShoalStats {
  const core = driver.coreStats();
  const httpDown = core?.httpDown ?? 0;
  const p2pDown = core?.p2pDown ?? 0;
  const all = httpDown + p2pDown + fallbackHttp;
  const p2pActive = driver.p2pActive;
  return {
    httpDown,
    p2pDown,
    p2pUp: core?.p2pUp ?? 0,
    fallbackHttp,
    peers: p2pActive ? (core?.peers ?? 0) : 0,
    peersBanned: core?.peersBanned ?? 0,
    offload: all > 0 ? p2pDown / all : 0,
    p2pActive,
  };
}
