/**
 * ARP for IPv4 over Ethernet (RFC 826), and the router's neighbour table.
 *
 * The table learns a guest's MAC from its ARP packets and from the source of its IP
 * frames (slirp does the same), and holds frames addressed to a guest it has not heard
 * from until its ARP reply arrives: a hostfwd connection to 10.0.2.15 before the guest
 * ever spoke. Requests are repeated once a second and the held frames dropped (and
 * counted) after ARP_TIMEOUT_NS, as a host's neighbour code gives up (RFC 1122 §2.3.2.2:
 * "SHOULD save at least one packet"; here a few, bounded).
 */
import type { Clock, TimerId } from '../bus/device.ts';
import { macToString } from './ethernet.ts';
import { readU16, readU32, writeU16, writeU32 } from './ipv4.ts';

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
/** htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4: 28 bytes. */
export const ARP_PACKET = 28;

export interface ArpPacket {
  /** `oper`: 1 request, 2 reply. */
  oper: number;
  sha: Uint8Array;
  spa: number;
  tha: Uint8Array;
  tpa: number;
}

/** Parse an ARP packet (the Ethernet payload); null unless it is Ethernet/IPv4 ARP. */
export function parseArp(b: Uint8Array): ArpPacket | null {
  if (b.length < ARP_PACKET) return null;
  if (readU16(b, 0) !== 1 || readU16(b, 2) !== 0x0800 || b[4] !== 6 || b[5] !== 4) return null;
  return {
    oper: readU16(b, 6),
    sha: b.slice(8, 14),
    spa: readU32(b, 14),
    tha: b.slice(18, 24),
    tpa: readU32(b, 24),
  };
}

export function encodeArp(p: ArpPacket): Uint8Array {
  const b = new Uint8Array(ARP_PACKET);
  writeU16(b, 0, 1);
  writeU16(b, 2, 0x0800);
  b[4] = 6;
  b[5] = 4;
  writeU16(b, 6, p.oper);
  b.set(p.sha.subarray(0, 6), 8);
  writeU32(b, 14, p.spa);
  b.set(p.tha.subarray(0, 6), 18);
  writeU32(b, 24, p.tpa);
  return b;
}

export const ARP_RETRY_NS = 1_000_000_000;
export const ARP_TIMEOUT_NS = 3_000_000_000;
/** Frames held per unresolved address; more are dropped (counted) rather than queued without end. */
export const ARP_QUEUE_LIMIT = 64;

interface Pending {
  /** IP payloads (whole datagrams) waiting for the MAC, each built into a frame once it is known. */
  queue: Uint8Array[];
  deadline: number;
  timer: TimerId;
}

/**
 * The neighbour table: guest IPv4 -> MAC, and the datagrams waiting for an answer.
 * `request` sends an ARP request for an address; `deliver` sends a datagram once its
 * MAC is known; `dropped` counts what timed out or overflowed.
 */
export class ArpTable {
  private readonly entries = new Map<number, Uint8Array>();
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly clock: Clock,
    private readonly request: (ip: number) => void,
    private readonly deliver: (mac: Uint8Array, datagram: Uint8Array) => void,
    private readonly dropped: (reason: 'arp-timeout' | 'arp-queue-full', count: number) => void,
  ) {}

  lookup(ip: number): Uint8Array | undefined {
    return this.entries.get(ip);
  }

  /** Record (or refresh) a neighbour and flush what waited for it. */
  learn(ip: number, mac: Uint8Array): void {
    if (ip === 0 || (mac[0] & 1) !== 0) return; // 0.0.0.0 (DHCP clients, probes) and group MACs name nobody
    const known = this.entries.get(ip);
    if (!known || !sameMac(known, mac)) this.entries.set(ip, mac.slice(0, 6));
    const p = this.pending.get(ip);
    if (p) {
      this.pending.delete(ip);
      this.clock.cancelTimer(p.timer);
      const m = this.entries.get(ip)!;
      for (const d of p.queue) this.deliver(m, d);
    }
  }

  forget(ip: number): void {
    this.entries.delete(ip);
  }

  /** Send `datagram` to `ip`: now if its MAC is known, otherwise after an ARP exchange. */
  send(ip: number, datagram: Uint8Array): void {
    const mac = this.entries.get(ip);
    if (mac) {
      this.deliver(mac, datagram);
      return;
    }
    let p = this.pending.get(ip);
    if (!p) {
      const deadline = this.clock.now() + ARP_TIMEOUT_NS;
      p = { queue: [], deadline, timer: 0 };
      this.pending.set(ip, p);
      this.request(ip);
      this.arm(ip, p);
    }
    if (p.queue.length >= ARP_QUEUE_LIMIT) {
      this.dropped('arp-queue-full', 1);
      return;
    }
    p.queue.push(datagram);
  }

  private arm(ip: number, p: Pending): void {
    const at = Math.min(this.clock.now() + ARP_RETRY_NS, p.deadline);
    p.timer = this.clock.setTimer(at, () => {
      if (this.pending.get(ip) !== p) return;
      if (this.clock.now() >= p.deadline) {
        this.pending.delete(ip);
        this.dropped('arp-timeout', p.queue.length);
        return;
      }
      this.request(ip);
      this.arm(ip, p);
    });
  }

  /** Drop every held frame and timer (the router is closing). */
  clear(): void {
    for (const p of this.pending.values()) this.clock.cancelTimer(p.timer);
    this.pending.clear();
  }

  describe(): { ip: number; mac: string }[] {
    return [...this.entries].map(([ip, mac]) => ({ ip, mac: macToString(mac) }));
  }

  get waiting(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.queue.length;
    return n;
  }
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}
