/**
 * HTTP through fetch(): the upstream a browser always has. A guest TCP connection (port
 * 80 by the selector's default) is taken as HTTP/1.x: each request is parsed
 * (http-parse.ts), replayed with the injected `fetch`, and its response streamed back to
 * the guest as it arrives, re-framed (Content-Length when the length is known, else
 * chunked, or until close for an HTTP/1.0 client). Keep-alive: requests on one
 * connection are answered one at a time, in order (RFC 9112 §9.3.2).
 *
 * Where a request goes: 10.0.2.2 is the "own origin" (the page's origin: the files the
 * page's server serves, as QEMU's 10.0.2.2 is the host's loopback); a synthetic address
 * (upstream.ts) is the name the guest looked up, fetched as http://NAME[:port]/...; any
 * other address as itself.
 *
 * Redirects reach the guest as they happened: `redirect: 'manual'` where it shows the
 * 3xx (Node); a browser answers 'manual' with an opaque response that hides Location, so
 * then the request is made again following redirects and, when the response says it was
 * redirected, the guest gets a 302 to the final URL (and asks for it itself).
 *
 * A fetch that fails (a network error, or a response CORS does not let the page read:
 * both are a TypeError) is answered with 502 and a body in plain words if nothing of the
 * response was sent yet, else the connection is reset; either way an event says why.
 *
 * Not done: request bodies are buffered whole before the fetch starts (browsers stream
 * uploads only over HTTP/2); Upgrade/CONNECT (WebSocket through fetch) are refused.
 */
import type { HostDatagramSocket, HostListener, HostNetwork, HostStream, NetEvent } from './host.ts';
import {
  encodeChunk, encodeResponseHead, HttpRequestParser, LAST_CHUNK, latin1Bytes, responseHasNoBody, type BodyFraming, type HttpRequestHead,
} from './http-parse.ts';
import { flowName, isPlausibleName, SyntheticNames, UPSTREAM_LOOPBACK } from './upstream.ts';

/** The request `fetch` is given. */
export interface FetchInit {
  method: string;
  headers: [string, string][];
  body?: Uint8Array<ArrayBuffer>;
  redirect: 'manual' | 'follow';
  signal: AbortSignal;
}

/** The part of a fetch Response used here (the browser's and Node's both fit). */
export interface FetchResponseLike {
  readonly status: number;
  readonly statusText: string;
  readonly type: string;
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: { forEach(cb: (value: string, key: string) => void): void; get(name: string): string | null };
  readonly body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(reason?: unknown): Promise<void> } } | null;
}

export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponseLike>;

export interface FetchUpstreamOptions {
  /** The page's `fetch` (bound: `(u, i) => fetch(u, i)`), or Node's. */
  fetch: FetchLike;
  /** What 10.0.2.2 is: a base URL such as the page's origin ("https://trapdoor.example"); a path prefix is kept. */
  ownOrigin: string;
  /** Shared with the selector: DNS answers and the names behind them. */
  names?: SyntheticNames;
  /** Start with 'manual' (the default) or 'follow'; a browser's opaque redirect switches it to 'follow' by itself. */
  redirect?: 'manual' | 'follow';
  /** A request body larger than this is answered 413 (default 256 MiB). */
  maxRequestBody?: number;
}

export interface FetchUpstreamStats {
  connections: number;
  requests: number;
  responses: number;
  /** Fetches that failed (network error, CORS): 502 or a reset to the guest. */
  failures: number;
  /** Redirects shown to the guest (3xx passed on or synthesized). */
  redirects: number;
  /** Requests that could not be parsed (400). */
  badRequests: number;
  bytesToGuest: number;
  bytesFromGuest: number;
}

/** Request fields not passed to fetch: hop-by-hop ones (RFC 9110 §7.6.1) and those fetch sets itself. */
const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', 'expect']);

/** Bytes of whole requests waiting behind the one being answered before write() says "full". */
const PIPELINE_HIGH = 1 << 20;

export class FetchHostNetwork implements HostNetwork {
  onEvent?: (event: NetEvent) => void;
  readonly loopback = UPSTREAM_LOOPBACK;
  readonly names: SyntheticNames;
  readonly stats: FetchUpstreamStats = { connections: 0, requests: 0, responses: 0, failures: 0, redirects: 0, badRequests: 0, bytesToGuest: 0, bytesFromGuest: 0 };
  redirectMode: 'manual' | 'follow';
  readonly maxRequestBody: number;
  private readonly base: string;

