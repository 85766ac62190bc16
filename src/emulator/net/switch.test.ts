import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../machine/clock.ts';
import { EthernetSwitch, type SwitchPort } from './switch.ts';
import { PcapWriter, readPcap, LINKTYPE_ETHERNET } from './pcap.ts';
import { encodeStreamFrame, StreamFrameDecoder } from './stream-framing.ts';

function frame(dst: number, src: number, size = 60, fill = 0): Uint8Array {
  const f = new Uint8Array(size).fill(fill);
  f.set([0x52, 0x54, 0, 0, 0, dst], 0);
  f.set([0x52, 0x54, 0, 0, 0, src], 6);
  f[12] = 0x08;
  return f;
}

/** A switch with `n` stations that record what reaches them. */
function lan(n: number) {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch(clock);
  const got: Uint8Array[][] = [];
  const ports: SwitchPort[] = [];
  for (let i = 0; i < n; i++) {
    got.push([]);
    ports.push(sw.addPort(`p${i}`, { receive: (f) => got[i].push(f) }));
  }
  const run = (ns = 1e9) => clock.advanceTo(clock.now() + ns);
  return { clock, sw, got, ports, run };
}

describe('EthernetSwitch', () => {
  it('floods an unknown destination, then forwards to the learned port only', () => {
    const { got, ports, run } = lan(3);
    ports[0].send(frame(2, 1));
    run();
    expect(got.map((g) => g.length)).toEqual([0, 1, 1]);
    // Station 2 answers from port 2: now 1 is known on port 0 and 2 on port 2.
    ports[2].send(frame(1, 2));
    run();
    expect(got.map((g) => g.length)).toEqual([1, 1, 1]);
    ports[0].send(frame(2, 1));
    run();
    expect(got.map((g) => g.length)).toEqual([1, 1, 2]);
  });

  it('floods broadcast and never learns a group source address', () => {
    const { sw, got, ports, run } = lan(3);
    const b = frame(0, 1);
    b.fill(0xff, 0, 6);
    ports[1].send(b);
    run();
    expect(got.map((g) => g.length)).toEqual([1, 0, 1]);
    const m = frame(5, 0);
    m[6] = 0x01; // multicast source: invalid, not learned
    ports[0].send(m);
    run();
    expect(sw.addresses().map((a) => a.mac)).not.toContain('01:54:00:00:00:00');
  });

  it('never delivers inside the send call (no re-entry) and keeps order', () => {
    const { got, ports, run } = lan(2);
    for (let i = 0; i < 10; i++) ports[0].send(frame(9, 1, 60, i));
    expect(got[1].length).toBe(0);
    run(0);
    expect(got[1].map((f) => f[59])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('counts frames and bytes each way and drops by reason', () => {
    const { got, ports, run } = lan(2);
    ports[0].send(frame(9, 1, 100));
    ports[0].send(new Uint8Array(5)); // shorter than a header
    ports[1].setLink(false);
    run();
    ports[1].send(frame(1, 2));
    expect(got[1].length).toBe(0);
    expect(ports[0].counters).toMatchObject({ framesIn: 1, bytesIn: 100, dropMalformed: 1 });
    expect(ports[1].counters.dropLinkDown).toBe(2);
    ports[1].setLink(true);
    ports[0].send(frame(9, 1, 100));
    run();
    expect(ports[1].counters).toMatchObject({ framesOut: 1, bytesOut: 100 });
  });

  it('shapes a link: delay and rate on virtual time', () => {
    const { clock, got, ports } = lan(2);
    ports[1].setShape({ delayNs: 1_000_000, bytesPerSecond: 1_000_000 });
    ports[0].send(frame(9, 1, 1000)); // 1 ms to serialise on port 1's link, plus 1 ms
    ports[0].send(frame(9, 1, 1000));
    clock.advanceTo(1_999_999);
    expect(got[1].length).toBe(0);
    clock.advanceTo(2_000_000);
    expect(got[1].length).toBe(1);
    clock.advanceTo(3_000_000);
    expect(got[1].length).toBe(2);
  });

  it('loses the same frames for the same seed, about the rate asked', () => {
    const losses = (seed: number) => {
      const { got, ports, run } = lan(2);
      ports[1].setShape({ loss: 0.05, seed });
      for (let i = 0; i < 4000; i++) {
        ports[0].send(frame(9, 1, 60, i & 0xff));
        if (i % 500 === 499) run();
      }
      run();
      return { n: got[1].length, dropped: ports[1].counters.dropLoss, first: got[1].slice(0, 50).map((f) => f[59]).join() };
    };
    const a = losses(7);
    const b = losses(7);
    expect(a).toEqual(b);
    expect(a.n + a.dropped).toBe(4000);
    expect(a.dropped).toBeGreaterThan(120);
    expect(a.dropped).toBeLessThan(280);
  });

  it('drops what waits when a port queue overflows, counted', () => {
    const { got, ports, run } = lan(2);
    ports[1].setShape({ bytesPerSecond: 1000 });
    // In batches the sender's own link drains; port 1's slow link fills up.
    for (let i = 0; i < 1100; i++) {
      ports[0].send(frame(9, 1));
      if (i % 100 === 99) run(0);
    }
    run(100e9);
    expect(ports[0].counters.dropQueueFull).toBe(0);
    expect(got[1].length + ports[1].counters.dropQueueFull).toBe(1100);
    expect(ports[1].counters.dropQueueFull).toBeGreaterThan(0);
  });
});

describe('pcap', () => {
  it('writes classic pcap records that read back with their times', () => {
    const chunks: Uint8Array[] = [];
    const w = new PcapWriter((c) => chunks.push(c));
    w.write(frame(1, 2, 60, 7), 1_500_000_000);
    w.write(frame(2, 1, 70000), 2_000_001_000);
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      all.set(c, o);
      o += c.length;
    }
    const r = readPcap(all);
    expect(r.linkType).toBe(LINKTYPE_ETHERNET);
    expect(r.packets.length).toBe(2);
    expect(r.packets[0].timeNs).toBe(1_500_000_000);
    expect(r.packets[0].frame[59]).toBe(7);
    expect(r.packets[1].timeNs).toBe(2_000_001_000);
    expect(r.packets[1].length).toBe(70000);
    expect(r.packets[1].frame.length).toBe(65535);
  });
});

describe('QEMU socket stream framing', () => {
  it('reassembles frames split anywhere, including inside the length', () => {
    const frames = [frame(1, 2, 60, 1), frame(2, 1, 1514, 2), frame(3, 1, 100, 3)];
    const stream = new Uint8Array(frames.reduce((n, f) => n + 4 + f.length, 0));
    let o = 0;
    for (const f of frames) {
      stream.set(encodeStreamFrame(f), o);
      o += 4 + f.length;
    }
    for (const step of [1, 2, 3, 7, 500, stream.length]) {
      const d = new StreamFrameDecoder();
      const got: Uint8Array[] = [];
      for (let i = 0; i < stream.length; i += step) d.push(stream.subarray(i, i + step), (f) => got.push(f));
      expect(got).toEqual(frames);
      expect(d.pendingBytes).toBe(0);
    }
  });

  it('skips short and oversized frames and stays in step; refuses an impossible length', () => {
    const d = new StreamFrameDecoder();
    const got: Uint8Array[] = [];
    const short = encodeStreamFrame(new Uint8Array(3));
    const big = encodeStreamFrame(new Uint8Array(20000));
    const good = encodeStreamFrame(frame(1, 2));
    for (const c of [short, big, good]) d.push(c, (f) => got.push(f));
    expect(got.length).toBe(1);
    expect(d.counters).toMatchObject({ frames: 1, dropShort: 1, dropOversized: 1 });
    d.push(Uint8Array.of(0x7f, 0, 0, 0), () => {});
    expect(d.corrupt).toMatch(/not QEMU's socket format/);
  });

  it('reports a truncated stream', () => {
    const d = new StreamFrameDecoder();
    d.push(encodeStreamFrame(frame(1, 2)).subarray(0, 30), () => {});
    expect(d.pendingBytes).toBe(26);
    const e = new StreamFrameDecoder();
    e.push(Uint8Array.of(0, 0), () => {});
    expect(e.pendingBytes).toBe(2);
  });
});
