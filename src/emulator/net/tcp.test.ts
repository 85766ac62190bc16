import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../machine/clock.ts';
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';
import {
  TCP_ACK,
  TCP_FIN,
  TCP_MIN_RTO,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TcpEndpoint,
  encodeTcpSegment,
  parseTcpSegment,
  resetFor,
  type TcpCloseReason,
  type TcpOptions,
  type TcpSegment,
} from './tcp.ts';

const MS = 1_000_000;
const ROUTER_IP = 0x0a000202; // 10.0.2.2
const GUEST_IP = 0x0a00020f; // 10.0.2.15
const ROUTER = { ip: ROUTER_IP, port: 80 };
const GUEST = { ip: GUEST_IP, port: 40000 };

/** A small seeded PRNG (mulberry32) so lossy links are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What one endpoint's application saw. */
class App {
  chunks: Uint8Array[] = [];
  established = 0;
  remoteClosed = 0;
  writable = 0;
  closed: TcpCloseReason[] = [];
  log: string[] = [];
  onData: ((b: Uint8Array) => void) | null = null;
  onWritable: (() => void) | null = null;
  onRemoteClosed: (() => void) | null = null;

  get received(): Uint8Array {
    return concat(this.chunks);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const n = chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function events(app: App, output: (seg: TcpSegment) => void) {
  return {
    output,
    established: () => {
      app.established++;
      app.log.push('established');
    },
    data: (b: Uint8Array) => {
      app.chunks.push(b);
      app.onData?.(b);
    },
    remoteClosed: () => {
      app.remoteClosed++;
      app.log.push('remoteClosed');
      app.onRemoteClosed?.();
    },
    writable: () => {
      app.writable++;
      app.onWritable?.();
    },
    closed: (r: TcpCloseReason) => {
      app.closed.push(r);
      app.log.push(`closed:${r}`);
    },
  };
}

interface LinkOptions {
  /** One-way delay, ns. */
  delay?: number;
  /** Extra random delay up to this, ns: reorders segments. */
  jitter?: number;
  /** Probability a segment is lost. */
  loss?: number;
  seed?: number;
  /** Probability a segment is delivered twice. */
  duplicate?: number;
  /** Drop a segment when this returns true (after loss), for scripted losses. */
  drop?: (from: 'router' | 'guest', seg: TcpSegment) => boolean;
}

/**
 * Two endpoints back to back, as the router terminates a guest connection: every segment
 * is encoded with its checksum, carried over a link with delay, loss and reordering, and
 * parsed at the other end. The guest side is created on the first SYN like a listener.
 */
class Pair {
  readonly clock = new VirtualClock();
  readonly routerApp = new App();
  readonly guestApp = new App();
  router!: TcpEndpoint;
  guest!: TcpEndpoint;
  /** Every segment as parsed at the receiver, with its sender. */
  readonly wire: { from: 'router' | 'guest'; seg: TcpSegment; at: number }[] = [];
  /** Sends and arrivals in the order they happened, for checks of what a sender knew when it sent. */
  readonly timeline: { kind: 'send' | 'arrive'; from: 'router' | 'guest'; seg: TcpSegment; at: number }[] = [];
  lost = 0;
  private readonly rand: () => number;

  constructor(
    readonly link: LinkOptions = {},
    routerOptions: TcpOptions = {},
    readonly guestOptions: TcpOptions = {},
  ) {
    this.rand = prng(link.seed ?? 1);
    this.router = new TcpEndpoint(this.clock, ROUTER, GUEST, events(this.routerApp, (s) => this.carry('router', s)), {
      iss: 1000,
      ...routerOptions,
    });
    this.guest = new TcpEndpoint(this.clock, GUEST, ROUTER, events(this.guestApp, (s) => this.carry('guest', s)), {
      iss: 0xfffff000, // close to the wrap, so sequence arithmetic crosses 2^32
      ...guestOptions,
    });
  }

  private carry(from: 'router' | 'guest', seg: TcpSegment): void {
    const [srcIp, dstIp] = from === 'router' ? [ROUTER_IP, GUEST_IP] : [GUEST_IP, ROUTER_IP];
    const bytes = encodeTcpSegment(seg, srcIp, dstIp);
    const loss = this.link.loss ?? 0;
    const parsedHere = parseTcpSegment(bytes, srcIp, dstIp)!;
    this.timeline.push({ kind: 'send', from, seg: parsedHere, at: this.clock.now() });
    if ((loss > 0 && this.rand() < loss) || this.link.drop?.(from, parsedHere)) {
      this.lost++;
      return;
    }
    const copies = this.link.duplicate && this.rand() < this.link.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = (this.link.delay ?? 1 * MS) + Math.floor(this.rand() * (this.link.jitter ?? 0));
      this.clock.setTimer(this.clock.now() + delay, () => {
        const parsed = parseTcpSegment(bytes, srcIp, dstIp);
        expect(parsed).not.toBeNull();
        this.wire.push({ from, seg: parsed!, at: this.clock.now() });
        this.timeline.push({ kind: 'arrive', from, seg: parsed!, at: this.clock.now() });
        const to = from === 'router' ? this.guest : this.router;
        to.input(parsed!);
      });
    }
  }

  /** Run virtual time until `done` or `limitNs` of virtual time passed; returns whether done. */
  run(done: () => boolean, limitNs = 600_000 * MS): boolean {
    const end = this.clock.now() + limitNs;
    while (!done()) {
      const next = this.clock.nextDeadline();
      if (next > end) {
        this.clock.advanceTo(end);
        return done();
      }
      this.clock.advanceTo(next);
    }
    return true;
  }

  /** The router actively opens (hostfwd); the guest listens. */
  open(): void {
    // The guest "listens": it accepts the first SYN it sees.
    const guest = this.guest;
    const input = guest.input.bind(guest);
    let accepted = false;
    guest.input = (seg: TcpSegment) => {
      if (!accepted && seg.flags & TCP_SYN && !(seg.flags & TCP_ACK)) {
        accepted = true;
        guest.acceptSyn(seg);
        return;
      }
      input(seg);
    };
    this.router.connect();
    expect(this.run(() => this.router.state === 'ESTABLISHED' && this.guest.state === 'ESTABLISHED', 30_000 * MS)).toBe(true);
  }
}

/** Compare byte arrays by a plain loop: deep equality over a megabyte is slow. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  let mismatch = -1;
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      mismatch = i;
      break;
    }
  }
  expect(mismatch).toBe(-1);
}

function pattern(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
}

/** Write `data` through `ep` as fast as its send buffer allows, then optionally close. */
function pump(ep: TcpEndpoint, app: App, data: Uint8Array, closeAfter: boolean): { sent: () => number } {
  let off = 0;
  const more = (): void => {
    while (off < data.length) {
      const n = ep.write(data.subarray(off));
      off += n;
      if (n === 0) return;
    }
    if (closeAfter) ep.close();
  };
  app.onWritable = more;
  more();
  return { sent: () => off };
}

function synFromGuest(opts: Partial<TcpSegment> = {}): TcpSegment {
  return {
    srcPort: GUEST.port,
    dstPort: ROUTER.port,
    seq: 5000,
    ack: 0,
    flags: TCP_SYN,
    window: 64240,
    mss: 1460,
    wscale: 7,
    sackPermitted: true,
    payload: new Uint8Array(0),
    ...opts,
  };
}

/** Put a valid checksum (guest to router) into a hand-built segment. */
function resumInPlace(b: Uint8Array): Uint8Array {
  b[16] = 0;
  b[17] = 0;
  const sum = internetChecksum(b, 0, b.length, pseudoHeaderSum(GUEST_IP, ROUTER_IP, 6, b.length));
  b[16] = sum >> 8;
  b[17] = sum & 0xff;
  return b;
}

const resum = (b: Uint8Array): Uint8Array => resumInPlace(b.slice());

/** A router-side endpoint driven by hand-made guest segments. */
function handDriven(options: TcpOptions = {}) {
  const clock = new VirtualClock();
  const app = new App();
  const out: TcpSegment[] = [];
  const ep = new TcpEndpoint(clock, ROUTER, GUEST, events(app, (s) => out.push(s)), { iss: 1000, ...options });
  const seg = (seq: number, flags: number, payload: Uint8Array | number[] = [], extra: Partial<TcpSegment> = {}): TcpSegment => ({
    srcPort: GUEST.port,
    dstPort: ROUTER.port,
    seq: seq >>> 0,
    ack: 1001,
    flags,
    window: 1000,
    payload: payload instanceof Uint8Array ? payload : Uint8Array.from(payload),
    ...extra,
  });
  return { clock, app, out, ep, seg };
}

describe('TCP segments', () => {
  it('round-trips header, options and payload through encode and parse', () => {
    const seg: TcpSegment = {
      srcPort: 40000,
      dstPort: 80,
      seq: 0xfffffff0,
      ack: 0x12345678,
      flags: TCP_SYN | TCP_ACK,
      window: 0xfedc,
      mss: 1460,
      wscale: 7,
      sackPermitted: true,
      payload: Uint8Array.of(1, 2, 3),
    };
    const bytes = encodeTcpSegment(seg, GUEST_IP, ROUTER_IP);
    expect(bytes.length).toBe(20 + 12 + 3);
    expect(parseTcpSegment(bytes, GUEST_IP, ROUTER_IP)).toEqual(seg);
  });

  it('rejects a bad checksum, a wrong pseudo-header and malformed headers without throwing', () => {
    const seg: TcpSegment = { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: TCP_ACK, window: 5, mss: 536, payload: Uint8Array.of(9, 9) };
    const good = encodeTcpSegment(seg, GUEST_IP, ROUTER_IP);
    expect(parseTcpSegment(good, GUEST_IP, ROUTER_IP)).not.toBeNull();
    const flipped = good.slice();
    flipped[25] ^= 0x40;
    expect(parseTcpSegment(flipped, GUEST_IP, ROUTER_IP)).toBeNull();
    expect(parseTcpSegment(good, GUEST_IP, ROUTER_IP + 1)).toBeNull();

    // Corrupted headers get a valid checksum, so only the structural checks can reject them.
    expect(parseTcpSegment(resum(good), GUEST_IP, ROUTER_IP)).not.toBeNull();

    const lowOffset = good.slice();
    lowOffset[12] = 4 << 4;
    expect(parseTcpSegment(resum(lowOffset), GUEST_IP, ROUTER_IP)).toBeNull();

    const pastEnd = good.slice();
    pastEnd[12] = 15 << 4; // 60-byte header in a 26-byte segment
    expect(parseTcpSegment(resum(pastEnd), GUEST_IP, ROUTER_IP)).toBeNull();

    // MSS option claiming 8 bytes inside a 4-byte option area.
    const truncated = good.slice();
    truncated[21] = 8;
    expect(parseTcpSegment(resum(truncated), GUEST_IP, ROUTER_IP)).toBeNull();
    // An option with length 0 or 1 would loop forever or overlap its own kind byte.
    const zeroLen = good.slice();
    zeroLen[21] = 0;
    expect(parseTcpSegment(resum(zeroLen), GUEST_IP, ROUTER_IP)).toBeNull();
    // A kind byte with no room for its length byte.
    const noLen = encodeTcpSegment({ ...seg, mss: undefined, wscale: 3 }, GUEST_IP, ROUTER_IP);
    noLen[20] = 1; // NOP NOP NOP, then kind 3 in the last byte
    noLen[21] = 1;
    noLen[22] = 1;
    noLen[23] = 3;
    expect(parseTcpSegment(resum(noLen), GUEST_IP, ROUTER_IP)).toBeNull();

    expect(parseTcpSegment(new Uint8Array(19), GUEST_IP, ROUTER_IP)).toBeNull();
    expect(parseTcpSegment(new Uint8Array(0), GUEST_IP, ROUTER_IP)).toBeNull();
    // Random garbage never throws.
    const r = prng(7);
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(20 + ((r() * 60) | 0));
      for (let j = 0; j < b.length; j++) b[j] = (r() * 256) | 0;
      b[12] = (5 + ((r() * 11) | 0)) << 4;
      expect(() => parseTcpSegment(resum(b), GUEST_IP, ROUTER_IP)).not.toThrow();
    }
  });

  it('skips options it does not know (timestamps) and stops at end-of-options', () => {
    const seg: TcpSegment = { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: TCP_SYN, window: 5, mss: 1400, payload: new Uint8Array(0) };
    const base = encodeTcpSegment(seg, GUEST_IP, ROUTER_IP);
    // Rebuild with: MSS, NOP, NOP, timestamps (10 bytes), EOL, then bytes that would read as
    // a window scale option if parsing went on past the EOL.
    const opts = [2, 4, 0x05, 0x78, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 3, 3, 9];
    const b = new Uint8Array(20 + opts.length);
    b.set(base.subarray(0, 20));
    b.set(opts, 20);
    b[12] = ((20 + opts.length) / 4) << 4;
    resumInPlace(b);
    const parsed = parseTcpSegment(b, GUEST_IP, ROUTER_IP);
    expect(parsed?.mss).toBe(0x578);
    expect(parsed?.wscale).toBeUndefined();
    expect(parsed?.payload.length).toBe(0);
  });
});

