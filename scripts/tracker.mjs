#!/usr/bin/env node
// Standalone WebSocket tracker. Usage: node scripts/tracker.mjs [--host 127.0.0.1] [--port 8000]
import { startTracker } from './lib/tracker.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : d);
const t = await startTracker({ host: opt('--host', '127.0.0.1'), port: Number(opt('--port', 8000)) });
const stop = async () => { await t.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
