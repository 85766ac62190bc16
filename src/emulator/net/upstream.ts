/**
 * The router's upstreams a browser can offer (issue 24): what they share.
 *
 * - SyntheticNames: DNS answers for an upstream that resolves names itself (fetch lets
 *   the browser resolve the URL's host; Wisp lets its server resolve the CONNECT's
 *   hostname). Each name gets an address of its own from a pool (198.18.0.0/15, RFC 2544
 *   §C.2.2's benchmarking range, which no one routes), so a connection to that address
 *   says which name the guest meant. Never one fixed address for every name.
 * - WebSocketLike: the part of a WebSocket the Wisp client and the relay uplink use, so
 *   src/emulator stays DOM-free: the page injects the browser's WebSocket, Node the `ws`
 *   package's.
 * - UpstreamSelector: a HostNetwork that picks, per connection and per datagram
 *   destination, which upstream carries it (fetch for HTTP, Wisp for the rest).
 */
import { ipFromString, ipToString } from './ipv4.ts';
import type { HostDatagramSocket, HostListener, HostNetwork, HostStream, NetEvent } from './host.ts';

/** 198.18.0.0/15. */
export const SYNTHETIC_BASE = 0xc6120000;
export const SYNTHETIC_SIZE = 1 << 17;

/** A DNS name <-> address book over the synthetic pool. Deterministic: addresses are handed out in order. */
export class SyntheticNames {
  private readonly byName = new Map<string, number>();
  private readonly byAddress = new Map<number, string>();
  private next = 1;

  constructor(private readonly base = SYNTHETIC_BASE, private readonly size = SYNTHETIC_SIZE) {}

  /** The address of a name (given one on first use). Names are case-insensitive (RFC 4343). */
  addressFor(name: string): string {
    const key = name.toLowerCase().replace(/\.$/, '');
    let ip = this.byName.get(key);
    if (ip === undefined) {
      // Skip .0 and .255 of each /24 so no guest mistakes one for a network or broadcast address.
      while ((this.next & 0xff) === 0 || (this.next & 0xff) === 0xff) this.next++;
      if (this.next >= this.size - 1) this.next = 1;
      while ((this.next & 0xff) === 0 || (this.next & 0xff) === 0xff) this.next++;
      ip = (this.base + this.next++) >>> 0;
      // A pool that wrapped takes the address back from the name that had it.
      const old = this.byAddress.get(ip);
      if (old !== undefined) this.byName.delete(old);
      this.byName.set(key, ip);
      this.byAddress.set(ip, key);
    }
    return ipToString(ip);
  }

  /** The name behind a synthetic address, or null (not synthetic, or not handed out). */
  nameOf(address: string): string | null {
    const ip = ipFromString(address);
    if (ip === null) return null;
    return this.byAddress.get(ip) ?? null;
  }

  /** Is the address inside the pool (handed out or not)? */
  isSynthetic(address: string): boolean {
    const ip = ipFromString(address);
    return ip !== null && ip - this.base >= 0 && ip - this.base < this.size;
  }

  get count(): number {
    return this.byName.size;
  }
}

/** WebSocket.readyState values (WHATWG HTML §9.3). */
export const WS_CONNECTING = 0;
export const WS_OPEN = 1;
export const WS_CLOSING = 2;
export const WS_CLOSED = 3;

/**
 * What the Wisp client and the relay uplink need of a WebSocket: the browser's and the
 * `ws` package's both fit (binaryType 'arraybuffer': messages arrive as ArrayBuffer, text
 * as string).
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/**
 * An event handler checked bivariantly (as methods are), so the browser's WebSocket, whose
 * handlers take a full MessageEvent, and `ws`'s both fit.
 */
type Handler<E> = { bivarianceHack(ev: E): void }['bivarianceHack'];

/** Makes a WebSocket to a URL (the page: `(u) => new WebSocket(u)`; Node: `ws`). May throw for a bad URL. */
export type WebSocketFactory = (url: string) => WebSocketLike;

/** A message's bytes: ArrayBuffer, a view, or Node's Buffer[] fragments; null for text. */
export function messageBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data) && data.every((d) => ArrayBuffer.isView(d))) {
    const parts = data as ArrayBufferView[];
    const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
    let o = 0;
    for (const p of parts) {
      out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), o);
      o += p.byteLength;
    }
    return out;
  }
  return null;
}

/** What a selector is asked about each connection or datagram destination. */
export interface UpstreamRequest {
  protocol: 'tcp' | 'udp';
  /** As the router gave it: UPSTREAM_LOOPBACK for 10.0.2.2, a synthetic address, or a real one. */
  address: string;
  port: number;
  /** The DNS name behind a synthetic address, if any. */
  name: string | null;
  /** The guest connected to 10.0.2.2 (the host itself: the page's origin for fetch). */
  loopback: boolean;
}

/** What the router is given as 10.0.2.2's host address when the selector is its host. */
export const UPSTREAM_LOOPBACK = '127.0.0.1';

export interface UpstreamSelectorOptions {
  /** The names book DNS answers come from; shared with the upstreams. */
  names: SyntheticNames;
  /** HTTP through fetch, if offered. */
  fetch?: HostNetwork | null;
  /** Wisp, if offered. */
  wisp?: HostNetwork | null;
  /**
   * Which upstream carries a connection; null refuses it (the guest gets RST, or ICMP
   * port unreachable for UDP). Default: defaultChoice.
   */
  choose?: (req: UpstreamRequest, ups: { fetch: HostNetwork | null; wisp: HostNetwork | null }) => HostNetwork | null;
}