describe('resetFor (RFC 793 Reset Generation)', () => {
  it('answers an ACK with <SEQ=SEG.ACK><RST>', () => {
    const r = resetFor({ srcPort: 40000, dstPort: 81, seq: 7, ack: 0x9000, flags: TCP_ACK | TCP_PSH, window: 9, payload: Uint8Array.of(1) });
    expect(r).toMatchObject({ srcPort: 81, dstPort: 40000, seq: 0x9000, flags: TCP_RST });
  });
  it('answers a SYN with <SEQ=0><ACK=SEG.SEQ+SEG.LEN><RST,ACK>', () => {
    const r = resetFor(synFromGuest({ seq: 0xffffffff }));
    expect(r).toMatchObject({ srcPort: 80, dstPort: 40000, seq: 0, ack: 0, flags: TCP_RST | TCP_ACK });
    const withData = resetFor(synFromGuest({ seq: 10, flags: TCP_SYN | TCP_FIN, payload: Uint8Array.of(1, 2, 3) }));
    expect(withData!.ack).toBe(10 + 3 + 2);
  });
  it('never answers a RST', () => {
    expect(resetFor(synFromGuest({ flags: TCP_RST }))).toBeNull();
    expect(resetFor(synFromGuest({ flags: TCP_RST | TCP_ACK }))).toBeNull();
  });
});

