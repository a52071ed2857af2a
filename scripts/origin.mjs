#!/usr/bin/env node
// Standalone origin. Usage: node scripts/origin.mjs [--vod|--live] [--media DIR] [--host H]...
//   [--port P] [--window 6]. Generates ./media first if it is missing and --media is not given.
import { ensureMedia } from './lib/index.mjs';
import { startOrigin } from './lib/origin.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : d);
const hosts = argv.flatMap((a, i) => (a === '--host' ? [argv[i + 1]] : []));
const mediaDir = opt('--media', null) || ensureMedia();
const o = await startOrigin({
  mediaDir, hosts: hosts.length ? hosts : ['127.0.0.1'], port: Number(opt('--port', 8080)),
  live: argv.includes('--live'), windowSegments: Number(opt('--window', 6)),
});
for (const [k] of Object.entries(o.masters)) console.log(`  ${k}: ${o.url}${o.masterPath(k)}`);
const stop = async () => { await o.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
