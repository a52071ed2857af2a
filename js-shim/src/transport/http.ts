/**
 * HTTP transfers the engine asks for (`startHttp`), streamed back as `httpProgress` chunks.
 *
 * Invariants: after `cancel(id)` or a terminal callback (`done`/`failed`) no further callback
 * fires for `id`. Byte ranges are half-open (`end` exclusive) and sent as
 * `Range: bytes=start-(end-1)`. If a server ignores the Range header (200 with the full body)
 * the bytes outside the range are skipped so the engine only ever sees the range it asked for.
 */
import type { ByteRange } from '../core-types.js';

export interface HttpSink {
  progress(data: Uint8Array, total: number | null): void;
  done(): void;
  failed(status: number, reason: string): void;
}

interface Transfer {
  controller: AbortController;
  finished: boolean;
}

export class HttpTransport {
  private readonly transfers = new Map<number, Transfer>();

  constructor(private readonly fetchImpl: typeof fetch = globalThis.fetch.bind(globalThis)) {}

  start(id: number, url: string, range: ByteRange | null, sink: HttpSink): void {
    this.cancel(id);
    const transfer: Transfer = { controller: new AbortController(), finished: false };
    this.transfers.set(id, transfer);
    void this.run(id, url, range, sink, transfer);
  }

  cancel(id: number): void {
    const t = this.transfers.get(id);
    if (!t) return;
    this.transfers.delete(id);
    t.finished = true;
    t.controller.abort();
  }

  cancelAll(): void {
    for (const id of [...this.transfers.keys()]) this.cancel(id);
  }

  get active(): number {
    return this.transfers.size;
  }

  private finish(id: number, t: Transfer): boolean {
    if (t.finished) return false;
    t.finished = true;
    if (this.transfers.get(id) === t) this.transfers.delete(id);
    return true;
  }

  private async run(id: number, url: string, range: ByteRange | null, sink: HttpSink, t: Transfer): Promise<void> {
    const headers: Record<string, string> = {};
    if (range) headers['Range'] = `bytes=${range.start}-${range.end - 1}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, { headers, signal: t.controller.signal, cache: 'default' });
    } catch (err) {
      if (this.finish(id, t)) sink.failed(0, err instanceof Error ? err.message : 'network error');
      return;
    }
    if (t.finished) return;
    if (!response.ok) {
      if (this.finish(id, t)) sink.failed(response.status, response.statusText || `HTTP ${response.status}`);
      void response.body?.cancel().catch(() => undefined);
      return;
    }
    // A 200 to a ranged request carries the whole resource: keep only [start, end).
    const skipTo = range && response.status === 200 ? range.start : 0;
    const limit = range && response.status === 200 ? range.end : Number.POSITIVE_INFINITY;
    let total: number | null = null;
    const len = response.headers.get('Content-Length');
    if (len !== null && !response.headers.get('Content-Encoding') && /^\d+$/.test(len)) {
      total = Number(len);
      if (range && response.status === 200) total = Math.max(0, Math.min(total, range.end) - range.start);
    }
    const body = response.body;
    if (!body) {
      if (this.finish(id, t)) sink.done();
      return;
    }
    const reader = body.getReader();
    let offset = 0; // position in the response body
    let first = true;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (t.finished) {
          void reader.cancel().catch(() => undefined);
          return;
        }
        if (done) break;
        const chunkStart = offset;
        offset += value.byteLength;
        const from = Math.max(0, skipTo - chunkStart);
        const to = Math.min(value.byteLength, limit - chunkStart);
        if (to > from) {
          const piece = from === 0 && to === value.byteLength ? value : value.subarray(from, to);
          sink.progress(piece, first ? total : null);
          first = false;
          if (t.finished) return; // the sink may cancel synchronously
        }
        if (offset >= limit) {
          void reader.cancel().catch(() => undefined);
          break;
        }
      }
    } catch (err) {
      if (this.finish(id, t)) sink.failed(0, err instanceof Error ? err.message : 'body read error');
      return;
    }
    if (this.finish(id, t)) sink.done();
  }
}