describe('TcpEndpoint handshake', () => {
  it('passive open: SYN-ACK with our MSS and window scale, ESTABLISHED on the ACK', () => {
    const { ep, out, app, seg } = handDriven();
    ep.acceptSyn(synFromGuest({ seq: 5000, mss: 1200, wscale: 7 }));
    expect(ep.state).toBe('SYN-RECEIVED');
    expect(out).toHaveLength(1);
    const synAck = out[0]!;
    expect(synAck.flags).toBe(TCP_SYN | TCP_ACK);
    expect(synAck.seq).toBe(1000);
    expect(synAck.ack).toBe(5001);
    expect(synAck.mss).toBe(1460);
    // 256 KiB fits 16 bits with a shift of 3 (RFC 7323 §2.3); the SYN's window itself is unscaled.
    expect(synAck.wscale).toBe(3);
    expect(synAck.window).toBe(0xffff);
    ep.input(seg(5001, TCP_ACK, [], { window: 2000 }));
    expect(ep.state).toBe('ESTABLISHED');
    expect(app.established).toBe(1);
    // The peer's window is scaled by its shift of 7 from now on.
    expect(ep.tcb.snd_wnd).toBe(2000 * 128);
    expect(ep.tcb.smss).toBe(1200);
  });

  it('passive open without the peer offering scaling: no wscale, window fields capped at 65535', () => {
    const { ep, out, seg } = handDriven();
    ep.acceptSyn(synFromGuest({ wscale: undefined, mss: undefined }));
    expect(out[0]!.wscale).toBeUndefined();
    ep.input(seg(5001, TCP_ACK, [], { window: 2000 }));
    expect(ep.tcb.snd_wnd).toBe(2000);
    // No MSS option: RFC 9293 §3.7.1 default of 536.
    expect(ep.tcb.smss).toBe(536);
    ep.input(seg(5001, TCP_ACK | TCP_PSH, [1, 2, 3], { window: 2000 }));
    ep.input(seg(5004, TCP_ACK | TCP_PSH, [4, 5], { window: 2000 }));
    const ack = out[out.length - 1]!;
    expect(ack.ack).toBe(5006);
    expect(ack.window).toBe(0xffff);
    expect(ep.tcb.rcv_wscale).toBe(0);
  });

  it('retransmits a lost SYN-ACK when the SYN comes again, and on its timer', () => {
    const { ep, out, clock } = handDriven();
    ep.acceptSyn(synFromGuest());
    ep.input(synFromGuest());
    expect(out.filter((s) => s.flags === (TCP_SYN | TCP_ACK))).toHaveLength(2);
    clock.advanceTo(1000 * MS); // initial RTO, RFC 6298 §2.1
    expect(out.filter((s) => s.flags === (TCP_SYN | TCP_ACK))).toHaveLength(3);
    clock.advanceTo(3000 * MS); // backed off to 2 s
    expect(out.filter((s) => s.flags === (TCP_SYN | TCP_ACK))).toHaveLength(4);
  });

  it('gives up a handshake the peer never completes with closed(timeout)', () => {
    const { ep, app, clock } = handDriven({ synRetries: 3 });
    ep.acceptSyn(synFromGuest());
    clock.advanceTo(1_000_000 * MS);
    expect(app.closed).toEqual(['timeout']);
    expect(ep.state).toBe('CLOSED');
    expect(ep.stats.timeouts).toBe(4);
    expect(clock.pending).toBe(0);
  });

  it('active open to a closed port: closed(refused) on RST,ACK', () => {
    const { ep, out, app } = handDriven();
    ep.connect();
    expect(out[0]!.flags).toBe(TCP_SYN);
    expect(out[0]!.wscale).toBe(3);
    const rst = resetFor(out[0]!)!;
    ep.input({ ...rst, srcPort: GUEST.port, dstPort: ROUTER.port });
    expect(app.closed).toEqual(['refused']);
    // An RST whose ACK does not cover our SYN is ignored (RFC 793 p.66).
  });

  it('active open ignores a RST with a wrong ACK and answers a bad ACK with RST', () => {
    const { ep, out, app, seg } = handDriven();
    ep.connect();
    ep.input(seg(0, TCP_RST | TCP_ACK, [], { ack: 5 }));
    expect(app.closed).toEqual([]);
    ep.input(seg(77, TCP_ACK, [], { ack: 5 }));
    expect(out[out.length - 1]).toMatchObject({ flags: TCP_RST, seq: 5 });
    expect(ep.state).toBe('SYN-SENT');
  });

  it('both ways over a link: MSS is the smaller of the two, windows beyond 64 KiB with scaling', () => {
    const p = new Pair({ delay: 5 * MS }, { mss: 1000 }, { receiveBuffer: 1 << 20 });
    p.open();
    expect(p.router.tcb.smss).toBe(1000);
    expect(p.guest.tcb.smss).toBe(1000);
    expect(p.routerApp.established).toBe(1);
    expect(p.guestApp.established).toBe(1);
    // The handshake's round trip is the first RTT sample (RFC 6298 §2.2).
    expect(p.router.stats.srtt).toBe(10 * MS);
    // Guest's 1 MiB buffer: shift 5, and the router sees the whole window once data flows.
    p.router.write(new Uint8Array(10));
    p.run(() => p.router.tcb.snd_una === p.router.tcb.snd_max);
    expect(p.router.tcb.snd_wnd).toBeGreaterThan(1000 * 1024 - 2000);
    expect(p.guest.tcb.rcv_wscale).toBe(5);
    p.guest.write(new Uint8Array(5000));
    p.router.write(new Uint8Array(5000));
    p.run(() => p.routerApp.received.length === 5000 && p.guestApp.received.length === 5010);
    for (const w of p.wire) expect(w.seg.payload.length).toBeLessThanOrEqual(1000);
    expect(p.wire.filter((w) => w.seg.payload.length === 1000).length).toBeGreaterThanOrEqual(8);
  });
});

