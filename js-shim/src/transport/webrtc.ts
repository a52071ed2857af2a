/**
 * WebRTC plumbing: one RTCPeerConnection and one negotiated, ordered, binary data channel per
 * connection. SDP never leaves this file and the tracker client; the engine only sees conn ids.
 *
 * Invariants:
 * - Non-trickle: an SDP is handed out only after ICE gathering completed (the WebTorrent
 *   trackers relay one complete SDP per offer/answer).
 * - A conn reported to the engine (`peerCandidate`) ends with exactly one `onClose(conn)`
 *   unless the engine itself asked to close it (`close(conn)`).
 * - Sends never block: above `HIGH_WATER` buffered bytes messages queue in order and drain on
 *   `bufferedamountlow`; a peer that lets the queue grow past `MAX_QUEUED` is dropped.
 */

const CHANNEL_ID = 0;
const CHANNEL_LABEL = 'shoal';
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
const MAX_QUEUED = 16 * 1024 * 1024;
const GATHER_TIMEOUT_MS = 5_000;
const DISCONNECTED_GRACE_MS = 4_000;
const MAX_SDP_CHARS = 64 * 1024;

export interface PeerHubOptions {
  iceServers: RTCIceServer[];
  /** `'relay'`: only TURN candidates, so peers never learn this viewer's addresses. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** From `connect(conn)` to an open data channel. */
  connectTimeoutMs: number;
  /** A candidate the engine neither connects nor closes within this time is dropped. */
  candidateTimeoutMs?: number;
  onOpen(conn: number): void;
  onMessage(conn: number, data: Uint8Array): void;
  onClose(conn: number): void;
}

export interface SessionDescription {
  type: 'offer' | 'answer';
  sdp: string;
}

type ConnState = 'candidate' | 'connecting' | 'open' | 'closed';

interface Conn {
  id: number;
  state: ConnState;
  pc: RTCPeerConnection | null;
  dc: RTCDataChannel | null;
  /** inbound: the remote offer; outbound: the remote answer. */
  remote: SessionDescription;
  inbound: boolean;
  reply: ((answer: SessionDescription) => void) | null;
  queue: Uint8Array[];
  queuedBytes: number;
  timer: ReturnType<typeof setTimeout> | null;
  graceTimer: ReturnType<typeof setTimeout> | null;
}

/** An outbound offer waiting for an answer through the tracker. */
export interface PendingOffer {
  pc: RTCPeerConnection;
  dc: RTCDataChannel;
  sdp: SessionDescription;
}

export function isSessionDescription(v: unknown, type: 'offer' | 'answer'): v is SessionDescription {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { type?: unknown; sdp?: unknown };
  return o.type === type && typeof o.sdp === 'string' && o.sdp.length > 0 && o.sdp.length <= MAX_SDP_CHARS;
}