  constructor(private readonly options: FetchUpstreamOptions) {
    this.names = options.names ?? new SyntheticNames();
    this.redirectMode = options.redirect ?? 'manual';
    this.maxRequestBody = options.maxRequestBody ?? 256 << 20;
    this.base = options.ownOrigin.replace(/\/+$/, '');
  }

  /** @internal */
  emit(kind: string, flow: string, message: string): void {
    try {
      this.onEvent?.({ kind, flow, message });
    } catch {
      // A listener's failure is not the connection's.
    }
  }

  /** @internal */
  doFetch(url: string, init: FetchInit): Promise<FetchResponseLike> {
    return this.options.fetch(url, init);
  }

  connectTcp(address: string, port: number): HostStream {
    this.stats.connections++;
    return new FetchStream(this, address, port);
  }

  openUdp(): HostDatagramSocket {
    throw new Error('fetch carries HTTP over TCP only, no UDP');
  }

  listenTcp(): Promise<HostListener> {
    return Promise.reject(new Error('a browser cannot listen on a port'));
  }

  listenUdp(): Promise<HostDatagramSocket> {
    return Promise.reject(new Error('a browser cannot listen on a port'));
  }

  resolve4(name: string): Promise<string[]> {
    if (!isPlausibleName(name)) return Promise.reject(new Error(`'${name}' is not a host name`));
    return Promise.resolve([this.names.addressFor(name)]);
  }