describe('TcpEndpoint data transfer', () => {
  it('transfers 1 MiB each way over a link that drops 5% and reorders, bytes identical', () => {
    const p = new Pair({ delay: 2 * MS, jitter: 3 * MS, loss: 0.05, seed: 42 });
    p.open();
    const fromRouter = pattern(1 << 20, 1);
    const fromGuest = pattern(1 << 20, 2);
    pump(p.router, p.routerApp, fromRouter, true);
    pump(p.guest, p.guestApp, fromGuest, true);
    const done = p.run(() => p.routerApp.closed.length > 0 && p.guestApp.closed.length > 0);
    expect(done).toBe(true);
    expectSameBytes(p.guestApp.received, fromRouter);
    expectSameBytes(p.routerApp.received, fromGuest);
    expect(p.routerApp.closed).toEqual(['normal']);
    expect(p.guestApp.closed).toEqual(['normal']);
    expect(p.lost).toBeGreaterThan(50);
    expect(p.router.stats.retransmits).toBeGreaterThan(0);
    expect(p.guest.stats.retransmits).toBeGreaterThan(0);
    expect(p.router.stats.outOfOrder + p.guest.stats.outOfOrder).toBeGreaterThan(0);
    expect(p.router.stats.fastRetransmits + p.guest.stats.fastRetransmits).toBeGreaterThan(0);
    // The send buffer (256 KiB) filled and drained many times: write() took part, writable() resumed it.
    expect(p.routerApp.writable).toBeGreaterThan(0);
    expect(p.guestApp.writable).toBeGreaterThan(0);
    // Segments never exceed the MSS announced.
    for (const w of p.wire) expect(w.seg.payload.length).toBeLessThanOrEqual(1460);
    // Everything is released: no timers left behind.
    expect(p.clock.pending).toBe(0);
  });

  it('keeps many segments in flight (sliding window, not stop-and-wait)', () => {
    const p = new Pair({ delay: 10 * MS });
    p.open();
    const data = pattern(200_000, 3);
    pump(p.router, p.routerApp, data, false);
    let maxFlight = 0;
    p.run(() => {
      maxFlight = Math.max(maxFlight, (p.router.tcb.snd_max - p.router.tcb.snd_una) >>> 0);
      return p.guestApp.received.length === data.length;
    });
    expectSameBytes(p.guestApp.received, data);
    // Initial window of 10 segments (RFC 6928) then slow start grows it.
    expect(maxFlight).toBeGreaterThan(20 * 1460);
    expect(p.router.stats.retransmits).toBe(0);
  });

  it('fast retransmit on the third duplicate ACK, NewReno recovery, no timeout', () => {
    let dataSegs = 0;
    const p = new Pair({
      delay: 10 * MS,
      drop: (from, seg) => from === 'router' && seg.payload.length > 0 && ++dataSegs === 5,
    });
    p.open();
    const data = pattern(100_000, 4);
    pump(p.router, p.routerApp, data, false);
    p.run(() => p.guestApp.received.length === data.length);
    expectSameBytes(p.guestApp.received, data);
    expect(p.router.stats.fastRetransmits).toBe(1);
    expect(p.router.stats.timeouts).toBe(0);
    expect(p.router.stats.retransmits).toBe(1);
    expect(p.router.tcb.in_recovery).toBe(false);
    // ssthresh is half the flight when the loss was detected (RFC 5681 (4)).
    expect(p.router.tcb.ssthresh).toBeLessThan(0x7fffffff);
    expect(p.guest.stats.outOfOrder).toBeGreaterThanOrEqual(3);
  });

  it('recovers several losses in one window with partial ACKs (RFC 6582)', () => {
    let dataSegs = 0;
    const p = new Pair({
      delay: 10 * MS,
      drop: (from, seg) => from === 'router' && seg.payload.length > 0 && [5, 7, 9].includes(++dataSegs),
    });
    p.open();
    const data = pattern(100_000, 5);
    pump(p.router, p.routerApp, data, false);
    p.run(() => p.guestApp.received.length === data.length);
    expectSameBytes(p.guestApp.received, data);
    expect(p.router.stats.fastRetransmits).toBe(1);
    expect(p.router.stats.retransmits).toBe(3);
    expect(p.router.stats.timeouts).toBe(0);
  });
});

describe('TcpEndpoint receiving', () => {
  function established() {
    const d = handDriven();
    d.ep.acceptSyn(synFromGuest({ seq: 5000 }));
    d.ep.input(d.seg(5001, TCP_ACK, [], { window: 1000 }));
    d.out.length = 0;
    return d;
  }

  it('holds out-of-order segments and delivers them when the gap fills, ACKing each at once', () => {
    const { ep, out, app, seg } = established();
    const bytes = (from: number, n: number) => Array.from({ length: n }, (_, i) => (from + i) & 0xff);
    ep.input(seg(5011, TCP_ACK, bytes(10, 10))); // [10,20)
    expect(out.pop()!.ack).toBe(5001); // immediate duplicate ACK
    ep.input(seg(5031, TCP_ACK, bytes(30, 10))); // [30,40)
    ep.input(seg(5016, TCP_ACK, bytes(15, 20))); // [15,35): overlaps both, only [20,30) is new
    expect(app.chunks).toHaveLength(0);
    expect(ep.stats.outOfOrder).toBe(3);
    ep.input(seg(5001, TCP_ACK, bytes(0, 10))); // fills the gap
    expect(app.received).toEqual(Uint8Array.from(bytes(0, 40)));
    expect(out.pop()!.ack).toBe(5041);
  });

  it('trims duplicate and overlapping data and ACKs a pure duplicate at once', () => {
    const { ep, out, app, seg } = established();
    ep.input(seg(5001, TCP_ACK, [1, 2, 3, 4]));
    ep.input(seg(5003, TCP_ACK, [3, 4, 5, 6])); // overlaps by two
    expect(app.received).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6));
    out.length = 0;
    ep.input(seg(5001, TCP_ACK, [1, 2, 3]));
    expect(out).toHaveLength(1);
    expect(out[0]!.ack).toBe(5007);
    expect(app.received).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6));
  });

  it('delays an ACK for one segment up to 40 ms but ACKs every second segment at once', () => {
    const { ep, out, seg, clock } = established();
    ep.input(seg(5001, TCP_ACK, new Uint8Array(100)));
    expect(out).toHaveLength(0);
    clock.advanceTo(clock.now() + 40 * MS);
    expect(out).toHaveLength(1);
    expect(out[0]!.ack).toBe(5101);
    ep.input(seg(5101, TCP_ACK, new Uint8Array(100)));
    ep.input(seg(5201, TCP_ACK, new Uint8Array(100)));
    expect(out).toHaveLength(2);
    expect(out[1]!.ack).toBe(5301);
  });

  it('drops data beyond the window it announced and answers with an ACK', () => {
    const { ep, out, app, seg } = established();
    ep.setReceiveBacklog(256 * 1024);
    const wnd = ep.tcb.rcv_wnd;
    ep.input(seg((5001 + wnd + 10) >>> 0, TCP_ACK, [1]));
    expect(app.chunks).toHaveLength(0);
    expect(out.pop()!.ack).toBe(5001);
  });

  it('shrinks its window while the application is backed up and sends a window update when it drains', () => {
    const { ep, out, app, seg, clock } = established();
    const shift = ep.tcb.rcv_wscale; // 3
    ep.setReceiveBacklog(256 * 1024); // the host socket is full
    let seq = 5001;
    // The guest keeps sending into the window it was promised; it closes as data arrives.
    const window = () => (ep.tcb.rcv_adv - seq) | 0;
    while (window() > 0) {
      const n = Math.min(1460, window());
      ep.input(seg(seq, TCP_ACK, new Uint8Array(n)));
      seq += n;
    }
    clock.advanceTo(clock.now() + 40 * MS); // the delayed ACK of the last segment
    const last = out[out.length - 1]!;
    expect(last.window).toBe(0);
    expect(app.received.length).toBe(seq - 5001);
    // The backlog half drains: a window update goes out on its own.
    const before = out.length;
    ep.setReceiveBacklog(128 * 1024);
    expect(out.length).toBe(before + 1);
    expect(out[out.length - 1]!.window << shift).toBe(128 * 1024);
    // Draining by less than an MSS does not send another (receiver SWS avoidance).
    ep.setReceiveBacklog(128 * 1024 - 100);
    expect(out.length).toBe(before + 1);
  });
});

