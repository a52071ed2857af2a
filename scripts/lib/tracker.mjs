// A local WebTorrent tracker: the npm `bittorrent-tracker` server with only its WebSocket
// transport (no HTTP announce, no UDP), so nothing but browsers' signalling reaches it.
// The server relays offers/answers verbatim; it never sees media.
import Server from 'bittorrent-tracker/server';

/**
 * @param {{host?: string, port?: number, quiet?: boolean, logEveryMs?: number}} [opts]
 * @returns {Promise<{url: string, host: string, port: number, counts(): {swarms: number, peers: number, perSwarm: Record<string, number>}, close(): Promise<void>}>}
 */
export async function startTracker({ host = '127.0.0.1', port = 0, quiet = false, logEveryMs = 5000 } = {}) {
  const server = new Server({ http: false, udp: false, ws: true, stats: false, interval: 30_000 });
  server.on('error', (e) => console.error(`tracker: error ${e.message}`));
  // Malformed announces are the client's problem; the tracker keeps serving others.
  server.on('warning', (e) => quiet || console.error(`tracker: warning ${e.message}`));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.http.address().port;
  const counts = () => {
    const perSwarm = {};
    let peers = 0;
    for (const [hash, swarm] of Object.entries(server.torrents)) {
      const n = (swarm.complete || 0) + (swarm.incomplete || 0);
      perSwarm[hash] = n;
      peers += n;
    }
    return { swarms: Object.keys(perSwarm).length, peers, perSwarm };
  };
  let last = '';
  const timer = setInterval(() => {
    if (quiet) return;
    const c = counts();
    const line = `tracker: ${c.swarms} swarm(s), ${c.peers} peer announce(s)` +
      (c.swarms ? ` [${Object.values(c.perSwarm).join(' ')}]` : '');
    if (line !== last) console.log(line);
    last = line;
  }, logEveryMs);
  timer.unref();
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  if (!quiet) console.log(`tracker: listening on ${url}`);
  return {
    url,
    host,
    port: actualPort,
    counts,
    close: () => new Promise((resolve) => {
      clearInterval(timer);
      server.close(() => resolve());
    }),
  };
}
