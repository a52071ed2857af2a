/**
 * WebTorrent WebSocket tracker client (the protocol of the npm `bittorrent-tracker` server,
 * `aquatic_ws` and public WebTorrent trackers).
 *
 * Invariants:
 * - `info_hash` and `peer_id` travel as 20-char binary strings (one char per byte); inside the
 *   shim they are 40-hex strings (the engine's SwarmId / PeerId).
 * - One announce per swarm and tracker each time the engine asks; offers are complete SDPs
 *   (no trickle) and belong to the socket that sent them: answers are matched by offer id.
 * - A dropped socket reconnects with exponential backoff and re-announces the swarms that were
 *   active; unanswered offers expire.
 * - Nothing from the tracker is trusted: malformed messages are dropped.
 * - No policy: each announce carries the engine's `Announce` order for its swarm (the engine's
 *   start hold and swarm-size gate decide them): `offers` WebRTC offers are made (0: the
 *   tracker counts us and reports the swarm's size, relaying nothing), and offers from others
 *   are answered, queued or ignored as `inbound` says. An order that answers again hands over
 *   the swarm's queued offers that are still fresh. A reconnect repeats each swarm's last order.
 */
import type { AnnounceEvent, CoreOutput, Hex40, InboundOffers } from '../core-types.js';
import { isSessionDescription, type SessionDescription } from './webrtc.js';

const OFFER_TTL_MS = 50_000;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

export function hexToBinary(hex: string): string {
  let out = '';
  for (let i = 0; i + 1 < hex.length; i += 2) out += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return out;
}

/** 40-hex of a 20-char binary string; null if it is not one. */
export function binaryToHex(bin: unknown): Hex40 | null {
  if (typeof bin !== 'string' || bin.length !== 20) return null;
  let out = '';
  for (let i = 0; i < bin.length; i++) {
    const c = bin.charCodeAt(i);
    if (c > 0xff) return null;
    out += c.toString(16).padStart(2, '0');
  }
  return out;
}

