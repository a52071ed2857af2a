// Reusable pieces for the demo, the benchmark and the browser tests (tests/e2e).
//
//   ensureMedia({outDir?, seconds?}) -> string
//       Generates media/ with ffmpeg if missing or incomplete (see scripts/gen-media.mjs) and
//       returns its absolute path. Flavours: ts/, fmp4/, byterange/ each with master.m3u8.
//   startOrigin({mediaDir?, hosts?=['127.0.0.1'], port?=0, live?=false, windowSegments?=6, quiet?})
//       -> Promise<{url, urls, port, masters, masterPath(flavour='ts', live?), stats(),
//                   resetStats(), addFault({mode:'fail'|'stall'|'throttle', status?, rateBps?,
//                   durationMs, clients?, clientPrefix?, pathPrefix?}) -> fault, endFault(fault),
//                   clearFaults(), reports(), close()}>   (ending a stall fault serves what it held)
//       Same routes over HTTP: /_shoal/stats, /_shoal/fault, /_shoal/hash, /_shoal/report.
//   startTracker({host?='127.0.0.1', port?=0, quiet?}) -> Promise<{url, port, counts(), close()}>
//   launchBrowser({headless?=true, args?}) -> Promise<Browser>   (playwright-core, /usr/bin/chromium)
//   launchViewer({browser?, originUrl, id, src, p2p?, trackers?, live?, flavour?, hlsConfig?,
//                 shim?: 'auto'|'none'}) -> Promise<Viewer>
//       Opens demo-page/viewer.html in a fresh browser context whose cookie `shoal_viewer=id`
//       makes the origin count its bytes. Viewer: {id, page, context, metrics() -> QoE object
//       (see demo-page/viewer.mjs), waitFor(pred, timeoutMs), close()}.
//   viewerFlags: string[]   Chromium flags used for every viewer.
//   startSwarm({viewers?=0, live?, flavour?='ts', p2p?=true, mediaDir?, staggerMs?=1000,
//               idPrefix?='v', viewerOptions?, tracker?=true})
//       -> Promise<{origin, tracker, browser, viewers, src, trackers, addViewer(extra?), close()}>
//       Media + origin + tracker + one Chromium + N viewers; tracker:false = "tracker down".
//   summarizeRun({mode, snapshots, originClients}), comparisonTable(runs): bench aggregation.
//   descendantsCpuSeconds(pid?): CPU seconds used by a process tree (viewers' cost).
// Browser work must run inside scripts/netns-run.sh (WebRTC needs the namespace's interface).
export { ensureMedia } from './media.mjs';
export { startOrigin, findPlaylists, readMasters, parseMediaPlaylist, ROOT } from './origin.mjs';
export { startTracker } from './tracker.mjs';
export { launchBrowser, launchViewer, viewerFlags } from './viewers.mjs';
export { startSwarm } from './swarm.mjs';
export { summarizeRun, comparisonTable, median } from './metrics.mjs';
export { descendantsCpuSeconds } from './cpu.mjs';
