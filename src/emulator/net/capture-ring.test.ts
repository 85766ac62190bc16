import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaptureRing } from './capture-ring.ts';
import { LINKTYPE_ETHERNET, readPcap } from './pcap.ts';
import { VirtualClock } from '../machine/clock.ts';
import { EthernetSwitch } from './switch.ts';
import { arpRequestFrame, udpFrame } from './packets.ts';

const mac = (n: number) => Uint8Array.of(0x52, 0x54, 0, 0, 0, n);
const frame = (i: number, size = 100) => udpFrame({
  srcMac: mac(1), dstMac: mac(2), srcIp: 0x0a00020f, dstIp: 0x0a000202, srcPort: 1000 + i, dstPort: 7, payload: new Uint8Array(size),
});

describe('CaptureRing', () => {
  it('keeps the newest frames within its frame and byte bounds, counting what fell out', () => {
    const byCount = new CaptureRing({ maxFrames: 3 });
    for (let i = 0; i < 10; i++) byCount.add(frame(i), i * 1000);
    expect(byCount.length).toBe(3);
    expect(byCount.dropped).toBe(7);
    const ports = readPcap(byCount.toPcap()).packets.map((p) => (p.frame[34] << 8) | p.frame[35]);
    expect(ports).toEqual([1007, 1008, 1009]);

    const byBytes = new CaptureRing({ maxBytes: 1000 });
    for (let i = 0; i < 10; i++) byBytes.add(frame(i, 300), i); // 342-byte frames: two fit
    expect(byBytes.length).toBe(2);
    expect(byBytes.bytes).toBe(684);
    expect(byBytes.seen).toBe(10);
    byBytes.clear();
    expect(byBytes.length).toBe(0);
    expect(readPcap(byBytes.toPcap()).packets).toEqual([]);
  });

  it('captures a port both ways as a pcap file with times from the virtual clock', () => {
    const clock = new VirtualClock();
    const sw = new EthernetSwitch(clock);
    const a = sw.addPort('a', { receive: () => {} });
    const b = sw.addPort('b', { receive: () => {} });
    const ring = new CaptureRing();
    a.addTap(ring.tap);
    a.send(arpRequestFrame(mac(1), 0x0a00020f, 0x0a000202));
    clock.advanceTo(2_000_000);
    b.send(frame(1));
    clock.advanceTo(3_000_000);
    for (let i = 0; i < 5000; i++) a.send(frame(i)); // more than one compaction's worth
    clock.advanceTo(10_000_000);
    const file = readPcap(ring.toPcap(1_000_000e9));
    expect(file.linkType).toBe(LINKTYPE_ETHERNET);
    expect(file.packets).toHaveLength(5002);
    expect(file.packets[0].timeNs).toBe(1_000_000e9);
    expect(file.packets[1].timeNs).toBe(1_000_000e9 + 2_000_000);
  });

  it.skipIf(!hasTcpdump())('writes a file tcpdump -r reads with no complaint', () => {
    const ring = new CaptureRing({ maxFrames: 50 });
    for (let i = 0; i < 120; i++) ring.add(frame(i, i * 10), i * 1e6);
    const dir = mkdtempSync(join(tmpdir(), 'ring-'));
    try {
      const f = join(dir, 'c.pcap');
      writeFileSync(f, ring.toPcap());
      const out = execFileSync('tcpdump', ['-n', '-r', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const lines = out.trim().split('\n');
      expect(lines).toHaveLength(50);
      expect(out).not.toMatch(/truncated|malformed|\[\|/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function hasTcpdump(): boolean {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
