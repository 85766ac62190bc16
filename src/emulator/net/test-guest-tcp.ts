/**
 * For tests of the router and its upstreams: a guest at 10.0.2.15 with a real TCP (tcp.ts's
 * TcpEndpoint), listening ports and hand-made segments, and a DNS and UDP client, speaking
 * Ethernet frames to a real UserNetwork (tcp-nat's tests give it one on a TestHost; the
 * upstreams' tests one whose HostNetwork reaches real servers on loopback: a node:http
 * server through fetch, a Wisp server). Frames cross in queues, never inside the call that
 * sent them, as the switch delivers them. `run()` lets virtual time pass alone; `until()`
 * runs it alongside real time, advancing the clock a millisecond per turn and yielding to
 * Node's event loop so sockets progress.
 */
import { VirtualClock } from '../machine/clock.ts';
import { ARP_REPLY, ARP_REQUEST, encodeArp } from './arp.ts';
import { defaultMac, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from './ethernet.ts';
import type { HostNetwork } from './host.ts';
import { ipFromString, IPPROTO_TCP, IPPROTO_UDP, ipToString } from './ipv4.ts';
import { decodeFrame, ethernetFrame, ipv4Frame, udpFrame } from './packets.ts';
import { encodeTcpSegment, parseTcpSegment, TCP_SYN, TcpEndpoint, type TcpCloseReason, type TcpOptions, type TcpSegment } from './tcp.ts';
import { UserNetwork, type UserNetOptions } from './user-net.ts';
import { xorshiftBytes } from '../testing/xorshift.ts';

export const GUEST_IP = ipFromString('10.0.2.15')!;
export const ROUTER_IP = ipFromString('10.0.2.2')!;
export const DNS_IP = ipFromString('10.0.2.3')!;
const MS = 1_000_000;

export interface GuestTcpConn {
  ep: TcpEndpoint;
  received: Uint8Array[];
  receivedBytes: number;
  established: boolean;
  remoteClosed: boolean;
  closed: TcpCloseReason | null;
  /** Queue bytes; written into the endpoint as its buffer allows. */
  send(data: Uint8Array): void;
  /** All received so far, as one array. */
  bytes(): Uint8Array;
  text(): string;
}

export class GuestTcpStack {
  readonly mac = defaultMac(0);
  readonly clock: VirtualClock;
  readonly net: UserNetwork;
  /** The guest's connections by `localPort/remoteIp:remotePort`. */
  readonly conns = new Map<string, GuestTcpConn & { outbox: Uint8Array[] }>();
  /** TCP segments from the router that no guest connection took. */
  readonly stray: { seg: TcpSegment; src: number }[] = [];
  /** Guest ports with a listening server: a SYN to one is accepted. */
  readonly listening = new Set<number>();
  /** Whether the guest answers the router's ARP requests. */
  answerArp = true;
  private toRouter: Uint8Array[] = [];
  private fromRouter: Uint8Array[] = [];
  private nextPort = 40000;
  private dnsId = 1;
  /** UDP datagrams the guest received: source, ports, payload. */
  readonly udp: { src: number; srcPort: number; dstPort: number; payload: Uint8Array }[] = [];

  /**
   * A guest on a new router whose upstream is `network` (unrestricted unless `options` say
   * otherwise), or on `network` itself when it is a router already (then `clock` must be its clock).
   */
  constructor(network: HostNetwork | UserNetwork, options: UserNetOptions = {}, clock = new VirtualClock()) {
    this.clock = clock;
    this.net = network instanceof UserNetwork ? network : new UserNetwork(this.clock, network, { restrict: false, ...options });
    this.net.transmit = (f) => this.fromRouter.push(f);
  }

  /** Open a connection from the next guest port; `options` go to its TcpEndpoint (buffer sizes, iss). */
  connect(dstIp: number, dstPort: number, options: TcpOptions = {}): GuestTcpConn {
    const c = this.makeConn(this.nextPort++, dstIp, dstPort, options);
    c.ep.connect();
    return c;
  }

  private makeConn(localPort: number, dstIp: number, dstPort: number, options: TcpOptions = {}): GuestTcpConn & { outbox: Uint8Array[] } {
    const outbox: Uint8Array[] = [];
    const c = {
      ep: null as unknown as TcpEndpoint, received: [] as Uint8Array[], receivedBytes: 0, established: false, remoteClosed: false,
      closed: null as TcpCloseReason | null, outbox,
      send: (data: Uint8Array) => {
        outbox.push(data);
        this.flush(c);
      },
      bytes: () => concat(c.received),
      text: () => new TextDecoder().decode(concat(c.received)),
    };
    c.ep = new TcpEndpoint(this.clock, { ip: GUEST_IP, port: localPort }, { ip: dstIp, port: dstPort }, {
      output: (seg) => this.toRouter.push(ipv4Frame(this.net.mac, this.mac, { src: GUEST_IP, dst: dstIp, protocol: IPPROTO_TCP, payload: encodeTcpSegment(seg, GUEST_IP, dstIp) })),
      established: () => {
        c.established = true;
        this.flush(c);
      },
      data: (b) => {
        c.received.push(b.slice());
        c.receivedBytes += b.length;
      },
      remoteClosed: () => (c.remoteClosed = true),
      writable: () => this.flush(c),
      closed: (r) => (c.closed = r),
    }, { iss: 1000 + localPort, ...options });
    this.conns.set(`${localPort}/${dstIp}:${dstPort}`, c);
    return c;
  }

  /** Send a hand-made segment. */
  sendSegment(dstIp: number, seg: TcpSegment): void {
    this.toRouter.push(ipv4Frame(this.net.mac, this.mac, { src: GUEST_IP, dst: dstIp, protocol: IPPROTO_TCP, payload: encodeTcpSegment(seg, GUEST_IP, dstIp) }));
  }

  private flush(c: GuestTcpConn & { outbox: Uint8Array[] }): void {
    if (!c.established || c.closed) return;
    while (c.outbox.length > 0) {
      const n = c.ep.write(c.outbox[0]);
      if (n < c.outbox[0].length) {
        c.outbox[0] = c.outbox[0].subarray(n);
        return;
      }
      c.outbox.shift();
    }
  }

  sendUdp(dstIp: number, srcPort: number, dstPort: number, payload: Uint8Array): void {
    this.toRouter.push(udpFrame({ srcMac: this.mac, dstMac: this.net.mac, srcIp: GUEST_IP, dstIp, srcPort, dstPort, payload }));
  }

  /** Ask the router's DNS for a name's A record; resolves the addresses (empty for an error answer). */
  async resolve(name: string, timeoutMs = 5000): Promise<string[]> {
    const id = this.dnsId++;
    const q = new Uint8Array(12 + name.length + 2 + 4);
    q[0] = id >> 8;
    q[1] = id & 0xff;
    q[2] = 0x01; // RD
    q[5] = 1; // QDCOUNT
    let o = 12;
    for (const label of name.split('.')) {
      q[o++] = label.length;
      for (let i = 0; i < label.length; i++) q[o++] = label.charCodeAt(i);
    }
    q[o++] = 0;
    q[o + 1] = 1; // A
    q[o + 3] = 1; // IN
    const port = 5300 + id;
    this.sendUdp(DNS_IP, port, 53, q);
    const answer = await this.until(() => this.udp.find((u) => u.dstPort === port && u.srcPort === 53), timeoutMs, `a DNS answer for ${name}`);
    const r = answer.payload;
    const ancount = (r[6] << 8) | r[7];
    // Skip the question, then read A records (each 16 bytes with a name pointer).
    let p = 12;
    while (r[p] !== 0) p += r[p] + 1;
    p += 5;
    const out: string[] = [];
    for (let i = 0; i < ancount; i++, p += 16) out.push(ipToString(((r[p + 12] << 24) | (r[p + 13] << 16) | (r[p + 14] << 8) | r[p + 15]) >>> 0));
    return out;
  }

  /** Move frames both ways until none are left. */
  pump(): void {
    for (let rounds = 0; rounds < 1_000_000; rounds++) {
      if (this.toRouter.length) {
        this.net.receive(this.toRouter.shift()!);
        continue;
      }
      const f = this.fromRouter.shift();
      if (!f) return;
      const d = decodeFrame(f);
      if (!d) continue;
      if (d.etherType === ETHERTYPE_ARP && d.arp?.oper === ARP_REQUEST && d.arp.tpa === GUEST_IP && this.answerArp) {
        this.toRouter.push(ethernetFrame(this.net.mac, this.mac, ETHERTYPE_ARP, encodeArp({ oper: ARP_REPLY, sha: this.mac, spa: GUEST_IP, tha: d.arp.sha, tpa: d.arp.spa })));
        continue;
      }
      if (d.etherType !== ETHERTYPE_IPV4 || !d.ip) continue;
      if (d.ip.protocol === IPPROTO_UDP && d.udp) {
        this.udp.push({ src: d.ip.src, srcPort: d.udp.srcPort, dstPort: d.udp.dstPort, payload: d.udp.payload.slice() });
        continue;
      }
      if (d.ip.protocol !== IPPROTO_TCP) continue;
      const seg = parseTcpSegment(d.ip.payload, d.ip.src, d.ip.dst);
      if (!seg) throw new Error('the router sent a TCP segment with a bad checksum');
      const c = this.conns.get(`${seg.dstPort}/${d.ip.src}:${seg.srcPort}`);
      if (c && c.closed === null) c.ep.input(seg);
      else if (!c && this.listening.has(seg.dstPort) && seg.flags === TCP_SYN) this.makeConn(seg.dstPort, d.ip.src, seg.srcPort).ep.acceptSyn(seg);
      else this.stray.push({ seg, src: d.ip.src });
    }
    throw new Error('frames kept flowing');
  }

  /** Pump and let virtual time pass in steps of `stepNs` (delayed ACKs, retransmissions, TIME-WAIT). */
  run(ns: number, stepNs = MS): void {
    const end = this.clock.now() + ns;
    this.pump();
    while (this.clock.now() < end) {
      this.clock.advanceTo(Math.min(end, this.clock.now() + stepNs));
      this.pump();
    }
  }

  /**
   * Pump frames, advance virtual time by `stepNs` a turn and let Node's event loop run,
   * until `done()` returns something truthy; rejects after `timeoutMs` of real time, naming `what`.
   */
  async until<T>(done: () => T | undefined | null | false, timeoutMs: number, what: string, stepNs = MS): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.pump();
      const r = done();
      if (r) return r;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      this.clock.advanceTo(this.clock.now() + stepNs);
      this.pump();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  close(): void {
    this.net.close();
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Deterministic bytes that do not compress. */
export function testBytes(n: number, seed: number): Uint8Array {
  return xorshiftBytes(n, seed);
}
