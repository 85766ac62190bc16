/**
 * A WebSocket relay as a layer-2 uplink: one port of a LAN's switch whose other end is a
 * WebSocket carrying one raw Ethernet frame per binary message, no length, no FCS (the
 * convention websockproxy, v86 and JSLinux share). Every machine on the relay is on one
 * Ethernet segment: ARP, DHCP and pings cross it as on a hub.
 *
 * What is not a frame is counted and dropped, never passed on: text messages, runts
 * (shorter than an Ethernet header) and oversized messages (longer than a VLAN-tagged
 * 1518-byte frame). Frames for the relay while the WebSocket is not open are counted as
 * dropped. A lost WebSocket is re-opened after RECONNECT_NS, doubling up to a minute
 * (on the machine's clock), until close().
 *
 * DOM-free: the WebSocket comes from the injected factory (the page's WebSocket, `ws`
 * in Node).
 */
import type { Clock, TimerId } from '../bus/device.ts';
import { ETH_HEADER } from './ethernet.ts';
import type { NetEvent } from './host.ts';
import type { EthernetSwitch, SwitchPort } from './switch.ts';
import { messageBytes, WS_OPEN, type WebSocketFactory, type WebSocketLike } from './upstream.ts';

/** 1500 bytes of payload, a 14-byte header and an 802.1Q tag (IEEE 802.3 §3.2.7, without FCS). */
export const MAX_FRAME = 1518;
export const RECONNECT_NS = 1_000_000_000;
const RECONNECT_MAX_NS = 60_000_000_000;
/** Bytes the WebSocket may hold unsent before frames for it are dropped (a slow relay). */
const MAX_BUFFERED = 4 << 20;

export interface WebSocketRelayOptions {
  /** ws:// or wss:// */
  url: string;
  createWebSocket: WebSocketFactory;
  clock: Clock;
  /** The switch port's name (default "relay"). */
  name?: string;
  /** Re-open a lost WebSocket (default true). */
  reconnect?: boolean;
  onEvent?: (event: NetEvent) => void;
  /** Called on every message and state change (the CLI wakes its run loop with it). */
  onActivity?: () => void;
}

export interface WebSocketRelayCounters {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  /** Messages from the relay that were not frames. */
  dropText: number;
  dropRunt: number;
  dropOversize: number;
  /** Frames for the relay while its WebSocket was not open, or too much was waiting to be sent. */
  dropNotOpen: number;
  dropSlow: number;
  connects: number;
  disconnects: number;
}

export type RelayState = 'connecting' | 'open' | 'closed' | 'waiting';

export class WebSocketRelayUplink {
  readonly counters: WebSocketRelayCounters = {
    framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, dropText: 0, dropRunt: 0, dropOversize: 0, dropNotOpen: 0, dropSlow: 0, connects: 0, disconnects: 0,
  };
  readonly port: SwitchPort;
  readonly url: string;
  private ws: WebSocketLike | null = null;
  private _state: RelayState = 'connecting';
  private timer: TimerId = 0;
  private backoff = RECONNECT_NS;
  private closed = false;
  /** Resolves when the WebSocket first opens (never rejects: a relay that is down is retried). */
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  /** Why the relay is not open, in words; null when it is. */
  lastError: string | null = null;

  constructor(sw: EthernetSwitch, private readonly options: WebSocketRelayOptions) {
    this.url = options.url;
    this.ready = new Promise((r) => (this.readyResolve = r));
    this.port = sw.addPort(options.name ?? 'relay', { receive: (frame) => this.toRelay(frame) });
    this.open();
  }

  get state(): RelayState {
    return this._state;
  }

  private emit(kind: string, message: string): void {
    try {
      this.options.onEvent?.({ kind, flow: '', message });
    } catch {
      // A listener's failure is not the link's.
    }
  }

  private activity(): void {
    try {
      this.options.onActivity?.();
    } catch {
      // Same.
    }
  }

  private open(): void {
    if (this.closed) return;
    this._state = 'connecting';
    let ws: WebSocketLike;
    try {
      ws = this.options.createWebSocket(this.url);
      ws.binaryType = 'arraybuffer';
    } catch (e) {
      this.lastError = `cannot open a WebSocket to ${this.url}: ${e instanceof Error ? e.message : String(e)}`;
      this.emit('relay-error', this.lastError);
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this._state = 'open';
      this.lastError = null;
      this.backoff = RECONNECT_NS;
      this.counters.connects++;
      this.emit('relay-open', `Joined the relay at ${this.url}.`);
      this.readyResolve();
      this.activity();
    };
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.fromRelay(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.lastError = `the relay at ${this.url} closed the WebSocket (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
      this.lost();
    };
    ws.onerror = () => {
      if (this.ws !== ws) return;
      this.lastError = `the WebSocket to ${this.url} failed (the relay is down, refused, or not a WebSocket server)`;
      this.lost();
    };
  }

  private lost(): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // Already failing.
      }
    }
    if (this._state === 'open') this.counters.disconnects++;
    this.emit('relay-closed', `${this.lastError ?? 'the relay is gone'}${this.options.reconnect === false ? '' : `; trying again in ${this.backoff / 1e9} s`}.`);
    this.activity();
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.options.reconnect === false) {
      this._state = 'closed';
      return;
    }
    this._state = 'waiting';
    const clock = this.options.clock;
    this.timer = clock.setTimer(clock.now() + this.backoff, () => this.open());
    this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_NS);
  }

  private fromRelay(data: unknown): void {
    const frame = messageBytes(data);
    if (frame === null) {
      this.counters.dropText++;
      if (this.counters.dropText === 1) this.emit('relay-garbage', `The relay sent a text message, not a frame (dropped; counted from now on).`);
    } else if (frame.length < ETH_HEADER) {
      this.counters.dropRunt++;
      if (this.counters.dropRunt === 1) this.emit('relay-garbage', `The relay sent a ${frame.length}-byte message, shorter than an Ethernet header (dropped; counted from now on).`);
    } else if (frame.length > MAX_FRAME) {
      this.counters.dropOversize++;
      if (this.counters.dropOversize === 1) this.emit('relay-garbage', `The relay sent a ${frame.length}-byte message, longer than an Ethernet frame (dropped; counted from now on).`);
    } else {
      this.counters.framesIn++;
      this.counters.bytesIn += frame.length;
      this.port.send(frame.slice());
    }
    this.activity();
  }

  private toRelay(frame: Uint8Array): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) {
      this.counters.dropNotOpen++;
      return;
    }
    if (ws.bufferedAmount > MAX_BUFFERED) {
      this.counters.dropSlow++;
      return;
    }
    try {
      ws.send(frame);
    } catch {
      this.counters.dropNotOpen++;
      return;
    }
    this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.options.clock.cancelTimer(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // Nothing more to do.
      }
    }
    this._state = 'closed';
    this.port.remove();
  }
}
