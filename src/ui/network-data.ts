/**
 * What the network panel shows, kept outside React state: the worker's latest network view,
 * the packet list (the last MAX_LINES packets, summarised as tcpdump's one-line output on
 * arrival: a batch twice a second, never per packet), a rate history per switch port, and
 * the pcap download. The panel reads it on the page's tick (tick.ts), so a busy network
 * never re-renders the page faster than the rest of it.
 */
import { summarizeFrame, type PacketSummary } from '../emulator/net/summary.ts';
import type { NetworkView, PacketBatch } from '../worker/network-protocol.ts';
import type { FromWorker } from '../worker/protocol.ts';

/** Packets the list keeps (a 16 MiB transfer is ~17,000 frames: its DHCP exchange is still there after it). */
export const MAX_LINES = 30_000;
/** Rate samples kept per port (one per view, twice a second: a minute). */
export const RATE_HISTORY = 120;

export interface PacketLine {
  /** Packet number since power-on, from 1 (tcpdump -# style). */
  n: number;
  timeNs: number;
  /** 0: the guest sent it; 1: the guest received it. */
  dir: 0 | 1;
  wire: number;
  summary: PacketSummary;
}

export interface PortRates {
  /** Seconds (page clock) of each sample. */
  t: number[];
  /** Bytes per second into the guest's NIC (the port's "out") and from it. */
  rx: number[];
  tx: number[];
}

class NetworkData {
  view: NetworkView | null = null;
  lines: PacketLine[] = [];
  /** Packets seen in all, and those the worker could not send (its batch was full). */
  total = 0;
  lost = 0;
  /** Bumped on every change; the panel re-renders when it moved. */
  version = 0;
  readonly rates = new Map<string, PortRates>();
  private last: { at: number; bytes: Map<string, { in: number; out: number }> } | null = null;
  private pcapWaiters: ((r: { file: Uint8Array | null; packets: number; reason?: string }) => void)[] = [];

  reset(): void {
    this.view = null;
    this.lines = [];
    this.total = 0;
    this.lost = 0;
    this.rates.clear();
    this.last = null;
    this.version++;
  }

  onMessage(m: Extract<FromWorker, { type: 'network' | 'pcap' }>): void {
    if (m.type === 'pcap') {
      for (const w of this.pcapWaiters.splice(0)) w(m);
      return;
    }
    if (m.packets) this.addPackets(m.packets);
    if (m.view) this.addView(m.view);
    this.view = m.view;
    this.version++;
  }

  private addPackets(b: PacketBatch): void {
    const n = b.meta.length / 4;
    let off = 0;
    const fresh: PacketLine[] = [];
    for (let i = 0; i < n; i++) {
      const kept = b.meta[i * 4];
      const frame = b.bytes.subarray(off, off + kept);
      off += kept;
      const wire = b.meta[i * 4 + 1];
      fresh.push({ n: ++this.total, timeNs: b.meta[i * 4 + 2], dir: b.meta[i * 4 + 3] === 0 ? 0 : 1, wire, summary: summarizeFrame(frame, wire) });
    }
    this.total += b.lost;
    this.lost += b.lost;
    this.lines = this.lines.length + fresh.length > MAX_LINES ? [...this.lines, ...fresh].slice(-MAX_LINES) : this.lines.concat(fresh);
  }

  private addView(v: NetworkView): void {
    const at = performance.now() / 1000;
    const bytes = new Map(v.ports.map((p) => [`${p.lan}/${p.name}`, { in: p.bytesIn, out: p.bytesOut }]));
    if (this.last && at > this.last.at) {
      const dt = at - this.last.at;
      for (const [key, b] of bytes) {
        const prev = this.last.bytes.get(key);
        let r = this.rates.get(key);
        if (!r) this.rates.set(key, (r = { t: [], rx: [], tx: [] }));
        r.t.push(at);
        // The port's "out" is towards its endpoint: for a NIC, what the guest receives.
        r.rx.push(prev ? Math.max(0, (b.out - prev.out) / dt) : 0);
        r.tx.push(prev ? Math.max(0, (b.in - prev.in) / dt) : 0);
        if (r.t.length > RATE_HISTORY) {
          r.t.shift();
          r.rx.shift();
          r.tx.shift();
        }
      }
    }
    this.last = { at, bytes };
  }

  /** Wait for the worker's answer to a `pcap` request. */
  nextPcap(): Promise<{ file: Uint8Array | null; packets: number; reason?: string }> {
    return new Promise((resolve) => this.pcapWaiters.push(resolve));
  }
}

export const networkData = new NetworkData();

/** For the store's message switch. */
export function onNetworkMessage(m: Extract<FromWorker, { type: 'network' | 'pcap' }>): void {
  networkData.onMessage(m);
}