  /** The URL a request on a connection to address:port asks for. */
  urlFor(address: string, port: number, head: HttpRequestHead): string {
    let path = head.target;
    let hostFromTarget: string | null = null;
    const abs = /^http:\/\/([^/?#]*)(.*)$/i.exec(path);
    if (abs) {
      hostFromTarget = abs[1];
      path = abs[2] || '/';
    }
    if (path === '*' || path[0] !== '/') path = '/' + (path === '*' ? '' : path);
    if (address === UPSTREAM_LOOPBACK) return this.base + path;
    const name = this.names.nameOf(address);
    const hostHeader = head.headers.find(([k]) => k === 'host')?.[1] ?? null;
    // The name the guest resolved decides; the Host field only for a literal address.
    const host = name ? (port === 80 ? name : `${name}:${port}`) : hostFromTarget ?? hostHeader ?? (port === 80 ? address : `${address}:${port}`);
    return `http://${host}${path}`;
  }

  /** A URL as the guest can follow it: the own origin's become 10.0.2.2's. */
  guestUrl(url: string): string {
    if (url.startsWith(this.base + '/') || url === this.base) return 'http://10.0.2.2' + (url.slice(this.base.length) || '/');
    return url;
  }
}

interface PendingRequest {
  head: HttpRequestHead;
  body: Uint8Array[];
  bodyBytes: number;
  complete: boolean;
  tooLarge: boolean;
}

/** One guest connection answered through fetch. */
class FetchStream implements HostStream {
  onConnect: () => void = () => {};
  onData: (data: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  onClose: (error?: string) => void = () => {};
  onDrain: () => void = () => {};

  private readonly parser: HttpRequestParser;
  private readonly queue: PendingRequest[] = [];
  private busy = false;
  private guestEnded = false;
  private closed = false;
  private paused = false;
  private resumeWaiters: (() => void)[] = [];
  private abort: AbortController | null = null;
  private full = false;
  private readonly flow: string;

  constructor(private readonly net: FetchHostNetwork, private readonly address: string, private readonly port: number) {
    this.flow = flowName(net.names, address, port);
    this.parser = new HttpRequestParser({
      head: (head) => {
        this.net.stats.requests++;
        this.queue.push({ head, body: [], bodyBytes: 0, complete: false, tooLarge: false });
        // curl waits a second for this before sending a large body (RFC 9110 §10.1.1).
        const expect = head.headers.find(([k]) => k === 'expect')?.[1].toLowerCase();
        if (expect === '100-continue' && head.version === 'HTTP/1.1' && this.queue.length === 1) {
          void Promise.resolve().then(() => this.send(latin1Bytes('HTTP/1.1 100 Continue\r\n\r\n')));
        }
      },
      body: (chunk) => {
        const r = this.queue[this.queue.length - 1];
        if (!r || r.tooLarge) return;
        r.bodyBytes += chunk.length;
        if (r.bodyBytes > this.net.maxRequestBody) {
          r.tooLarge = true;
          r.body = [];
        } else r.body.push(chunk);
      },
      end: () => {
        const r = this.queue[this.queue.length - 1];
        if (r) r.complete = true;
        this.pump();
      },
    });
    // The host side is "connected" at once: what the guest sends decides where it goes.
    void Promise.resolve().then(() => {
      if (!this.closed) this.onConnect();
    });
  }

  write(data: Uint8Array): boolean {
    if (this.closed) return true;
    this.net.stats.bytesFromGuest += data.length;
    this.parser.push(data);
    if (this.parser.error !== null) {
      this.pump();
      return true;
    }
    this.pump();
    this.full = this.waitingBytes() > PIPELINE_HIGH;
    return !this.full;
  }

  /** Bytes of complete requests waiting behind the one being answered. */
  private waitingBytes(): number {
    let n = 0;
    for (let i = this.busy ? 1 : 0; i < this.queue.length; i++) if (this.queue[i].complete) n += this.queue[i].bodyBytes + 512;
    return n;
  }

  end(): void {
    if (this.closed) return;
    if (this.guestEnded) {
      // Called again: the guest's side is gone for good.
      this.finish();
      return;
    }
    this.guestEnded = true;
    this.pump();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort?.abort();
    this.wake();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wake();
  }

  private wake(): void {
    const w = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const f of w) f();
  }

  private untilResumed(): Promise<void> {
    if (!this.paused || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.resumeWaiters.push(resolve));
  }

  private send(bytes: Uint8Array): void {
    if (this.closed || bytes.length === 0) return;
    this.net.stats.bytesToGuest += bytes.length;
    this.onData(bytes);
  }

  /** Start the next request if none is being answered. */
  private pump(): void {
    if (this.busy || this.closed) return;
    const next = this.queue[0];
    if (next?.complete) {
      this.busy = true;
      void this.answer(next).then((keep) => {
        this.queue.shift();
        this.busy = false;
        if (this.full && this.waitingBytes() <= PIPELINE_HIGH) {
          this.full = false;
          if (!this.closed) this.onDrain();
        }
        if (!keep) this.finish();
        else this.pump();
      }, (e: unknown) => {
        // answer() handles its own failures; this is a bug of ours: reset rather than hang.
        this.fail(`internal error: ${e instanceof Error ? e.message : String(e)}`);
      });
      return;
    }
    if (this.parser.error !== null && this.queue.length === 0) {
      this.net.stats.badRequests++;
      this.net.emit('http-bad-request', this.flow, `The guest sent what fetch cannot replay: ${this.parser.error}. It got 400 Bad Request.`);
      this.respondError('HTTP/1.1', 400, `Trapdoor's fetch upstream could not read this request: ${this.parser.error}.\n`, false);
      this.finish();
      return;
    }
    if (this.guestEnded && this.queue.length === 0) this.finish();
  }

  /** Close the connection cleanly: FIN to the guest after what was sent. */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onEnd();
    this.onClose();
  }

  /** Reset: the guest sees RST. */
  private fail(error: string): void {
    if (this.closed) return;
    this.closed = true;
    this.abort?.abort();
    this.onClose(error);
  }

  private respondError(version: string, status: number, text: string, keepAlive: boolean): void {
    const body = new TextEncoder().encode(text);
    this.send(encodeResponseHead(version, status, '', [['Content-Type', 'text/plain; charset=utf-8']], 'length', body.length, keepAlive));
    this.send(body);
  }

  /** Answer one request; resolves whether the connection stays open. */
  private async answer(req: PendingRequest): Promise<boolean> {
    const { head } = req;
    const version = head.version;
    const keepAlive = head.keepAlive;
    if (req.tooLarge) {
      this.respondError(version, 413, `The request body is larger than the ${this.net.maxRequestBody} bytes Trapdoor's fetch upstream holds.\n`, false);
      return false;
    }
    if (head.method === 'CONNECT' || head.headers.some(([k, v]) => k === 'upgrade' && v !== '')) {
      this.respondError(version, 501, 'fetch cannot tunnel a connection (CONNECT or Upgrade); a Wisp upstream can.\n', keepAlive);
      return keepAlive;
    }
    const url = this.net.urlFor(this.address, this.port, head);
    const headers = head.headers.filter(([k]) => !DROP_REQUEST.has(k));
    const body = head.method === 'GET' || head.method === 'HEAD' || req.bodyBytes === 0 ? undefined : concat(req.body, req.bodyBytes);
    req.body = [];
    this.abort = new AbortController();
    const init = (redirect: 'manual' | 'follow'): FetchInit => ({ method: head.method, headers, body, redirect, signal: this.abort!.signal });
    let res: FetchResponseLike;
    try {
      res = await this.net.doFetch(url, init(this.net.redirectMode));
      if (res.type === 'opaqueredirect') {
        // A browser hides a manual redirect's Location: follow from now on, and show the guest where it went.
        this.net.redirectMode = 'follow';
        void res.body?.getReader().cancel().catch(() => {});
        res = await this.net.doFetch(url, init('follow'));
      }
    } catch (e) {
      if (this.closed) return false;
      return this.fetchFailed(url, version, keepAlive, e);
    }
    if (this.closed) {
      void res.body?.getReader().cancel().catch(() => {});
      return false;
    }
    this.net.stats.responses++;
    if (res.redirected && res.url && res.url !== url) {
      // Followed by the browser: show the guest the redirect instead, to the final URL.
      this.net.stats.redirects++;
      void res.body?.getReader().cancel().catch(() => {});
      const location = this.net.guestUrl(res.url);
      this.net.emit('fetch-redirect', this.flow, `${head.method} ${url} was redirected to ${res.url}; the guest is sent there with a 302.`);
      this.send(encodeResponseHead(version, 302, 'Found', [['Location', location]], 'length', 0, keepAlive));
      return keepAlive;
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) this.net.stats.redirects++;
    return this.stream(head, res, keepAlive);
  }

  private fetchFailed(url: string, version: string, keepAlive: boolean, e: unknown): boolean {
    this.net.stats.failures++;
    const why = e instanceof Error ? `${e.name}: ${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
    const cors = e instanceof TypeError
      ? ' In a browser this is a network error or a response the server does not let this page read (CORS: the server must send Access-Control-Allow-Origin); a Wisp upstream has no such limit.'
      : '';
    this.net.emit('fetch-failed', this.flow, `fetch ${url} failed: ${why}.${cors} The guest got 502 Bad Gateway.`);
    this.respondError(version, 502, `Trapdoor could not fetch ${url}: ${why}.${cors}\n`, keepAlive);
    return keepAlive;
  }

  /** The response to the guest, its body as it arrives; resolves whether the connection stays open. */
  private async stream(head: HttpRequestHead, res: FetchResponseLike, keepAlive: boolean): Promise<boolean> {
    const version = head.version;
    const headers: [string, string][] = [];
    // fetch hands over the body decoded: its Content-Encoding and Content-Length describe bytes the guest will not see.
    const encoded = (res.headers.get('content-encoding') ?? 'identity').toLowerCase() !== 'identity';
    res.headers.forEach((value, key) => {
      const k = key.toLowerCase();
      if (k === 'content-encoding' || (k === 'content-length' && encoded)) return;
      if (k === 'location') headers.push([key, this.net.guestUrl(value)]);
      else headers.push([key, value]);
    });
    const lengthText = encoded ? null : res.headers.get('content-length');
    const length = lengthText !== null && /^\d+$/.test(lengthText.trim()) ? Number(lengthText) : null;
    let framing: BodyFraming;
    if (responseHasNoBody(head.method, res.status)) framing = 'none';
    else if (length !== null) framing = 'length';
    else if (version === 'HTTP/1.1') framing = 'chunked';
    else framing = 'close';
    // A HEAD response keeps the Content-Length the GET would have had.
    if (head.method === 'HEAD' && length !== null) headers.push(['Content-Length', String(length)]);
    this.send(encodeResponseHead(version, res.status, res.statusText, headers, framing, length ?? 0, keepAlive));
    const reader = res.body?.getReader();
    if (framing === 'none') {
      void reader?.cancel().catch(() => {});
      return keepAlive;
    }
    let sent = 0;
    if (reader) {
      try {
        for (;;) {
          await this.untilResumed();
          if (this.closed) {
            void reader.cancel().catch(() => {});
            return false;
          }
          const { done, value } = await reader.read();
          if (this.closed) return false;
          if (done) break;
          if (!value || value.length === 0) continue;
          let chunk = value;
          if (framing === 'length' && sent + chunk.length > length!) chunk = chunk.subarray(0, length! - sent);
          sent += chunk.length;
          this.send(framing === 'chunked' ? encodeChunk(chunk) : chunk);
        }
      } catch (e) {
        if (this.closed) return false;
        this.net.stats.failures++;
        this.net.emit('fetch-aborted', this.flow, `The response body stopped after ${sent} bytes: ${e instanceof Error ? e.message : String(e)}. The guest's connection is reset.`);
        this.fail(`response body failed: ${e instanceof Error ? e.message : String(e)}`);
        return false;
      }
    }
    if (framing === 'length' && sent < length!) {
      this.net.stats.failures++;
      this.net.emit('fetch-aborted', this.flow, `The response ended after ${sent} of ${length} bytes. The guest's connection is reset.`);
      this.fail('response body short');
      return false;
    }
    if (framing === 'chunked') this.send(LAST_CHUNK);
    return framing !== 'close' && keepAlive;
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