/**
 * The default policy: the page's own origin (10.0.2.2:80) through fetch, as the only way
 * to reach the files the page's server serves; everything else through Wisp when there
 * is one (no CORS, any port, UDP); without Wisp, port 80 of any name through fetch.
 */
export function defaultChoice(req: UpstreamRequest, ups: { fetch: HostNetwork | null; wisp: HostNetwork | null }): HostNetwork | null {
  if (req.protocol === 'tcp' && req.port === 80 && req.loopback && ups.fetch) return ups.fetch;
  if (ups.wisp) return ups.wisp;
  if (req.protocol === 'tcp' && req.port === 80 && ups.fetch) return ups.fetch;
  return null;
}

/** Per-connection choice between the browser's upstreams; it is the router's HostNetwork. */
export class UpstreamSelector implements HostNetwork {
  onEvent?: (event: NetEvent) => void;
  readonly loopback = UPSTREAM_LOOPBACK;
  readonly names: SyntheticNames;
  private readonly fetch: HostNetwork | null;
  private readonly wisp: HostNetwork | null;
  private readonly choose: NonNullable<UpstreamSelectorOptions['choose']>;

  constructor(options: UpstreamSelectorOptions) {
    this.names = options.names;
    this.fetch = options.fetch ?? null;
    this.wisp = options.wisp ?? null;
    this.choose = options.choose ?? defaultChoice;
    for (const up of [this.fetch, this.wisp]) if (up) up.onEvent = (e) => this.emit(e);
  }

  private emit(event: NetEvent): void {
    try {
      this.onEvent?.(event);
    } catch {
      // The panel's listener failing is no reason to lose a connection.
    }
  }

  private pick(protocol: 'tcp' | 'udp', address: string, port: number): HostNetwork | null {
    const req: UpstreamRequest = { protocol, address, port, name: this.names.nameOf(address), loopback: address === UPSTREAM_LOOPBACK };
    return this.choose(req, { fetch: this.fetch, wisp: this.wisp });
  }

  connectTcp(address: string, port: number): HostStream {
    const up = this.pick('tcp', address, port);
    if (!up) {
      const name = this.names.nameOf(address) ?? address;
      this.emit({ kind: 'no-upstream', flow: `${name}:${port}`, message: `No upstream carries TCP to ${name} port ${port}${this.wisp ? '' : ' (only HTTP on port 80 goes through fetch; a Wisp server carries the rest)'}: the guest's connection is refused.` });
      throw new Error(`no upstream for tcp ${name}:${port}`);
    }
    return up.connectTcp(address, port);
  }

  openUdp(): HostDatagramSocket {
    return new SelectorDatagramSocket(this);
  }

  /** @internal for SelectorDatagramSocket */
  udpUpstream(address: string, port: number): HostNetwork | null {
    const up = this.pick('udp', address, port);
    if (!up) {
      const name = this.names.nameOf(address) ?? address;
      this.emit({ kind: 'no-upstream', flow: `${name}:${port}`, message: `No upstream carries UDP to ${name} port ${port} (only a Wisp server does): the datagram is dropped.` });
    }
    return up;
  }

  listenTcp(): Promise<HostListener> {
    return Promise.reject(new Error('a browser cannot listen on a port: hostfwd is not available in the page'));
  }

  listenUdp(): Promise<HostDatagramSocket> {
    return Promise.reject(new Error('a browser cannot listen on a port: hostfwd is not available in the page'));
  }

  /** A synthetic address per name: the upstream resolves the name itself when the guest connects. */
  resolve4(name: string): Promise<string[]> {
    if (!isPlausibleName(name)) return Promise.reject(new Error(`'${name}' is not a host name`));
    return Promise.resolve([this.names.addressFor(name)]);
  }
}

/** A UDP socket of the selector: each destination goes through the upstream chosen for it (one socket of that upstream each). */
class SelectorDatagramSocket implements HostDatagramSocket {
  onMessage: (data: Uint8Array, address: string, port: number) => void = () => {};
  onError: (error: string) => void = () => {};
  private readonly sockets = new Map<HostNetwork, HostDatagramSocket>();
  private closed = false;

  constructor(private readonly selector: UpstreamSelector) {}

  send(data: Uint8Array, address: string, port: number): void {
    if (this.closed) return;
    const up = this.selector.udpUpstream(address, port);
    if (!up) {
      this.onError(`no upstream for udp ${address}:${port}`);
      return;
    }
    let s = this.sockets.get(up);
    if (!s) {
      s = up.openUdp();
      s.onMessage = (d, a, p) => this.onMessage(d, a, p);
      s.onError = (e) => this.onError(e);
      this.sockets.set(up, s);
    }
    s.send(data, address, port);
  }

  close(): void {
    this.closed = true;
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }
}

/** A DNS name an upstream can be asked for (RFC 1123 §2.1 letters, digits, hyphens; underscores seen in the wild). */
export function isPlausibleName(name: string): boolean {
  const n = name.replace(/\.$/, '');
  return n.length > 0 && n.length <= 253 && n.split('.').every((l) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
}

/** "name:port" of a connection for events: the name behind a synthetic address when known. */
export function flowName(names: SyntheticNames, address: string, port: number): string {
  return `${address === UPSTREAM_LOOPBACK ? '10.0.2.2' : names.nameOf(address) ?? address}:${port}`;
}
