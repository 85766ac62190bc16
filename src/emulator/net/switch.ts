/**
 * A learning Ethernet switch (IEEE 802.1D §7.8: learn the source address of every frame
 * on the port it came in on, forward to the port a destination was learned on, flood
 * group addresses and unknown destinations to every other port). One switch is one LAN:
 * QEMU's netdev. Its ports are the NICs, the user-mode router and the uplinks.
 *
 * Every port is a link with two directions, each a FIFO on virtual time: a frame sent
 * into the switch or delivered out of it waits its turn there, so a frame never arrives
 * inside the call that sent it (a NIC's transmit never re-enters its own receive) and a
 * port can be shaped like a real link: a fixed delay, a serialisation rate and random
 * loss (seeded, so a deterministic run loses the same frames every time). Every frame
 * and byte is counted per port and direction, and every drop by reason: nothing is lost
 * silently.
 */
import type { Clock, TimerId } from '../bus/device.ts';
import { ETH_HEADER, isMulticast, macToString, type FrameEndpoint } from './ethernet.ts';

/** Frames a direction of a link holds before it drops (a real switch's port buffer). */
const QUEUE_FRAMES = 1024;
/** Learned addresses expire after this long unseen (802.1D's default ageing time, 300 s). */
const AGEING_NS = 300e9;

export interface LinkShape {
  /** One-way latency added to every frame, in ns. */
  delayNs?: number;
  /** Probability that a frame is lost, 0..1, in each direction. */
  loss?: number;
  /** Serialisation rate in bytes per second (0 or absent: unlimited). */
  bytesPerSecond?: number;
  /** Seed of the loss generator (default 1). */
  seed?: number;
}

/** Counters of one port, as the switch saw them. "in" is from the endpoint into the switch. */
export interface PortCounters {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  /** Dropped because the link was down. */
  dropLinkDown: number;
  /** Dropped by the shaper's loss. */
  dropLoss: number;
  /** Dropped because a direction's queue was full. */
  dropQueueFull: number;
  /** Dropped as malformed: shorter than an Ethernet header. */
  dropMalformed: number;
}

function newCounters(): PortCounters {
  return { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, dropLinkDown: 0, dropLoss: 0, dropQueueFull: 0, dropMalformed: 0 };
}

/** What a capture of a port sees (pcap.ts writes it): every frame crossing the port, either way, with its virtual time. */
export type PortTap = (frame: Uint8Array, timeNs: number, direction: 'in' | 'out') => void;

/** One direction of a link: frames waiting for their delivery time. */
class LinkQueue {
  private readonly frames: Uint8Array[] = [];
  private readonly due: number[] = [];
  private head = 0;
  private timer: TimerId = 0;
  /** When the link finishes sending what it holds (the rate limiter). */
  private busyUntil = 0;

  constructor(private readonly clock: Clock, private readonly deliver: (frame: Uint8Array) => void) {}

  get length(): number {
    return this.frames.length - this.head;
  }

  push(frame: Uint8Array, shape: LinkShape): boolean {
    if (this.length >= QUEUE_FRAMES) return false;
    const now = this.clock.now();
    let at = now;
    const rate = shape.bytesPerSecond ?? 0;
    if (rate > 0) {
      const start = Math.max(now, this.busyUntil);
      this.busyUntil = start + (frame.length / rate) * 1e9;
      at = this.busyUntil;
    }
    at += shape.delayNs ?? 0;
    // A FIFO: a frame never overtakes the one before it, whatever the shape did since.
    if (this.length > 0) at = Math.max(at, this.due[this.due.length - 1]);
    this.frames.push(frame);
    this.due.push(at);
    if (this.length === 1) this.arm();
    return true;
  }

  private arm(): void {
    this.timer = this.clock.setTimer(this.due[this.head], () => this.fire());
  }

  private fire(): void {
    this.timer = 0;
    const now = this.clock.now();
    // Deliver everything due: a burst costs one timer.
    while (this.length > 0 && this.due[this.head] <= now) {
      const frame = this.frames[this.head];
      this.head++;
      this.deliver(frame);
    }
    if (this.head > 64 && this.head * 2 > this.frames.length) {
      this.frames.splice(0, this.head);
      this.due.splice(0, this.head);
      this.head = 0;
    }
    if (this.length > 0 && this.timer === 0) this.arm();
  }

  clear(): number {
    const n = this.length;
    this.clock.cancelTimer(this.timer);
    this.timer = 0;
    this.frames.length = 0;
    this.due.length = 0;
    this.head = 0;
    return n;
  }
}

