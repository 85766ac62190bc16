/**
 * Wisp (MercuryWorkshop's wisp-protocol, v1.2 and v2): the router's TCP and UDP flows
 * multiplexed over one WebSocket. Packets are `u8 type, u32 LE stream id, payload`:
 * CONNECT 0x01 (u8 stream type 1 TCP / 2 UDP, u16 LE port, UTF-8 hostname), DATA 0x02,
 * CONTINUE 0x03 (u32 LE buffer credit, in packets), CLOSE 0x04 (u8 reason), INFO 0x05
 * (v2: u8 major, u8 minor, extensions as `u8 id, u32 LE length, metadata`).
 *
 * Handshake: the server sends CONTINUE on stream 0 (the credit every new stream starts
 * with) and, from v2 on, an INFO, in either order (v2 as released, and wisp-js: INFO,
 * then the client's INFO, then CONTINUE; protocol.md's draft: CONTINUE, then INFO); the
 * client answers an INFO with its own (v2.0, the UDP extension) before anything else. A
 * server that sends no INFO is v1: after CONTINUE the client waits HANDSHAKE_GRACE_NS for
 * an INFO, then goes on as v1 (an INFO arriving later is still answered). Streams asked
 * for before the handshake wait for it. (wisp-js confirms no connect: a stream silent for
 * CONNECT_GRACE_NS without a CLOSE counts as connected.)
 *
 * Flow control end to end: each TCP stream spends one credit per DATA packet; with none
 * left, what the guest sends waits here and HostStream.write() says false, so the
 * router's TCP announces a shrinking window to the guest (tcp-nat.ts) until the server's
 * CONTINUE; a stream with no credit for STALL_TIMEOUT_NS is reset (the guest sees RST,
 * an event says the server granted nothing). From the server to the guest Wisp has no
 * credit: what arrives while the router's TCP is full waits in the stream.
 *
 * DNS through the server: the router's DNS answers a name with a synthetic address
 * (upstream.ts); a connection to it sends the NAME in CONNECT and the server resolves it.
 * 10.0.2.2 (the host) is `loopbackHost` at the server (127.0.0.1 by default).
 *
 * Wisp has no half-close: the guest's FIN is held (the stream stays open for what the
 * server still sends) until the server closes the stream, or has been silent for
 * HALF_CLOSE_LINGER_NS: then the client closes it (CLOSE 0x02) and the guest gets its
 * FIN. A request/response exchange whose client half-closes (nc < file) gets its answer;
 * a server that would only answer after seeing EOF cannot be served (v86 closes at once). The server's CLOSE 0x02 (voluntary) is a FIN to the
 * guest after the data; any other reason, a lost WebSocket, or a malformed packet is a
 * RST (or a refused SYN) with an event in words. Nothing a server sends can throw.
 */
import type { Clock, TimerId } from '../bus/device.ts';
import type { HostDatagramSocket, HostListener, HostNetwork, HostStream, NetEvent } from './host.ts';
import { flowName, isPlausibleName, messageBytes, SyntheticNames, UPSTREAM_LOOPBACK, WS_OPEN, type WebSocketFactory, type WebSocketLike } from './upstream.ts';

export const WISP_CONNECT = 0x01;
export const WISP_DATA = 0x02;
export const WISP_CONTINUE = 0x03;
export const WISP_CLOSE = 0x04;
export const WISP_INFO = 0x05;
export const WISP_TCP = 0x01;
export const WISP_UDP = 0x02;
/** v2 extension ids. */
export const WISP_EXT_UDP = 0x01;
export const WISP_EXT_PASSWORD = 0x02;
export const WISP_EXT_MOTD = 0x04;

/** CLOSE reasons (protocol.md "Close Reasons"). */
export const WISP_REASONS: Record<number, string> = {
  0x01: 'unspecified', 0x02: 'voluntary close', 0x03: 'network error', 0x04: 'incompatible extensions',
  0x41: 'invalid connection information', 0x42: 'unreachable host', 0x43: 'connection timed out', 0x44: 'connection refused',
  0x47: 'TCP data transfer timed out', 0x48: 'destination blocked by the server', 0x49: 'throttled by the server', 0x81: 'client error',
};
export const REASON_VOLUNTARY = 0x02;
export const REASON_NETWORK_ERROR = 0x03;

