// A stand-in for the wasm engine with the same JS surface (WasmModuleApi), used only by the
// browser tests that exercise the shim's plumbing without the Rust core: every requested
// segment goes over HTTP through the shim's transport; every peer candidate is accepted; each
// connected peer gets a numbered burst of messages so tests can check order, integrity and
// backpressure across a real RTCDataChannel. It has no start hold: its announces offer at once.
// Options: {burst: messages per peer, size: bytes per message, refuseConfig: config fields the
// constructor throws on (an engine that does not know them)}.

function fnvHex40(text) {
  // Five independent 32-bit FNV-1a lanes -> 40 hex digits (deterministic; not cryptographic).
  let out = '';
  for (let lane = 0; lane < 5; lane++) {
    let h = (0x811c9dc5 ^ (lane * 0x9e3779b1)) >>> 0;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    out += h.toString(16).padStart(8, '0');
  }
  return out;
}

export function makeFakeEngine({ burst = 64, size = 16 * 1024, refuseConfig = [] } = {}) {
  const state = {
    inputs: [],
    announced: new Set(),
    connected: new Set(),
    received: {}, // conn -> {count, inOrder, bytes}
    sent: 0,
    httpDown: 0,
    timeline: [],
  };
  class WasmEngine {
    constructor(config) {
      for (const f of refuseConfig) if (config[f] !== undefined) throw new Error(`unknown field \`${f}\``);
      this.config = config;
      this.http = new Map(); // http id -> {req, chunks, total, start, first}
      this.reqToHttp = new Map();
      this.nextHttp = 1;
      state.engine = this;
    }
    peerId() {
      if (!this.id) this.id = Array.from(crypto.getRandomValues(new Uint8Array(20)), (x) => x.toString(16).padStart(2, '0')).join('');
      return this.id;
    }
    handleTimeout() { return []; }
    pollTimeout() { return undefined; }
    free() {}
    stats() {
      return {
        httpDown: state.httpDown, p2pDown: 0, p2pUp: state.sent, p2pDiscarded: 0, segmentsHttp: 0,
        segmentsP2p: 0, peers: state.connected.size, peersBanned: 0, cacheBytes: 0, perPeer: [],
      };
    }
    handleInput(now, input) {
      state.inputs.push(input.type);
      if (input.type.startsWith('peer') && input.type !== 'peerMessage') state.timeline.push(`${Math.round(now)} ${input.type} ${input.conn}`);
      switch (input.type) {
        case 'playlist':
          this.swarms ??= new Set();
          this.swarms.add(input.swarm);
          if (this.config.p2pEnabled && !state.announced.has(input.swarm)) {
            state.announced.add(input.swarm);
            return [{ type: 'announce', swarm: input.swarm, event: 'started', numwant: 5, offers: 5, inbound: 'answer' }];
          }
          return [];
        case 'segmentRequested': {
          const id = this.nextHttp++;
          this.http.set(id, { req: input.req, chunks: [], loaded: 0, total: null, start: now, first: 0 });
          this.reqToHttp.set(input.req, id);
          return [{ type: 'startHttp', id, url: input.url, range: input.range ?? null }];
        }
        case 'segmentAborted': {
          const id = this.reqToHttp.get(input.req);
          this.reqToHttp.delete(input.req);
          if (id === undefined) return [];
          this.http.delete(id);
          return [{ type: 'cancelHttp', id }];
        }
        case 'httpProgress': {
          const t = this.http.get(input.id);
          if (!t) return [];
          if (!t.first) t.first = now;
          t.chunks.push(input.data.slice());
          t.loaded += input.data.byteLength;
          state.httpDown += input.data.byteLength;
          if (input.total != null) t.total = input.total;
          return [{ type: 'segmentProgress', req: t.req, loaded: t.loaded, total: t.total }];
        }
        case 'httpDone': {
          const t = this.http.get(input.id);
          if (!t) return [];
          this.http.delete(input.id);
          this.reqToHttp.delete(t.req);
          const data = new Uint8Array(t.loaded);
          let o = 0;
          for (const c of t.chunks) { data.set(c, o); o += c.byteLength; }
          return [{ type: 'deliverSegment', req: t.req, data, timing: {
            httpBytes: t.loaded, p2pBytes: 0, transferStart: t.start, firstByte: t.first || now,
            transferEnd: now, fromCache: false } }];
        }
        case 'httpFailed': {
          const t = this.http.get(input.id);
          if (!t) return [];
          this.http.delete(input.id);
          return [{ type: 'failSegment', req: t.req, reason: `http ${input.status}` }];
        }
        case 'peerCandidate':
          return [{ type: 'connectPeer', conn: input.conn }];
        case 'peerConnected': {
          state.connected.add(input.conn);
          state.received[input.conn] = { count: 0, inOrder: true, bytes: 0 };
          const outs = [];
          for (let i = 0; i < burst; i++) {
            const data = new Uint8Array(size);
            new DataView(data.buffer).setUint32(0, i);
            for (let j = 4; j < size; j++) data[j] = (i + j) & 0xff;
            outs.push({ type: 'sendToPeer', conn: input.conn, data });
            state.sent += size;
          }
          return outs;
        }
        case 'peerMessage': {
          const r = state.received[input.conn];
          if (!r) return [];
          const d = input.data;
          const seq = d.byteLength >= 4 ? new DataView(d.buffer, d.byteOffset).getUint32(0) : -1;
          let ok = seq === r.count && d.byteLength === size;
          for (let j = 4; ok && j < d.byteLength; j++) ok = d[j] === ((seq + j) & 0xff);
          if (!ok) r.inOrder = false;
          r.count++;
          r.bytes += d.byteLength;
          if (r.count === burst) state.timeline.push(`${Math.round(now)} burst-done ${input.conn}`);
          return [];
        }
        case 'peerClosed':
          state.connected.delete(input.conn);
          return [];
        case 'setPolicy': {
          // Like the engine (`set_policy`): P2P turned on announces every known swarm
          // `started`; turned off, `stopped`.
          const was = this.config.p2pEnabled === true;
          this.config = { ...this.config, p2pEnabled: input.p2pEnabled, uploadBytesPerSec: input.uploadBytesPerSec };
          if (was === input.p2pEnabled) return [];
          return [...(this.swarms ?? [])].map((swarm) => input.p2pEnabled
            ? { type: 'announce', swarm, event: 'started', numwant: 5, offers: 5, inbound: 'answer' }
            : { type: 'announce', swarm, event: 'stopped', numwant: 0, offers: 0, inbound: 'ignore' });
        }
        default:
          return [];
      }
    }
  }
  return { module: { WasmEngine, deriveSwarmId: (a, b) => fnvHex40(`${a}\u0000${b}`) }, state };
}