export function randomHex20(): Hex40 {
  const b = new Uint8Array(20);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** An offer we made; the tracker client keeps it until answered or expired. */
export interface OfferHandle<T> {
  payload: T;
  sdp: SessionDescription;
}

export interface TrackerHooks<T> {
  /** Make one outbound offer (complete SDP). */
  createOffer(swarm: Hex40): Promise<OfferHandle<T>>;
  /** Throw away an offer nobody answered. */
  dropOffer(offer: OfferHandle<T>): void;
  /** A peer answered one of our offers. */
  onAnswer(swarm: Hex40, peer: Hex40, offer: OfferHandle<T>, answer: SessionDescription): void;
  /** A peer offered a connection; `reply(answer)` relays our answer through the same tracker. */
  onOffer(swarm: Hex40, peer: Hex40, offer: SessionDescription, reply: (answer: SessionDescription) => void): void;
  /** Non-fatal problems (tracker refused, socket errors): for logs and the app. */
  onWarning(url: string, detail: string): void;
  /** An announce answer counted `others` other viewers in the swarm. */
  onSwarmPeers?(swarm: Hex40, others: number): void;
}

/** The engine's order for one swarm: `Output::Announce` without its type and swarm. */
export type AnnounceOrder = Omit<Extract<CoreOutput, { type: 'announce' }>, 'type' | 'swarm'>;

interface SwarmState {
  offers: number;
  inbound: InboundOffers;
  /** The engine's limits on queued offers (`inbound: 'queue'`): how many are kept, how old one may be when answered. */
  queueMax: number;
  queueMaxAgeMs: number;
}

interface QueuedOffer {
  swarm: Hex40;
  peer: Hex40;
  offer: SessionDescription;
  reply: (answer: SessionDescription) => void;
  at: number;
}

interface Pending<T> {
  swarm: Hex40;
  offer: OfferHandle<T>;
  timer: ReturnType<typeof setTimeout>;
}

class TrackerSocket<T> {
  private ws: WebSocket | null = null;
  private backoff = BACKOFF_MIN_MS;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly swarms = new Map<Hex40, SwarmState>();
  private readonly offers = new Map<string, Pending<T>>(); // offer_id (binary) -> offer
  private destroyed = false;
  private queued: QueuedOffer[] = [];
  /** Messages received, for tests and stats. */
  received = 0;

  constructor(
    readonly url: string,
    private readonly peerIdBin: string,
    private readonly hooks: TrackerHooks<T>,
  ) {}

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  announce(swarm: Hex40, order: AnnounceOrder): void {
    if (this.destroyed) return;
    const event = order.event;
    if (event === 'stopped') {
      this.swarms.delete(swarm);
      this.queued = this.queued.filter((q) => q.swarm !== swarm);
      if (this.connected) this.sendAnnounce(swarm, 'stopped');
      return;
    }
    const inbound = order.inbound ?? 'answer';
    this.swarms.set(swarm, { offers: order.offers ?? 0, inbound, queueMax: order.queueMax, queueMaxAgeMs: order.queueMaxAgeMs });
    if (inbound !== 'queue') {
      const mine = this.queued.filter((q) => q.swarm === swarm);
      this.queued = this.queued.filter((q) => q.swarm !== swarm);
      const fresh = mine.filter((q) => Date.now() - q.at <= order.queueMaxAgeMs);
      if (inbound === 'answer') for (const q of fresh) this.hooks.onOffer(q.swarm, q.peer, q.offer, q.reply);
    }
    if (this.connected) this.sendAnnounce(swarm, event);
    else this.open();
  }

  private open(): void {
    if (this.ws || this.reconnectTimer || this.destroyed) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.hooks.onWarning(this.url, `cannot open: ${err instanceof Error ? err.message : String(err)}`);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = BACKOFF_MIN_MS;
      for (const swarm of this.swarms.keys()) this.sendAnnounce(swarm, 'started');
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data === 'string') this.onMessage(ev.data);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.destroyed) {
        this.hooks.onWarning(this.url, 'socket closed');
        this.scheduleReconnect();
      }
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  private scheduleReconnect(): void {
    if (this.destroyed || this.reconnectTimer || this.swarms.size === 0) return;
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open();
    }, delay);
  }

  private send(msg: object): void {
    if (!this.connected || !this.ws) return;
    this.ws.send(JSON.stringify(msg));
  }

  private sendAnnounce(swarm: Hex40, event: AnnounceEvent): void {
    const base = {
      action: 'announce',
      info_hash: hexToBinary(swarm),
      peer_id: this.peerIdBin,
      uploaded: 0,
      downloaded: 0,
      left: 1,
    };
    if (event === 'stopped') {
      this.send({ ...base, event: 'stopped', numwant: 0 });
      return;
    }
    const offers = this.swarms.get(swarm)?.offers ?? 0;
    const count = Number.isFinite(offers) ? Math.max(0, Math.floor(offers)) : 0;
    void this.makeOffers(swarm, count).then((offers) => {
      if (this.destroyed || !this.swarms.has(swarm)) {
        for (const o of offers) this.expire(o);
        return;
      }
      this.send({
        ...base,
        event: event === 'started' ? 'started' : 'update',
        numwant: offers.length,
        offers: offers.map((o) => ({ offer: o.sdpForWire, offer_id: o.id })),
      });
    });
  }

  private async makeOffers(swarm: Hex40, count: number): Promise<Array<{ id: string; sdpForWire: SessionDescription }>> {
    const made = await Promise.allSettled(Array.from({ length: count }, () => this.hooks.createOffer(swarm)));
    const out: Array<{ id: string; sdpForWire: SessionDescription }> = [];
    for (const r of made) {
      if (r.status !== 'fulfilled') {
        this.hooks.onWarning(this.url, `offer failed: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
        continue;
      }
      const id = hexToBinary(randomHex20());
      const timer = setTimeout(() => this.expire({ id }), OFFER_TTL_MS);
      this.offers.set(id, { swarm, offer: r.value, timer });
      out.push({ id, sdpForWire: r.value.sdp });
    }
    return out;
  }

  private expire(o: { id: string }): void {
    const p = this.offers.get(o.id);
    if (!p) return;
    this.offers.delete(o.id);
    clearTimeout(p.timer);
    this.hooks.dropOffer(p.offer);
  }

  private onMessage(text: string): void {
    this.received++;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    const m = msg as Record<string, unknown>;
    const failure = m['failure reason'];
    if (typeof failure === 'string') {
      this.hooks.onWarning(this.url, failure);
      return;
    }
    if (m.action !== 'announce') return;
    const swarm = binaryToHex(m.info_hash);
    const state = swarm ? this.swarms.get(swarm) : undefined;
    if (!swarm || !state) return;
    if (typeof m.complete === 'number' && typeof m.incomplete === 'number') {
      const others = Math.max(0, m.complete + m.incomplete - 1);
      if (Number.isFinite(others) && m.offer === undefined && m.answer === undefined) this.hooks.onSwarmPeers?.(swarm, others);
    }
    const peer = binaryToHex(m.peer_id);
    if (!peer || m.peer_id === this.peerIdBin) return;
    const offerId = m.offer_id;
    if (typeof offerId !== 'string' || offerId.length !== 20) return;
    if (isSessionDescription(m.offer, 'offer')) {
      const remotePeerBin = m.peer_id as string;
      const infoHash = m.info_hash as string;
      const reply = (answer: SessionDescription) => {
        this.send({
          action: 'announce',
          info_hash: infoHash,
          peer_id: this.peerIdBin,
          to_peer_id: remotePeerBin,
          answer,
          offer_id: offerId,
        });
      };
      if (state.inbound === 'ignore') return;
      if (state.inbound === 'queue') {
        this.queued.push({ swarm, peer, offer: m.offer, reply, at: Date.now() });
        if (this.queued.length > state.queueMax) this.queued.shift();
        return;
      }
      this.hooks.onOffer(swarm, peer, m.offer, reply);
    } else if (isSessionDescription(m.answer, 'answer')) {
      const p = this.offers.get(offerId);
      if (!p || p.swarm !== swarm) return;
      this.offers.delete(offerId);
      clearTimeout(p.timer);
      this.hooks.onAnswer(swarm, peer, p.offer, m.answer);
    }
  }

  destroy(): void {
    this.destroyed = true;
    this.queued = [];
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    for (const id of [...this.offers.keys()]) this.expire({ id });
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        /* ignore */
      }
    }
  }
}

export class TrackerClient<T> {
  private readonly sockets: TrackerSocket<T>[];
  readonly peerId: Hex40;

  constructor(urls: readonly string[], peerId: Hex40, hooks: TrackerHooks<T>) {
    this.peerId = peerId;
    const bin = hexToBinary(peerId);
    this.sockets = [...new Set(urls)].map((u) => new TrackerSocket<T>(u, bin, hooks));
  }

  /** Carries out the engine's `Announce` for `swarm` on every tracker. */
  announce(swarm: Hex40, order: AnnounceOrder): void {
    for (const s of this.sockets) s.announce(swarm, order);
  }

  /** Trackers with an open socket. */
  get connected(): number {
    return this.sockets.filter((s) => s.connected).length;
  }

  destroy(): void {
    for (const s of this.sockets) s.destroy();
  }
}
