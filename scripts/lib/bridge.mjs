// Byte pipes between a TCP port and a Unix socket. The demo uses them to let headless viewers
// inside the private network namespace reach the origin and tracker running on the host's
// loopback, without giving the namespace any route to the host: a Unix socket is a file, and
// the namespace shares the filesystem.
import fs from 'node:fs';
import net from 'node:net';

const pipe = (a, b) => {
  a.pipe(b).on('error', () => a.destroy());
  b.pipe(a).on('error', () => b.destroy());
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
};

/** Listen on a Unix socket; forward each connection to host:port (TCP). */
export function unixToTcp(socketPath, port, host = '127.0.0.1') {
  fs.rmSync(socketPath, { force: true });
  const s = net.createServer((c) => pipe(c, net.connect(port, host)));
  return new Promise((ok, fail) => { s.once('error', fail); s.listen(socketPath, () => ok(s)); });
}

/** Listen on host:port (TCP); forward each connection to a Unix socket. */
export function tcpToUnix(port, socketPath, host = '127.0.0.1') {
  const s = net.createServer((c) => pipe(c, net.connect(socketPath)));
  return new Promise((ok, fail) => { s.once('error', fail); s.listen(port, host, () => ok(s)); });
}