describe('TcpEndpoint sending into a closed window', () => {
  it('probes a zero window with backoff and resumes when it opens (RFC 1122 §4.2.2.17)', () => {
    const p = new Pair({ delay: 1 * MS }, {}, { receiveBuffer: 64 * 1024 });
    p.open();
    p.guest.setReceiveBacklog(64 * 1024); // guest application not reading
    const data = pattern(300_000, 6);
    pump(p.router, p.routerApp, data, false);
    p.run(() => p.router.tcb.snd_wnd === 0 && p.router.tcb.snd_una === p.router.tcb.snd_max, 10_000 * MS);
    expect(p.router.tcb.snd_wnd).toBe(0);
    const receivedBefore = p.guestApp.received.length;
    const t0 = p.clock.now();
    p.clock.advanceTo(t0 + 10_000 * MS);
    const probes = p.wire.filter((w) => w.from === 'router' && w.at > t0 && w.seg.payload.length === 1);
    expect(p.router.stats.windowProbes).toBeGreaterThanOrEqual(3);
    expect(probes.length).toBe(p.router.stats.windowProbes);
    // Exponential backoff between probes.
    const gaps = probes.slice(1).map((w, i) => w.at - probes[i]!.at);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBe(Math.min(2 * gaps[i - 1]!, 60_000 * MS));
    // The connection stays up however long the window is shut.
    expect(p.routerApp.closed).toEqual([]);
    expect(p.guestApp.received.length).toBe(receivedBefore);
    // The guest reads: the window update restarts the transfer.
    p.guestApp.onData = () => p.guest.setReceiveBacklog(0);
    p.guest.setReceiveBacklog(0);
    p.run(() => p.guestApp.received.length === data.length, 60_000 * MS);
    expectSameBytes(p.guestApp.received, data);
    // The router never sent beyond the right edge the guest had offered, but for the
    // one-byte probes (RFC 1122 §4.2.2.17).
    let right: number | null = null;
    let beyond = 0;
    for (const e of p.timeline) {
      if (e.kind === 'arrive' && e.from === 'guest' && e.seg.flags & TCP_ACK && !(e.seg.flags & TCP_SYN)) {
        const edge = (e.seg.ack + e.seg.window * 2 ** p.router.tcb.snd_wscale) >>> 0;
        if (right === null || ((edge - right) | 0) > 0) right = edge;
      }
      if (e.kind === 'send' && e.from === 'router' && e.seg.payload.length > 0 && right !== null) {
        const end = (e.seg.seq + e.seg.payload.length) >>> 0;
        if (((end - right) | 0) > 0) {
          beyond++;
          expect(e.seg.payload.length).toBe(1);
        }
      }
    }
    expect(beyond).toBe(p.router.stats.windowProbes);
  });
});

describe('TcpEndpoint retransmission timer (RFC 6298)', () => {
  it('computes SRTT, RTTVAR and RTO from measured round trips as §2 says', () => {
    const p = new Pair({ delay: 50 * MS });
    p.open();
    // First sample (§2.2): the handshake, R = 100 ms.
    expect(p.router.tcb.srtt).toBe(100 * MS);
    expect(p.router.tcb.rttvar).toBe(50 * MS);
    expect(p.router.tcb.rto).toBe(100 * MS + 4 * 50 * MS);
    // One small segment: the guest delays its ACK by 40 ms, so R = 140 ms (§2.3).
    p.router.write(new Uint8Array(10));
    p.run(() => p.router.tcb.snd_una === p.router.tcb.snd_max);
    const rttvar = (3 / 4) * 50 * MS + (1 / 4) * Math.abs(100 * MS - 140 * MS);
    const srtt = (7 / 8) * 100 * MS + (1 / 8) * 140 * MS;
    expect(p.router.tcb.rttvar).toBeCloseTo(rttvar, 0);
    expect(p.router.tcb.srtt).toBeCloseTo(srtt, 0);
    expect(p.router.stats.rto).toBeCloseTo(srtt + 4 * rttvar, 0);
  });

  it('clamps RTO to the 200 ms minimum on a fast link', () => {
    const p = new Pair({ delay: 100_000 });
    p.open();
    expect(p.router.tcb.rto).toBe(TCP_MIN_RTO);
  });

  it('doubles RTO on each timeout, retransmits the first segment, gives up with closed(timeout) and RST', () => {
    let blackhole = false;
    const p = new Pair({ delay: 50 * MS, drop: (from) => blackhole && from === 'router' }, { maxRetries: 5 });
    p.open();
    const rto0 = p.router.tcb.rto; // 300 ms
    blackhole = true;
    const sentAt = p.clock.now();
    p.router.write(pattern(5000, 7)); // four segments go out at once (initial window)
    const first = p.timeline.length;
    p.run(() => p.routerApp.closed.length > 0);
    expect(p.routerApp.closed).toEqual(['timeout']);
    const sends = p.timeline.slice(first).filter((e) => e.kind === 'send' && e.from === 'router').map((e) => ({ at: e.at, seq: e.seg.seq, flags: e.seg.flags }));
    const retx = sends.filter((s) => !(s.flags & TCP_RST));
    expect(retx).toHaveLength(5);
    // Every retransmission is the first unacknowledged segment.
    for (const s of retx) expect(s.seq).toBe(1001);
    const times = [sentAt, ...retx.map((s) => s.at)];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps).toEqual([rto0, 2 * rto0, 4 * rto0, 8 * rto0, 16 * rto0]);
    // The last timeout gives up with a RST.
    expect(sends[sends.length - 1]!.flags & TCP_RST).toBeTruthy();
    expect(sends[sends.length - 1]!.at - times[times.length - 1]!).toBe(32 * rto0);
    expect(p.router.stats.timeouts).toBe(6);
    expect(p.router.stats.retransmits).toBe(5);
    // Karn: no sample was taken from retransmitted segments; cwnd fell to one segment.
    expect(p.router.tcb.srtt).toBe(100 * MS);
  });

  it('caps the backoff at 60 s', () => {
    let blackhole = false;
    const p = new Pair({ delay: 50 * MS, drop: (from) => blackhole && from === 'router' }, { maxRetries: 12 });
    p.open();
    blackhole = true;
    p.router.write(new Uint8Array(100));
    p.run(() => p.router.tcb.rto === 60_000 * MS || p.routerApp.closed.length > 0);
    expect(p.router.tcb.rto).toBe(60_000 * MS);
    expect(p.routerApp.closed).toEqual([]);
  });

  it('after a timeout slow start begins from one segment and ssthresh is half the flight (RFC 5681 §3.1)', () => {
    let drops = 0;
    let armed = false;
    const p = new Pair({
      delay: 10 * MS,
      // Lose a whole flight from the router once: only the timer can recover it.
      drop: (from, seg) => armed && from === 'router' && seg.payload.length > 0 && drops++ < 10,
    });
    p.open();
    armed = true;
    const data = pattern(10 * 1460, 8);
    pump(p.router, p.routerApp, data, false);
    const flight = (p.router.tcb.snd_max - p.router.tcb.snd_una) >>> 0;
    p.run(() => p.router.stats.timeouts === 1);
    expect(p.router.tcb.ssthresh).toBe(Math.max(flight / 2, 2 * 1460));
    expect(p.router.tcb.cwnd).toBe(1460);
    p.run(() => p.guestApp.received.length === data.length);
    expectSameBytes(p.guestApp.received, data);
  });
});