export interface WispPacket {
  type: number;
  stream: number;
  payload: Uint8Array;
}

export function encodeWisp(type: number, stream: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, stream >>> 0, true);
  out.set(payload, 5);
  return out;
}

/** A packet, or why it is not one. */
export function decodeWisp(b: Uint8Array): WispPacket | string {
  if (b.length < 5) return `a ${b.length}-byte message is shorter than a Wisp header`;
  const stream = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(1, true);
  return { type: b[0], stream, payload: b.subarray(5) };
}

export function connectPayload(streamType: number, port: number, host: string): Uint8Array {
  const name = new TextEncoder().encode(host);
  const out = new Uint8Array(3 + name.length);
  out[0] = streamType;
  out[1] = port & 0xff;
  out[2] = port >> 8;
  out.set(name, 3);
  return out;
}

export function parseConnect(p: Uint8Array): { streamType: number; port: number; host: string } | null {
  if (p.length < 4) return null;
  let host: string;
  try {
    host = new TextDecoder('utf-8', { fatal: true }).decode(p.subarray(3));
  } catch {
    return null;
  }
  return { streamType: p[0], port: p[1] | (p[2] << 8), host };
}

export function u32Payload(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0, true);
  return out;
}

export function readU32(p: Uint8Array): number | null {
  return p.length < 4 ? null : new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true);
}

export interface WispExtension {
  id: number;
  payload: Uint8Array;
}