/** xorshift32: the loss generator; a seed gives the same losses in every run. */
function lossGenerator(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

export class SwitchPort {
  readonly counters: PortCounters = newCounters();
  private up = true;
  private shapeSpec: LinkShape = {};
  private random = lossGenerator(1);
  private readonly taps: PortTap[] = [];
  /** Frames from the endpoint on their way into the switch. */
  private readonly ingress: LinkQueue;
  /** Frames from the switch on their way to the endpoint. */
  private readonly egress: LinkQueue;

  constructor(
    private readonly sw: EthernetSwitch,
    readonly name: string,
    readonly endpoint: FrameEndpoint,
    clock: Clock,
  ) {
    this.ingress = new LinkQueue(clock, (f) => this.sw.forward(this, f));
    this.egress = new LinkQueue(clock, (f) => {
      this.counters.framesOut++;
      this.counters.bytesOut += f.length;
      this.tap(f, 'out');
      this.endpoint.receive(f);
    });
  }

  /** A frame from this port's endpoint into the switch (what the endpoint calls to transmit). */
  send(frame: Uint8Array): void {
    if (frame.length < ETH_HEADER) {
      this.counters.dropMalformed++;
      return;
    }
    if (!this.up) {
      this.counters.dropLinkDown++;
      return;
    }
    this.counters.framesIn++;
    this.counters.bytesIn += frame.length;
    this.tap(frame, 'in');
    if (this.lost()) return;
    if (!this.ingress.push(frame, this.shapeSpec)) this.counters.dropQueueFull++;
  }

  /** The switch hands this port a frame to deliver to its endpoint. */
  output(frame: Uint8Array): void {
    if (!this.up) {
      this.counters.dropLinkDown++;
      return;
    }
    if (this.lost()) return;
    if (!this.egress.push(frame, this.shapeSpec)) this.counters.dropQueueFull++;
  }

  private lost(): boolean {
    const p = this.shapeSpec.loss ?? 0;
    if (p > 0 && this.random() < p) {
      this.counters.dropLoss++;
      return true;
    }
    return false;
  }

  private tap(frame: Uint8Array, direction: 'in' | 'out'): void {
    for (const t of this.taps) t(frame, this.sw.clock.now(), direction);
  }

  get linkUp(): boolean {
    return this.up;
  }

  /** Link state: down, frames either way are dropped (and counted), and what waits is dropped too. */
  setLink(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (!up) this.counters.dropLinkDown += this.ingress.clear() + this.egress.clear();
  }

  get shape(): Readonly<LinkShape> {
    return this.shapeSpec;
  }

  /** Shape the link (both directions): delay, loss, rate. `{}` makes it a plain wire again. */
  setShape(shape: LinkShape): void {
    if (shape.loss !== undefined && !(shape.loss >= 0 && shape.loss <= 1)) throw new RangeError(`loss must be between 0 and 1, not ${shape.loss}`);
    if (shape.delayNs !== undefined && !(shape.delayNs >= 0)) throw new RangeError(`delay must not be negative`);
    if (shape.bytesPerSecond !== undefined && !(shape.bytesPerSecond >= 0)) throw new RangeError(`rate must not be negative`);
    this.shapeSpec = { ...shape };
    this.random = lossGenerator(shape.seed ?? 1);
  }

  /** Watch every frame crossing this port; returns a function that stops watching. */
  addTap(tap: PortTap): () => void {
    this.taps.push(tap);
    return () => {
      const i = this.taps.indexOf(tap);
      if (i >= 0) this.taps.splice(i, 1);
    };
  }

  /** Take the port off the switch (an uplink whose peer went away). */
  remove(): void {
    this.ingress.clear();
    this.egress.clear();
    this.sw.removePort(this);
  }
}

export class EthernetSwitch {
  readonly ports: SwitchPort[] = [];
  /** Learned MAC (as "aa:bb:..") -> port and when it was last seen. */
  private readonly table = new Map<string, { port: SwitchPort; seenNs: number }>();
  /** Frames flooded because their destination was unknown or a group address. */
  flooded = 0;

  constructor(readonly clock: Clock, readonly name = 'lan') {}

  /**
   * Connect an endpoint. It transmits by calling the returned port's `send`; the switch
   * delivers to it through `endpoint.receive`.
   */
  addPort(name: string, endpoint: FrameEndpoint): SwitchPort {
    const port = new SwitchPort(this, name, endpoint, this.clock);
    this.ports.push(port);
    return port;
  }

  /** Find a port by name. */
  port(name: string): SwitchPort | undefined {
    return this.ports.find((p) => p.name === name);
  }

  removePort(port: SwitchPort): void {
    const i = this.ports.indexOf(port);
    if (i >= 0) this.ports.splice(i, 1);
    for (const [mac, e] of this.table) if (e.port === port) this.table.delete(mac);
  }

  /** 802.1D forwarding: learn the source, then unicast to a known port or flood. */
  forward(from: SwitchPort, frame: Uint8Array): void {
    if (!this.ports.includes(from)) return; // removed while the frame was on its way
    const now = this.clock.now();
    // A group address as a source is invalid (802.1D §7.8): never learn it.
    if ((frame[6] & 1) === 0) this.table.set(macToString(frame, 6), { port: from, seenNs: now });
    if (!isMulticast(frame)) {
      const entry = this.table.get(macToString(frame, 0));
      if (entry && now - entry.seenNs < AGEING_NS && this.ports.includes(entry.port)) {
        // A frame for the port it came from goes nowhere (the station is on that segment).
        if (entry.port !== from) entry.port.output(frame);
        return;
      }
    }
    this.flooded++;
    for (const p of this.ports) if (p !== from) p.output(frame);
  }

  /** The learned table, for the UI and tests: MAC -> port name. */
  addresses(): { mac: string; port: string }[] {
    return [...this.table].map(([mac, e]) => ({ mac, port: e.port.name }));
  }
}