describe('TcpEndpoint closing', () => {
  it('guest half-closes, the router keeps sending, then closes (passive close via CLOSE-WAIT, LAST-ACK)', () => {
    const p = new Pair({ delay: 1 * MS });
    p.open();
    p.guest.write(Uint8Array.of(1, 2, 3));
    p.guest.close();
    p.run(() => p.routerApp.remoteClosed === 1 && p.guest.state === 'FIN-WAIT-2');
    expect(p.router.state).toBe('CLOSE-WAIT');
    expect(p.guest.state).toBe('FIN-WAIT-2');
    expect(p.routerApp.received).toEqual(Uint8Array.of(1, 2, 3));
    const data = pattern(50_000, 9);
    pump(p.router, p.routerApp, data, true);
    expect(p.router.state).toBe('LAST-ACK');
    p.run(() => p.routerApp.closed.length > 0 && p.guestApp.closed.length > 0);
    expectSameBytes(p.guestApp.received, data);
    expect(p.routerApp.closed).toEqual(['normal']);
    expect(p.guestApp.closed).toEqual(['normal']);
    expect(p.guestApp.log).toEqual(['established', 'remoteClosed', 'closed:normal']);
  });

  it('router half-closes, the guest keeps sending; TIME-WAIT then closed', () => {
    const p = new Pair({ delay: 1 * MS });
    p.open();
    p.router.close();
    p.run(() => p.guestApp.remoteClosed === 1 && p.router.state === 'FIN-WAIT-2');
    expect(p.guest.state).toBe('CLOSE-WAIT');
    expect(p.router.write(Uint8Array.of(1))).toBe(0); // nothing after close()
    const data = pattern(50_000, 10);
    pump(p.guest, p.guestApp, data, true);
    p.run(() => p.router.state === 'TIME-WAIT');
    expectSameBytes(p.routerApp.received, data);
    const t = p.clock.now();
    p.run(() => p.routerApp.closed.length > 0);
    expect(p.routerApp.closed).toEqual(['normal']);
    // TIME-WAIT is 2 s of virtual time.
    expect(p.clock.now() - t).toBe(2000 * MS);
  });

  it('simultaneous close: both through CLOSING to TIME-WAIT', () => {
    const p = new Pair({ delay: 5 * MS });
    p.open();
    p.router.close();
    p.guest.close();
    p.run(() => p.router.state === 'CLOSING' && p.guest.state === 'CLOSING', 4 * MS + 5 * MS);
    p.run(() => p.router.state === 'TIME-WAIT' && p.guest.state === 'TIME-WAIT');
    p.run(() => p.routerApp.closed.length > 0 && p.guestApp.closed.length > 0);
    expect(p.routerApp.closed).toEqual(['normal']);
    expect(p.guestApp.closed).toEqual(['normal']);
  });

  it('re-ACKs a retransmitted FIN in TIME-WAIT', () => {
    let dropAcks = false;
    const p = new Pair({ delay: 1 * MS, drop: (from, seg) => dropAcks && from === 'router' && seg.flags === TCP_ACK });
    p.open();
    p.router.close();
    p.run(() => p.router.state === 'FIN-WAIT-2');
    dropAcks = true; // the router's ACK of the guest's FIN is lost once
    p.guest.close();
    p.run(() => p.router.state === 'TIME-WAIT');
    dropAcks = false;
    p.run(() => p.guestApp.closed.length > 0);
    expect(p.guestApp.closed).toEqual(['normal']);
    expect(p.guest.stats.retransmits).toBeGreaterThanOrEqual(1);
  });

  it('close in SYN-RECEIVED sends FIN once the handshake completes', () => {
    const { ep, out, seg, app } = handDriven();
    ep.acceptSyn(synFromGuest({ seq: 5000 }));
    ep.write(Uint8Array.of(7, 7));
    ep.close();
    ep.input(seg(5001, TCP_ACK, [], { window: 1000 }));
    expect(app.established).toBe(1);
    expect(ep.state).toBe('FIN-WAIT-1');
    const last = out[out.length - 1]!;
    expect(last.flags & TCP_FIN).toBeTruthy();
    expect(Array.from(last.payload)).toEqual([7, 7]);
  });
});

describe('TcpEndpoint resets', () => {
  function established() {
    const d = handDriven();
    d.ep.acceptSyn(synFromGuest({ seq: 5000 }));
    d.ep.input(d.seg(5001, TCP_ACK, [], { window: 1000 }));
    d.out.length = 0;
    return d;
  }

  it('closes on a RST at exactly rcv_nxt', () => {
    const { ep, app, seg } = established();
    ep.input(seg(5001, TCP_RST));
    expect(app.closed).toEqual(['reset']);
    expect(ep.state).toBe('CLOSED');
  });

  it('answers an in-window RST elsewhere with a challenge ACK (RFC 5961 §3.2) and ignores one outside', () => {
    const { ep, app, seg, out } = established();
    ep.input(seg(5100, TCP_RST));
    expect(app.closed).toEqual([]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ flags: TCP_ACK, ack: 5001 });
    expect(ep.stats.challengeAcks).toBe(1);
    ep.input(seg(5001 + 10_000_000, TCP_RST));
    expect(out).toHaveLength(1);
    expect(ep.state).toBe('ESTABLISHED');
  });

  it('answers a SYN on an established connection with a challenge ACK (RFC 5961 §4)', () => {
    const { ep, seg, out } = established();
    ep.input(seg(9000, TCP_SYN));
    expect(ep.state).toBe('ESTABLISHED');
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ flags: TCP_ACK, ack: 5001 });
  });

  it('abort() sends RST and reports closed(reset)', () => {
    const { ep, app, out } = established();
    ep.abort();
    expect(out[0]).toMatchObject({ seq: 1001, ack: 5001 });
    expect(out[0]!.flags & TCP_RST).toBeTruthy();
    expect(app.closed).toEqual(['reset']);
    ep.input({ ...out[0]!, srcPort: GUEST.port, dstPort: ROUTER.port });
    expect(app.closed).toEqual(['reset']); // nothing after closed()
  });

  it('ignores segments for other ports and never throws on nonsense', () => {
    const { ep, seg, app } = established();
    ep.input(seg(5001, TCP_ACK, [1], { srcPort: 1 }));
    expect(app.chunks).toHaveLength(0);
    const r = prng(11);
    for (let i = 0; i < 3000; i++) {
      const s = seg((r() * 2 ** 32) >>> 0, (r() * 64) | 0, new Uint8Array((r() * 3000) | 0), {
        ack: (r() < 0.5 ? 1001 + ((r() * 10) | 0) : r() * 2 ** 32) >>> 0,
        window: (r() * 65536) | 0,
      });
      expect(() => ep.input(s)).not.toThrow();
    }
  });
});

