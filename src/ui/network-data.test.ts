import { describe, expect, it } from 'vitest';
import { networkData, MAX_LINES } from './network-data.ts';
import { arpRequestFrame } from '../emulator/net/packets.ts';
import type { NetworkView, PacketBatch } from '../worker/network-protocol.ts';

const mac = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);

/** A batch as the worker packs it: first bytes of each frame, four numbers per packet. */
function batch(n: number, lost = 0): PacketBatch {
  const frames = Array.from({ length: n }, (_, i) => arpRequestFrame(mac, 0x0a00020f, 0x0a000200 + (i % 250)));
  const bytes = new Uint8Array(frames.reduce((a, f) => a + f.length, 0));
  const meta = new Float64Array(n * 4);
  let off = 0;
  frames.forEach((f, i) => {
    bytes.set(f, off);
    off += f.length;
    meta.set([f.length, f.length, i * 1000, i % 2], i * 4);
  });
  return { bytes, meta, lost };
}

function view(bytesIn: number, bytesOut: number): NetworkView {
  return {
    uplink: { kind: 'router' }, state: 'ready', stateText: '', mac: null, uplinkCounters: {}, router: null, events: [],
    capture: { frames: 0, bytes: 0, dropped: 0, seen: 0 },
    ports: [{ lan: 'user.0', name: 'ne2k', linkUp: true, framesIn: 0, bytesIn, framesOut: 0, bytesOut, dropLinkDown: 0, dropLoss: 0, dropQueueFull: 0, dropMalformed: 0 }],
  };
}

describe('the network panel\'s data', () => {
  it('summarises each batch once, numbers the packets, keeps the newest MAX_LINES and counts what the worker left out', () => {
    networkData.reset();
    const v0 = networkData.version;
    networkData.onMessage({ type: 'network', view: null, packets: batch(3, 2) });
    expect(networkData.version).toBe(v0 + 1);
    expect(networkData.lines.map((l) => [l.n, l.dir, l.summary.text])).toEqual([
      [1, 0, 'ARP, Request who-has 10.0.2.0 tell 10.0.2.15, length 46'],
      [2, 1, 'ARP, Request who-has 10.0.2.1 tell 10.0.2.15, length 46'],
      [3, 0, 'ARP, Request who-has 10.0.2.2 tell 10.0.2.15, length 46'],
    ]);
    expect(networkData.total).toBe(5);
    expect(networkData.lost).toBe(2);
    networkData.onMessage({ type: 'network', view: null, packets: batch(MAX_LINES) });
    expect(networkData.lines).toHaveLength(MAX_LINES);
    expect(networkData.lines[0].n).toBe(6);
    expect(networkData.lines.at(-1)!.n).toBe(MAX_LINES + 5);
    networkData.reset();
    expect(networkData.lines).toHaveLength(0);
  });

  it('turns successive port counters into rates, the NIC\'s "out" as what the guest received', async () => {
    networkData.reset();
    networkData.onMessage({ type: 'network', view: view(0, 0), packets: null });
    await new Promise((r) => setTimeout(r, 50));
    networkData.onMessage({ type: 'network', view: view(1000, 5000), packets: null });
    const r = networkData.rates.get('user.0/ne2k')!;
    expect(r.rx).toHaveLength(1);
    expect(r.rx[0]).toBeGreaterThan(r.tx[0] * 4);
    expect(r.tx[0]).toBeGreaterThan(0);
  });

  it('hands a pcap answer to whoever waits for it', async () => {
    const p = networkData.nextPcap();
    networkData.onMessage({ type: 'pcap', file: new Uint8Array(24), packets: 0 });
    expect((await p).file?.length).toBe(24);
  });
});