export function infoPayload(major: number, minor: number, extensions: WispExtension[]): Uint8Array {
  const size = 2 + extensions.reduce((a, e) => a + 5 + e.payload.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out[0] = major;
  out[1] = minor;
  let o = 2;
  for (const e of extensions) {
    out[o] = e.id;
    dv.setUint32(o + 1, e.payload.length, true);
    out.set(e.payload, o + 5);
    o += 5 + e.payload.length;
  }
  return out;
}

export function parseInfo(p: Uint8Array): { major: number; minor: number; extensions: WispExtension[] } | null {
  if (p.length < 2) return null;
  const extensions: WispExtension[] = [];
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  let o = 2;
  while (o < p.length) {
    if (o + 5 > p.length) return null;
    const len = dv.getUint32(o + 1, true);
    if (o + 5 + len > p.length) return null;
    extensions.push({ id: p[o], payload: p.slice(o + 5, o + 5 + len) });
    o += 5 + len;
  }
  return { major: p[0], minor: p[1], extensions };
}

/** How long a v1 server has, after its CONTINUE, to show it is v2 with an INFO. */
export const HANDSHAKE_GRACE_NS = 200_000_000;
/** A server that has not finished the handshake by then is given up. */
export const HANDSHAKE_TIMEOUT_NS = 10_000_000_000;
/** A TCP stream with data waiting and no credit for this long is reset. */
export const STALL_TIMEOUT_NS = 30_000_000_000;
/** A TCP stream neither refused nor confirmed (CONTINUE or DATA) after this is taken as connected. */
export const CONNECT_GRACE_NS = 1_000_000_000;
/** After the guest's FIN, server silence this long closes the stream (Wisp cannot pass the FIN on). */
export const HALF_CLOSE_LINGER_NS = 5_000_000_000;
/**
 * What a stream holds from the server while the guest does not read (Wisp has no credit
 * that way): past this the stream is reset rather than the page's memory spent.
 */
export const MAX_INBOX = 16 << 20;
/** Largest DATA payload sent (bigger writes are split; each packet is one credit). */
export const MAX_DATA = 64 * 1024;

export interface WispOptions {
  /** wisp://, wisps://, ws:// or wss:// (wisp:// is ws://). Servers expect the URL to end in '/'. */
  url: string;
  createWebSocket: WebSocketFactory;
  /** For the handshake's, credit's and connect's timers (the machine's clock). */
  clock: Clock;
  /** Shared with the selector: DNS answers and the names behind them. */
  names?: SyntheticNames;
  /** 'auto' (default): v2 when the server sends INFO, else v1. 1: never answer INFO. */
  version?: 'auto' | 1;
  /** What 10.0.2.2 means at the server (default 127.0.0.1: the Wisp server's own host). */
  loopbackHost?: string;
  stallTimeoutNs?: number;
  /** Called on every message and state change (the CLI wakes its run loop with it). */
  onActivity?: () => void;
}

export type WispState = 'idle' | 'connecting' | 'handshake' | 'open' | 'closed';

export interface WispStats {
  /** WebSocket connections made. */
  connects: number;
  streamsOpened: number;
  /** Streams the server closed with a reason other than voluntary (refused, unreachable, ...). */
  streamsFailed: number;
  /** Streams reset for want of credit. */
  stalls: number;
  packetsOut: number;
  packetsIn: number;
  bytesOut: number;
  bytesIn: number;
  /** Messages that were not Wisp packets: malformed (fatal to the connection), text, unknown types, unknown streams. */
  malformed: number;
  textMessages: number;
  unknownType: number;
  unknownStream: number;
}

type AnyStream = WispTcpStream | WispUdpStream;

/** One WebSocket to a Wisp server and the streams over it; a HostNetwork for the router (or the selector). */
export class WispHostNetwork implements HostNetwork {
  onEvent?: (event: NetEvent) => void;
  readonly loopback = UPSTREAM_LOOPBACK;
  readonly names: SyntheticNames;
  readonly url: string;
  readonly stats: WispStats = {
    connects: 0, streamsOpened: 0, streamsFailed: 0, stalls: 0, packetsOut: 0, packetsIn: 0, bytesOut: 0, bytesIn: 0, malformed: 0, textMessages: 0,
    unknownType: 0, unknownStream: 0,
  };
  /** The server's version once known (1 when it sent no INFO). */
  serverVersion: { major: number; minor: number } | null = null;
  serverExtensions: number[] = [];
  /** The last time the connection failed, in words. */
  lastError: string | null = null;

  private ws: WebSocketLike | null = null;
  private _state: WispState = 'idle';
  private initialCredit = 0;
  private gotContinue = false;
  private gotInfo = false;
  private graceTimer: TimerId = 0;
  private handshakeTimer: TimerId = 0;
  private readonly streams = new Map<number, AnyStream>();
  /** Streams waiting for the handshake. */
  private waiting: AnyStream[] = [];
  private nextId = 1;
  private readonly clock: Clock;
  private readonly loopbackHost: string;
  readonly stallTimeoutNs: number;

  constructor(private readonly options: WispOptions) {
    this.names = options.names ?? new SyntheticNames();
    this.clock = options.clock;
    this.url = options.url.replace(/^wisp:/i, 'ws:').replace(/^wisps:/i, 'wss:');
    this.loopbackHost = options.loopbackHost ?? '127.0.0.1';
    this.stallTimeoutNs = options.stallTimeoutNs ?? STALL_TIMEOUT_NS;
  }

  get state(): WispState {
    return this._state;
  }

  /** @internal */
  emit(kind: string, flow: string, message: string): void {
    try {
      this.onEvent?.({ kind, flow, message });
    } catch {
      // A listener's failure is not the connection's.
    }
  }

  private activity(): void {
    try {
      this.options.onActivity?.();
    } catch {
      // The host's wake-up failing is not the connection's.
    }
  }

  /** Open the WebSocket now (it is otherwise opened by the first stream). */
  connect(): void {
    if (this._state === 'connecting' || this._state === 'handshake' || this._state === 'open') return;
    this._state = 'connecting';
    this.gotContinue = false;
    this.gotInfo = false;
    this.serverVersion = null;
    this.serverExtensions = [];
    let ws: WebSocketLike;
    try {
      ws = this.options.createWebSocket(this.url);
      ws.binaryType = 'arraybuffer';
    } catch (e) {
      this.lost(`cannot open a WebSocket to ${this.url}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.ws = ws;
    this.stats.connects++;
    this.handshakeTimer = this.clock.setTimer(this.clock.now() + HANDSHAKE_TIMEOUT_NS, () => {
      if (this.ws === ws && this._state !== 'open') this.lost(`the Wisp server at ${this.url} did not finish its handshake in ${HANDSHAKE_TIMEOUT_NS / 1e9} s`);
    });
    ws.onopen = () => {
      if (this.ws === ws) this._state = 'handshake';
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      try {
        this.message(ev.data);
      } catch (e) {
        this.lost(`internal error on a Wisp message: ${e instanceof Error ? e.message : String(e)}`);
      }
      this.activity();
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.lost(`the Wisp server at ${this.url} closed the WebSocket (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`);
    };
    ws.onerror = () => {
      if (this.ws === ws) this.lost(`the WebSocket to ${this.url} failed (the server is down, refused, or not a WebSocket server)`);
    };
  }

  /** Close the WebSocket and every stream (RST to the guest's connections). */
  close(): void {
    this.lost(null);
    this._state = 'closed';
  }

  /** The connection is gone: every stream fails; the next stream connects again. */
  private lost(why: string | null): void {
    const ws = this.ws;
    this.ws = null;
    this.clock.cancelTimer(this.graceTimer);
    this.clock.cancelTimer(this.handshakeTimer);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // Closing a socket that failed: nothing more to do.
      }
    }
    const had = this.streams.size + this.waiting.length;
    if (why !== null) {
      this.lastError = why;
      this.emit('wisp-closed', '', `${why}${had ? `; ${had} connection${had === 1 ? '' : 's'} reset` : ''}.`);
    }
    this._state = 'idle';
    this.activity();
    const all = [...this.streams.values(), ...this.waiting];
    this.streams.clear();
    this.waiting = [];
    for (const s of all) s.failed(why ?? 'the Wisp upstream was closed');
  }

  private message(data: unknown): void {
    const b = messageBytes(data);
    if (b === null) {
      this.stats.textMessages++;
      if (this.stats.textMessages === 1) this.emit('wisp-garbage', '', `The Wisp server sent a text message (ignored): '${String(data).slice(0, 60)}'.`);
      return;
    }
    const p = decodeWisp(b);
    if (typeof p === 'string') return this.malformed(p);
    this.stats.packetsIn++;
    if (p.stream === 0) return this.control(p);
    const s = this.streams.get(p.stream);
    switch (p.type) {
      case WISP_DATA:
        if (!s) return void this.stats.unknownStream++;
        this.stats.bytesIn += p.payload.length;
        return s.data(p.payload.slice());
      case WISP_CONTINUE: {
        const n = readU32(p.payload);
        if (n === null) return this.malformed('a CONTINUE without its 4-byte credit');
        if (!s) return void this.stats.unknownStream++;
        return s.credit(n);
      }
      case WISP_CLOSE:
        if (p.payload.length < 1) return this.malformed('a CLOSE without its reason');
        if (!s) return void this.stats.unknownStream++;
        this.streams.delete(p.stream);
        return s.closedByServer(p.payload[0]);
      default:
        // An extension's packet this client does not know: ignored (protocol.md lets both sides dispose of them).
        this.stats.unknownType++;
    }
  }

  private control(p: WispPacket): void {
    if (p.type === WISP_CONTINUE) {
      const n = readU32(p.payload);
      if (n === null) return this.malformed('the handshake CONTINUE has no 4-byte credit');
      this.initialCredit = n;
      if (!this.gotContinue) {
        this.gotContinue = true;
        if (this.gotInfo || this.options.version === 1) this.opened();
        else this.graceTimer = this.clock.setTimer(this.clock.now() + HANDSHAKE_GRACE_NS, () => this.opened());
      }
    } else if (p.type === WISP_INFO) {
      const info = parseInfo(p.payload);
      if (!info) return this.malformed('an INFO packet whose extension list does not add up');
      if (this.options.version === 1) return;
      if (!this.gotInfo) {
        this.gotInfo = true;
        this.serverVersion = { major: info.major, minor: info.minor };
        this.serverExtensions = info.extensions.map((e) => e.id);
        if (this.serverExtensions.includes(WISP_EXT_PASSWORD)) {
          this.emit('wisp-password', '', `The Wisp server at ${this.url} asks for a password; Trapdoor does not send one, so it may refuse streams.`);
        }
        // Our INFO: the version both speak (2.0), and UDP.
        this.send(WISP_INFO, 0, infoPayload(2, 0, [{ id: WISP_EXT_UDP, payload: new Uint8Array(0) }]));
        if (this.gotContinue) this.opened();
      }
    } else if (p.type === WISP_CLOSE) {
      const reason = p.payload[0] ?? 0x01;
      this.lost(`the Wisp server at ${this.url} closed the connection (${WISP_REASONS[reason] ?? `reason 0x${reason.toString(16)}`})`);
    } else {
      this.stats.unknownType++;
    }
  }

  private opened(): void {
    if (this._state === 'open' || !this.ws) return;
    this.clock.cancelTimer(this.graceTimer);
    this.clock.cancelTimer(this.handshakeTimer);
    if (!this.serverVersion) this.serverVersion = { major: 1, minor: 2 };
    this._state = 'open';
    const w = this.waiting;
    this.waiting = [];
    for (const s of w) this.start(s);
  }

  private malformed(why: string): void {
    this.stats.malformed++;
    this.lost(`the Wisp server at ${this.url} sent a malformed packet (${why}); the connection is dropped`);
  }

  /** @internal */
  send(type: number, stream: number, payload?: Uint8Array): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(encodeWisp(type, stream, payload));
    } catch (e) {
      this.lost(`sending to the Wisp server failed: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
    this.stats.packetsOut++;
    if (type === WISP_DATA && payload) this.stats.bytesOut += payload.length;
    return true;
  }

  /** @internal The credit a new stream starts with. */
  get startCredit(): number {
    return this.initialCredit;
  }

  /** @internal A stream is done: forget it (no CLOSE sent here). */
  forget(s: AnyStream): void {
    if (this.streams.get(s.id) === s) this.streams.delete(s.id);
    this.waiting = this.waiting.filter((w) => w !== s);
  }

  /** @internal */
  get timers(): Clock {
    return this.clock;
  }

  private newId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
      if (!this.streams.has(id)) return id;
    }
  }

  /** Send CONNECT for a stream (now, or once the handshake is done). */
  private open(s: AnyStream): void {
    if (this._state === 'open') this.start(s);
    else {
      this.waiting.push(s);
      // From the event loop: a WebSocket that fails at once must not call back into the router's connect.
      void Promise.resolve().then(() => this.connect());
    }
  }

  private start(s: AnyStream): void {
    this.streams.set(s.id, s);
    this.stats.streamsOpened++;
    this.send(WISP_CONNECT, s.id, connectPayload(s instanceof WispTcpStream ? WISP_TCP : WISP_UDP, s.port, s.host));
    s.started(this.initialCredit);
  }

  /** The hostname a router address stands for at the server; null for a synthetic address no name has. */
  hostFor(address: string): string | null {
    if (address === UPSTREAM_LOOPBACK) return this.loopbackHost;
    const name = this.names.nameOf(address);
    if (name) return name;
    return this.names.isSynthetic(address) ? null : address;
  }

  connectTcp(address: string, port: number): HostStream {
    const host = this.hostFor(address);
    const flow = flowName(this.names, address, port);
    if (host === null) {
      this.emit('wisp-unknown-name', flow, `No name is known for ${address} (its DNS answer is from before a restart?): the connection is refused.`);
      throw new Error(`no name for ${address}`);
    }
    const s = new WispTcpStream(this, this.newId(), host, port, flow);
    this.open(s);
    return s;
  }

  openUdp(): HostDatagramSocket {
    if (this.serverVersion && this.serverVersion.major >= 2 && !this.serverExtensions.includes(WISP_EXT_UDP)) {
      throw new Error('this Wisp server does not offer UDP');
    }
    return new WispUdpSocket(this);
  }

  /** @internal one UDP stream per destination of a socket */
  openUdpStream(socket: WispUdpSocket, address: string, port: number): WispUdpStream | null {
    const host = this.hostFor(address);
    if (host === null) return null;
    const s = new WispUdpStream(this, this.newId(), host, port, socket, address);
    this.open(s);
    return s;
  }

  listenTcp(): Promise<HostListener> {
    return Promise.reject(new Error('Wisp cannot listen on a port'));
  }

  listenUdp(): Promise<HostDatagramSocket> {
    return Promise.reject(new Error('Wisp cannot listen on a port'));
  }

  resolve4(name: string): Promise<string[]> {
    if (!isPlausibleName(name)) return Promise.reject(new Error(`'${name}' is not a host name`));
    return Promise.resolve([this.names.addressFor(name)]);
  }

  /** For the panel. */
  describe(): { url: string; state: WispState; version: string | null; extensions: number[]; streams: { id: number; kind: 'tcp' | 'udp'; host: string; port: number; credit: number; queued: number }[] } {
    return {
      url: this.url,
      state: this._state,
      version: this.serverVersion ? `${this.serverVersion.major}.${this.serverVersion.minor}` : null,
      extensions: this.serverExtensions,
      streams: [...this.streams.values()].map((s) => ({
        id: s.id, kind: s instanceof WispTcpStream ? 'tcp' as const : 'udp' as const, host: s.host, port: s.port,
        credit: s instanceof WispTcpStream ? s.creditLeft : 0, queued: s instanceof WispTcpStream ? s.queuedBytes : 0,
      })),
    };
  }
}

function reasonText(reason: number): string {
  return WISP_REASONS[reason] ?? `reason 0x${reason.toString(16)}`;
}

/** A TCP stream: the router's HostStream. */
class WispTcpStream implements HostStream {
  onConnect: () => void = () => {};
  onData: (data: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  onClose: (error?: string) => void = () => {};
  onDrain: () => void = () => {};

  creditLeft = 0;
  private isStarted = false;
  private connected = false;
  private closed = false;
  /** The guest half-closed (Wisp cannot say so: held until either side is done). */
  private guestEnded = false;
  private blocked = false;
  private readonly outbox: Uint8Array[] = [];
  private readonly inbox: Uint8Array[] = [];
  private inboxBytes = 0;
  private paused = false;
  /** The server closed voluntarily while data waited in the inbox. */
  private endAfterInbox = false;
  private stallTimer: TimerId = 0;
  private connectTimer: TimerId = 0;
  private lingerTimer: TimerId = 0;

  constructor(private readonly wisp: WispHostNetwork, readonly id: number, readonly host: string, readonly port: number, private readonly flow: string) {}

  get queuedBytes(): number {
    return this.outbox.reduce((a, b) => a + b.length, 0);
  }

  started(credit: number): void {
    this.isStarted = true;
    this.creditLeft = credit;
    // Wisp does not confirm a connect: a CONTINUE or DATA on the stream does; a refusal is a CLOSE. Silence for a while counts as connected.
    const clock = this.wisp.timers;
    this.connectTimer = clock.setTimer(clock.now() + CONNECT_GRACE_NS, () => this.confirm());
    this.flush();
  }

  private confirm(): void {
    if (this.connected || this.closed) return;
    this.connected = true;
    this.wisp.timers.cancelTimer(this.connectTimer);
    this.onConnect();
  }

  write(data: Uint8Array): boolean {
    if (this.closed) return true;
    for (let o = 0; o < data.length; o += MAX_DATA) this.outbox.push(data.slice(o, o + MAX_DATA));
    this.flush();
    if (this.outbox.length > 0) this.blocked = true;
    return !this.blocked;
  }

  private flush(): void {
    if (this.closed || !this.isStarted) return;
    while (this.outbox.length > 0 && this.creditLeft > 0) {
      if (!this.wisp.send(WISP_DATA, this.id, this.outbox[0])) return;
      this.outbox.shift();
      this.creditLeft--;
    }
    const clock = this.wisp.timers;
    if (this.outbox.length > 0) {
      // No credit: the server must grant some within the stall timeout.
      if (this.stallTimer === 0) this.stallTimer = clock.setTimer(clock.now() + this.wisp.stallTimeoutNs, () => this.stalled());
      return;
    }
    clock.cancelTimer(this.stallTimer);
    this.stallTimer = 0;
    if (this.blocked) {
      this.blocked = false;
      this.onDrain();
    }
  }

  private stalled(): void {
    this.stallTimer = 0;
    if (this.closed || this.outbox.length === 0) return;
    this.wisp.stats.stalls++;
    this.wisp.emit('wisp-stalled', this.flow, `The Wisp server granted no buffer for ${this.wisp.stallTimeoutNs / 1e9} s with ${this.queuedBytes} bytes waiting: the connection is reset.`);
    this.wisp.send(WISP_CLOSE, this.id, Uint8Array.of(REASON_NETWORK_ERROR));
    this.done('Wisp server granted no credit');
  }

  credit(n: number): void {
    if (this.closed) return;
    this.creditLeft = n;
    this.confirm();
    this.flush();
  }

  data(payload: Uint8Array): void {
    if (this.closed) return;
    this.confirm();
    if (this.guestEnded) this.linger();
    if (this.paused || this.inbox.length > 0) {
      this.inbox.push(payload);
      this.inboxBytes += payload.length;
      if (this.inboxBytes > MAX_INBOX) {
        this.wisp.emit('wisp-overrun', this.flow, `The server sent ${this.inboxBytes} bytes the guest has not read (Wisp cannot ask it to wait): the connection is reset.`);
        this.wisp.send(WISP_CLOSE, this.id, Uint8Array.of(0x81));
        this.done('the guest did not read what the server sent');
      }
    } else this.onData(payload);
  }

  closedByServer(reason: number): void {
    if (this.closed) return;
    if (reason === REASON_VOLUNTARY) {
      if (!this.connected) {
        // Closed before anything was said: nothing to hand over; a plain end.
        this.confirm();
      }
      if (this.inbox.length > 0) {
        this.endAfterInbox = true;
        return;
      }
      this.closed = true;
      this.cleanup();
      this.onEnd();
      this.onClose();
      return;
    }
    this.wisp.stats.streamsFailed++;
    this.wisp.emit('wisp-stream-closed', this.flow, `The Wisp server closed the stream: ${reasonText(reason)}. The guest's connection is ${this.connected ? 'reset' : 'refused'}.`);
    this.done(`Wisp: ${reasonText(reason)}`);
  }

  /** The WebSocket is gone (possibly inside a call the router made: tell it from the event loop). */
  failed(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.cleanup();
    void Promise.resolve().then(() => this.onClose(why));
  }

  private done(error: string): void {
    if (this.closed) return;
    this.closed = true;
    this.cleanup();
    this.onClose(error);
  }

  private cleanup(): void {
    const clock = this.wisp.timers;
    clock.cancelTimer(this.stallTimer);
    clock.cancelTimer(this.connectTimer);
    clock.cancelTimer(this.lingerTimer);
    this.outbox.length = 0;
    this.inbox.length = 0;
    this.inboxBytes = 0;
    this.wisp.forget(this);
  }

  end(): void {
    if (this.closed) return;
    if (!this.guestEnded) {
      this.guestEnded = true;
      this.linger();
      return;
    }
    // Asked again: the guest's side is gone for good; what waits is still sent first, as a socket would.
    this.closeStream();
  }

  /** (Re)start the wait for the server's silence after the guest's FIN. */
  private linger(): void {
    const clock = this.wisp.timers;
    clock.cancelTimer(this.lingerTimer);
    this.lingerTimer = clock.setTimer(clock.now() + HALF_CLOSE_LINGER_NS, () => {
      if (this.closed || this.outbox.length > 0 || this.inbox.length > 0) {
        if (!this.closed) this.linger();
        return;
      }
      // Silence: close the stream, and the guest gets the FIN it waits for.
      this.wisp.send(WISP_CLOSE, this.id, Uint8Array.of(REASON_VOLUNTARY));
      this.closed = true;
      this.cleanup();
      this.onEnd();
      this.onClose();
    });
  }

  destroy(): void {
    this.closeStream();
  }

  private closeStream(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.isStarted) {
      for (const b of this.outbox.splice(0)) if (!this.wisp.send(WISP_DATA, this.id, b)) break;
      this.wisp.send(WISP_CLOSE, this.id, Uint8Array.of(REASON_VOLUNTARY));
    }
    this.cleanup();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (!this.paused && !this.closed && this.inbox.length > 0) {
      const b = this.inbox.shift()!;
      this.inboxBytes -= b.length;
      this.onData(b);
    }
    if (!this.paused && this.endAfterInbox && this.inbox.length === 0 && !this.closed) {
      this.closed = true;
      this.cleanup();
      this.onEnd();
      this.onClose();
    }
  }
}

/** A UDP destination of a socket: one Wisp UDP stream. */
class WispUdpStream {
  constructor(
    private readonly wisp: WispHostNetwork, readonly id: number, readonly host: string, readonly port: number,
    private readonly socket: WispUdpSocket, readonly address: string,
  ) {}

  private isStarted = false;
  private closed = false;
  private readonly early: Uint8Array[] = [];

  started(): void {
    this.isStarted = true;
    for (const d of this.early.splice(0)) this.wisp.send(WISP_DATA, this.id, d);
  }

  sendData(d: Uint8Array): void {
    if (this.closed) return;
    if (!this.isStarted) {
      if (this.early.length < 64) this.early.push(d.slice());
      return;
    }
    this.wisp.send(WISP_DATA, this.id, d);
  }

  data(payload: Uint8Array): void {
    if (!this.closed) this.socket.deliver(payload, this.address, this.port);
  }

  credit(): void {
    // UDP streams have no credit (protocol.md: CONTINUE is not sent for them).
  }

  closedByServer(reason: number): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.streamGone(this);
    if (reason !== REASON_VOLUNTARY) {
      this.wisp.stats.streamsFailed++;
      this.wisp.emit('wisp-stream-closed', `${this.host}:${this.port}/udp`, `The Wisp server closed a UDP stream: ${reasonText(reason)}.`);
      this.socket.onError(`Wisp: ${reasonText(reason)}`);
    }
  }

  failed(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.streamGone(this);
    this.socket.onError(why);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.isStarted) this.wisp.send(WISP_CLOSE, this.id, Uint8Array.of(REASON_VOLUNTARY));
    this.wisp.forget(this);
  }
}

/** The router's UDP socket over Wisp: each destination gets a UDP stream. */
class WispUdpSocket implements HostDatagramSocket {
  onMessage: (data: Uint8Array, address: string, port: number) => void = () => {};
  onError: (error: string) => void = () => {};
  private readonly streams = new Map<string, WispUdpStream>();
  private closed = false;

  constructor(private readonly wisp: WispHostNetwork) {}

  send(data: Uint8Array, address: string, port: number): void {
    if (this.closed) return;
    const key = `${address}:${port}`;
    let s = this.streams.get(key);
    if (!s) {
      const opened = this.wisp.openUdpStream(this, address, port);
      if (!opened) {
        this.onError(`no name is known for ${address}`);
        return;
      }
      s = opened;
      this.streams.set(key, s);
    }
    s.sendData(data);
  }

  deliver(data: Uint8Array, address: string, port: number): void {
    if (!this.closed) this.onMessage(data, address, port);
  }

  streamGone(s: WispUdpStream): void {
    const key = `${s.address}:${s.port}`;
    if (this.streams.get(key) === s) this.streams.delete(key);
  }

  close(): void {
    this.closed = true;
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }
}