describe('TcpEndpoint odd paths', () => {
  it('completes a simultaneous open (RFC 793 figure 8)', () => {
    const p = new Pair({ delay: 5 * MS });
    p.router.connect();
    p.guest.connect();
    expect(p.run(() => p.router.state === 'ESTABLISHED' && p.guest.state === 'ESTABLISHED', 10_000 * MS)).toBe(true);
    p.router.write(Uint8Array.of(1, 2));
    p.guest.write(Uint8Array.of(3));
    p.run(() => p.guestApp.received.length === 2 && p.routerApp.received.length === 1);
    expect(Array.from(p.guestApp.received)).toEqual([1, 2]);
    expect(Array.from(p.routerApp.received)).toEqual([3]);
  });

  it('holds a FIN that arrives before a gap fills and reports remoteClosed after all the data', () => {
    const { ep, app, seg, out } = handDriven();
    ep.acceptSyn(synFromGuest({ seq: 5000 }));
    ep.input(seg(5001, TCP_ACK, [], { window: 1000 }));
    ep.input(seg(5004, TCP_ACK | TCP_FIN, [4, 5, 6]));
    expect(app.remoteClosed).toBe(0);
    expect(ep.state).toBe('ESTABLISHED');
    expect(out[out.length - 1]!.ack).toBe(5001);
    ep.input(seg(5001, TCP_ACK, [1, 2, 3]));
    expect(Array.from(app.received)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(app.log).toEqual(['established', 'remoteClosed']);
    expect(ep.state).toBe('CLOSE-WAIT');
    expect(out[out.length - 1]!.ack).toBe(5008); // the FIN counts one
  });

  it('lets the application write, close or abort from inside its callbacks', () => {
    const p = new Pair({ delay: 1 * MS });
    p.open();
    // The router echoes what it gets, and closes when the guest does.
    p.routerApp.onData = (b) => p.router.write(b);
    p.routerApp.onRemoteClosed = () => p.router.close();
    const data = pattern(20_000, 12);
    p.guest.write(data);
    p.guest.close();
    p.run(() => p.routerApp.closed.length > 0 && p.guestApp.closed.length > 0);
    expectSameBytes(p.guestApp.received, data);
    expect(p.routerApp.closed).toEqual(['normal']);
    expect(p.guestApp.closed).toEqual(['normal']);

    // Abort from inside data(): closed(reset) is the last event, the peer sees the RST.
    const q = new Pair({ delay: 1 * MS });
    q.open();
    q.routerApp.onData = () => q.router.abort();
    q.guest.write(new Uint8Array(3000));
    q.run(() => q.guestApp.closed.length > 0);
    expect(q.routerApp.log[q.routerApp.log.length - 1]).toBe('closed:reset');
    expect(q.routerApp.closed).toEqual(['reset']);
    expect(q.guestApp.closed).toEqual(['reset']);
    expect(q.clock.pending).toBe(0);
  });

  it('ignores a RST in TIME-WAIT (RFC 1337) and still closes when the timer ends', () => {
    const p = new Pair({ delay: 1 * MS });
    p.open();
    p.router.close();
    p.guest.close();
    p.run(() => p.router.state === 'TIME-WAIT');
    p.router.input({ srcPort: GUEST.port, dstPort: ROUTER.port, seq: p.router.tcb.rcv_nxt, ack: 0, flags: TCP_RST, window: 0, payload: new Uint8Array(0) });
    expect(p.router.state).toBe('TIME-WAIT');
    p.run(() => p.routerApp.closed.length > 0);
    expect(p.routerApp.closed).toEqual(['normal']);
  });

  it('a RST in SYN-RECEIVED ends the connection with closed(reset)', () => {
    const { ep, app, seg } = handDriven();
    ep.acceptSyn(synFromGuest({ seq: 5000 }));
    ep.input(seg(5001, TCP_RST));
    expect(app.closed).toEqual(['reset']);
  });

  it('a non-SYN handed to acceptSyn is answered with RST and refused', () => {
    const { ep, app, out } = handDriven();
    ep.acceptSyn(synFromGuest({ flags: TCP_ACK, ack: 777 }));
    expect(out).toEqual([expect.objectContaining({ flags: TCP_RST, seq: 777 })]);
    expect(app.closed).toEqual(['refused']);
  });

  it('wraps sequence numbers past 2^32', () => {
    const p = new Pair({ delay: 1 * MS }, { iss: 0xffffff00 }, { iss: 0xfffffff0 });
    p.open();
    const a = pattern(10_000, 13);
    const b = pattern(10_000, 14);
    p.router.write(a);
    p.guest.write(b);
    p.run(
      () =>
        p.guestApp.received.length === a.length &&
        p.routerApp.received.length === b.length &&
        p.router.tcb.snd_una === p.router.tcb.snd_max,
    );
    expectSameBytes(p.guestApp.received, a);
    expectSameBytes(p.routerApp.received, b);
    expect(p.router.tcb.snd_una).toBe((0xffffff00 + 1 + 10_000) >>> 0);
  });
});

describe('TcpEndpoint keep-alive and TIME-WAIT reuse', () => {
  const keepAlive = { idle: 60_000 * MS, interval: 10_000 * MS, probes: 3 };

  it('probes an idle peer with snd_una - 1 and stays up while it answers', () => {
    const p = new Pair({ delay: 1 * MS }, { keepAlive });
    p.open();
    p.clock.advanceTo(p.clock.now() + 310_000 * MS);
    expect(p.routerApp.closed).toEqual([]);
    const probes = p.wire.filter((w) => w.from === 'router' && w.seg.flags === TCP_ACK && w.seg.seq === ((p.router.tcb.snd_una - 1) >>> 0));
    // One probe per idle period: each is answered, so the idle clock restarts.
    expect(probes.length).toBe(5);
    expect(p.router.stats.keepAliveProbes).toBe(5);
  });

  it('gives up on a peer that vanished with closed(timeout) after the probes', () => {
    let gone = false;
    const p = new Pair({ delay: 1 * MS, drop: (from) => gone && from === 'guest' }, { keepAlive });
    p.open();
    gone = true;
    const lastHeard = Math.max(...p.wire.filter((w) => w.from === 'guest').map((w) => w.at));
    p.run(() => p.routerApp.closed.length > 0);
    expect(p.routerApp.closed).toEqual(['timeout']);
    expect(p.router.stats.keepAliveProbes).toBe(3);
    expect(p.clock.now() - lastHeard).toBe(keepAlive.idle + 3 * keepAlive.interval);
  });

  it('does not probe while data is moving', () => {
    const p = new Pair({ delay: 1 * MS }, { keepAlive: { idle: 50 * MS, interval: 10 * MS, probes: 2 } });
    p.open();
    const data = pattern(300_000, 15);
    pump(p.router, p.routerApp, data, false);
    p.run(() => p.guestApp.received.length === data.length);
    expect(p.routerApp.closed).toEqual([]);
    expectSameBytes(p.guestApp.received, data);
  });

  it('lets a new SYN beyond the old sequence space take over a TIME-WAIT pair', () => {
    const p = new Pair({ delay: 1 * MS });
    p.open();
    p.router.close();
    p.run(() => p.router.state === 'FIN-WAIT-2');
    p.guest.close();
    p.run(() => p.router.state === 'TIME-WAIT');
    const old = p.router.tcb.rcv_nxt;
    const syn = synFromGuest({ seq: (old + 100_000) >>> 0 });
    expect(p.router.yieldToSyn({ ...syn, seq: (old - 5) >>> 0 })).toBe(false);
    expect(p.router.yieldToSyn(syn)).toBe(true);
    expect(p.routerApp.closed).toEqual(['normal']);
    expect(p.clock.pending).toBeLessThanOrEqual(2); // only the guest's own timers remain
  });
});

describe('TcpEndpoint flow control end to end', () => {
  it('a slow reader bounds what is delivered but not consumed to its receive buffer', () => {
    const buffer = 64 * 1024;
    const p = new Pair({ delay: 2 * MS }, {}, { receiveBuffer: buffer });
    p.open();
    let pending = 0;
    let maxPending = 0;
    p.guestApp.onData = (b) => {
      pending += b.length;
      maxPending = Math.max(maxPending, pending);
      p.guest.setReceiveBacklog(pending);
    };
    // The guest's application drains 8 KiB every 10 ms: 800 KB/s, far below the link.
    const drain = (): void => {
      pending -= Math.min(pending, 8192);
      p.guest.setReceiveBacklog(pending);
      p.clock.setTimer(p.clock.now() + 10 * MS, drain);
    };
    p.clock.setTimer(p.clock.now() + 10 * MS, drain);
    const data = pattern(400_000, 16);
    pump(p.router, p.routerApp, data, false);
    p.run(() => p.guestApp.received.length === data.length, 60_000 * MS);
    expectSameBytes(p.guestApp.received, data);
    expect(maxPending).toBeGreaterThan(buffer / 2);
    expect(maxPending).toBeLessThanOrEqual(buffer + (1 << p.guest.tcb.rcv_wscale));
    expect(p.routerApp.closed).toEqual([]);
  });
});

describe('TcpEndpoint over bad links', () => {
  it('delivers identical bytes and closes cleanly under loss, duplication and reordering, for several seeds', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const p = new Pair({ delay: 1 * MS, jitter: 4 * MS, loss: 0.1, duplicate: 0.05, seed }, { sendBuffer: 32 * 1024 }, { receiveBuffer: 32 * 1024 });
      p.open();
      const a = pattern(60_000, seed * 2);
      const b = pattern(45_000, seed * 2 + 1);
      pump(p.router, p.routerApp, a, true);
      pump(p.guest, p.guestApp, b, true);
      const done = p.run(() => p.routerApp.closed.length > 0 && p.guestApp.closed.length > 0);
      expect(done).toBe(true);
      expectSameBytes(p.guestApp.received, a);
      expectSameBytes(p.routerApp.received, b);
      expect(p.lost).toBeGreaterThan(5);
      expect(p.routerApp.closed).toEqual(['normal']);
      expect(p.guestApp.closed).toEqual(['normal']);
      expect(p.clock.pending).toBe(0);
    }
  });
});