function waitForGathering(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    // Gathering can stall on an unreachable STUN server: use what we have by then.
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

export class PeerHub {
  private readonly conns = new Map<number, Conn>();
  private destroyed = false;

  constructor(private readonly opts: PeerHubOptions) {}

  private newPc(): { pc: RTCPeerConnection; dc: RTCDataChannel } {
    const pc = new RTCPeerConnection({ iceServers: this.opts.iceServers, iceTransportPolicy: this.opts.iceTransportPolicy ?? 'all' });
    const dc = pc.createDataChannel(CHANNEL_LABEL, { negotiated: true, id: CHANNEL_ID, ordered: true });
    dc.binaryType = 'arraybuffer';
    return { pc, dc };
  }

  /** Creates an outbound offer (complete SDP). The caller keeps it until an answer arrives. */
  async createOffer(): Promise<PendingOffer> {
    const { pc, dc } = this.newPc();
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitForGathering(pc);
      const local = pc.localDescription;
      if (!local || local.type !== 'offer') throw new Error('no local offer');
      return { pc, dc, sdp: { type: 'offer', sdp: local.sdp } };
    } catch (err) {
      pc.close();
      throw err;
    }
  }

  /** Discards an offer nobody answered. */
  dropOffer(offer: PendingOffer): void {
    offer.dc.close();
    offer.pc.close();
  }

  /** A remote peer answered `offer`: register it as candidate `conn` (not connected yet). */
  addOutbound(conn: number, offer: PendingOffer, answer: SessionDescription): void {
    const c = this.register(conn, answer, false, null);
    c.pc = offer.pc;
    c.dc = offer.dc;
  }

  /** A remote peer offered: register candidate `conn`; `reply` sends our answer back. */
  addInbound(conn: number, offer: SessionDescription, reply: (answer: SessionDescription) => void): void {
    this.register(conn, offer, true, reply);
  }

  private register(id: number, remote: SessionDescription, inbound: boolean, reply: Conn['reply']): Conn {
    const c: Conn = {
      id,
      state: 'candidate',
      pc: null,
      dc: null,
      remote,
      inbound,
      reply,
      queue: [],
      queuedBytes: 0,
      timer: null,
      graceTimer: null,
    };
    this.conns.set(id, c);
    c.timer = setTimeout(() => this.fail(c), this.opts.candidateTimeoutMs ?? 15_000);
    return c;
  }

  /** The engine accepted the candidate: complete the handshake. */
  connect(conn: number): void {
    const c = this.conns.get(conn);
    if (!c || c.state !== 'candidate') return;
    c.state = 'connecting';
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => this.fail(c), this.opts.connectTimeoutMs);
    void this.handshake(c).catch(() => this.fail(c));
  }

  private async handshake(c: Conn): Promise<void> {
    if (c.inbound) {
      const { pc, dc } = this.newPc();
      c.pc = pc;
      c.dc = dc;
      this.wire(c);
      await pc.setRemoteDescription(c.remote);
      await pc.setLocalDescription(await pc.createAnswer());
      await waitForGathering(pc);
      if (c.state === 'closed') return;
      const local = pc.localDescription;
      if (!local || local.type !== 'answer') throw new Error('no local answer');
      c.reply?.({ type: 'answer', sdp: local.sdp });
      c.reply = null;
    } else {
      this.wire(c);
      const pc = c.pc;
      if (!pc) throw new Error('outbound conn without pc');
      await pc.setRemoteDescription(c.remote);
    }
  }

  private wire(c: Conn): void {
    const { pc, dc } = c;
    if (!pc || !dc) return;
    dc.bufferedAmountLowThreshold = LOW_WATER;
    dc.onopen = () => {
      if (c.state !== 'connecting') return;
      c.state = 'open';
      if (c.timer) clearTimeout(c.timer);
      c.timer = null;
      this.opts.onOpen(c.id);
    };
    dc.onmessage = (ev: MessageEvent) => {
      if (c.state !== 'open') return;
      // Text frames are not part of the protocol; drop them.
      if (ev.data instanceof ArrayBuffer) this.opts.onMessage(c.id, new Uint8Array(ev.data));
    };
    dc.onclose = () => this.fail(c);
    dc.onerror = () => this.fail(c);
    dc.onbufferedamountlow = () => this.flush(c);
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      if (s === 'failed' || s === 'closed') this.fail(c);
      else if (s === 'disconnected') {
        if (!c.graceTimer) c.graceTimer = setTimeout(() => this.fail(c), DISCONNECTED_GRACE_MS);
      } else if (s === 'connected' && c.graceTimer) {
        clearTimeout(c.graceTimer);
        c.graceTimer = null;
      }
    };
  }

  send(conn: number, data: Uint8Array): void {
    const c = this.conns.get(conn);
    if (!c || c.state !== 'open' || !c.dc) return;
    if (c.queue.length > 0 || c.dc.bufferedAmount > HIGH_WATER) {
      c.queue.push(data);
      c.queuedBytes += data.byteLength;
      if (c.queuedBytes > MAX_QUEUED) this.fail(c);
      return;
    }
    this.rawSend(c, data);
  }

  private rawSend(c: Conn, data: Uint8Array): void {
    try {
      c.dc?.send(data as Uint8Array<ArrayBuffer>);
    } catch {
      this.fail(c);
    }
  }

  private flush(c: Conn): void {
    while (c.state === 'open' && c.dc && c.queue.length > 0 && c.dc.bufferedAmount <= HIGH_WATER) {
      const next = c.queue.shift();
      if (!next) break;
      c.queuedBytes -= next.byteLength;
      this.rawSend(c, next);
    }
  }

  /** Bytes waiting in our queue plus the channel's own buffer. */
  buffered(conn: number): number {
    const c = this.conns.get(conn);
    return c ? c.queuedBytes + (c.dc?.bufferedAmount ?? 0) : 0;
  }

  /** The engine closes the conn: no `onClose` follows. */
  close(conn: number): void {
    const c = this.conns.get(conn);
    if (c) this.teardown(c);
  }

  private fail(c: Conn): void {
    if (c.state === 'closed') return;
    this.teardown(c);
    if (!this.destroyed) this.opts.onClose(c.id);
  }

  private teardown(c: Conn): void {
    c.state = 'closed';
    this.conns.delete(c.id);
    if (c.timer) clearTimeout(c.timer);
    if (c.graceTimer) clearTimeout(c.graceTimer);
    c.timer = c.graceTimer = null;
    c.queue = [];
    c.queuedBytes = 0;
    c.reply = null;
    const { pc, dc } = c;
    if (dc) {
      dc.onopen = dc.onmessage = dc.onclose = dc.onerror = dc.onbufferedamountlow = null;
      try {
        dc.close();
      } catch {
        /* already closed */
      }
    }
    if (pc) {
      pc.onconnectionstatechange = null;
      try {
        pc.close();
      } catch {
        /* already closed */
      }
    }
  }

  get size(): number {
    return this.conns.size;
  }

  /** Every conn reported to the engine and not closed yet, in any state. */
  connIds(): number[] {
    return [...this.conns.keys()];
  }

  openConns(): number[] {
    return [...this.conns.values()].filter((c) => c.state === 'open').map((c) => c.id);
  }

  destroy(): void {
    this.destroyed = true;
    for (const c of [...this.conns.values()]) this.teardown(c);
  }
}