describe('TcpEndpoint send buffer', () => {
  it('grows its ring while wrapped and keeps the byte order', () => {
    const p = new Pair({ delay: 5 * MS });
    p.open();
    const data = pattern(600_000, 17);
    let off = 0;
    // 3001 bytes every millisecond: about 30 KB in flight over the 10 ms round trip, so the
    // 16 KiB ring fills while its head moves and has to grow from a wrapped state.
    const tick = (): void => {
      const n = p.router.write(data.subarray(off, Math.min(data.length, off + 3001)));
      off += n;
      if (off < data.length) p.clock.setTimer(p.clock.now() + 1 * MS, tick);
    };
    tick();
    p.run(() => p.guestApp.received.length === data.length && p.router.sendQueued === 0);
    expectSameBytes(p.guestApp.received, data);
    expect(p.router.sendBufferFree).toBe(256 * 1024);
  });
});

describe('TcpEndpoint timer details', () => {
  it("Karn's algorithm: no RTT sample from a retransmitted segment, RTO stays backed off until a fresh one", () => {
    let dropOnce = true;
    const p = new Pair({
      delay: 50 * MS,
      drop: (from, seg) => {
        if (from === 'router' && seg.payload.length > 0 && dropOnce) {
          dropOnce = false;
          return true;
        }
        return false;
      },
    });
    p.open();
    const srtt = p.router.tcb.srtt;
    const rto = p.router.tcb.rto; // 300 ms
    p.router.write(new Uint8Array(100));
    p.run(() => p.router.tcb.snd_una === p.router.tcb.snd_max);
    expect(p.router.stats.timeouts).toBe(1);
    // The ACK answered the retransmission, but it could have been the original's: no sample.
    expect(p.router.tcb.srtt).toBe(srtt);
    expect(p.router.tcb.rto).toBe(2 * rto);
    // The next segment is sent once and timed: RTO is computed afresh (RFC 6298 §5.7 note).
    p.router.write(new Uint8Array(100));
    p.run(() => p.router.tcb.snd_una === p.router.tcb.snd_max);
    expect(p.router.tcb.srtt).not.toBe(srtt);
    expect(p.router.tcb.rto).toBeLessThan(2 * rto);
  });

  it('uses a 3 s RTO once data flows after the SYN had to be retransmitted (RFC 6298 §5.7)', () => {
    let dropSyn = true;
    const p = new Pair({
      delay: 10 * MS,
      drop: (from, seg) => {
        if (from === 'router' && seg.flags === TCP_SYN && dropSyn) {
          dropSyn = false;
          return true;
        }
        return false;
      },
    });
    p.open();
    expect(p.router.stats.timeouts).toBe(1);
    expect(p.router.tcb.rtt_measured).toBe(false);
    expect(p.router.tcb.rto).toBe(3000 * MS);
  });

  it('sends into a window too small for sender SWS avoidance when the persist timer fires', () => {
    const { ep, out, seg, clock } = handDriven();
    ep.acceptSyn(synFromGuest({ seq: 5000, wscale: undefined, window: 60_000 }));
    ep.input(seg(5001, TCP_ACK, [], { window: 100 }));
    ep.write(new Uint8Array(5000));
    // 100 bytes is less than an MSS and less than half the largest window offered: wait.
    expect(out.filter((s) => s.payload.length > 0)).toHaveLength(0);
    clock.advanceTo(clock.now() + ep.tcb.rto); // the persist timer's first interval
    const sent = out.filter((s) => s.payload.length > 0);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.payload.length).toBe(100);
    expect(sent[0]!.seq).toBe(1001);
  });
});
