import { describe, expect, it } from 'vitest';
import { createTestBus } from './test-harness.ts';
import { DeviceStats, STAT_FIELDS, TIME_NS, TRAPS } from './stats.ts';

describe('DeviceStats', () => {
  it('lets a reader with only the layout see live counters without copying', () => {
    const t = createTestBus();
    const ctx = t.context('nic');
    ctx.mapPorts(0x300, 8, { read: () => 0, write: () => {} });
    const layout = t.bus.stats.layout();
    // What the page does with the buffer it was handed once.
    const view = new Float64Array(layout.buffer);
    const row = layout.devices.findIndex((d) => d.name === 'nic');
    const col = (f: (typeof STAT_FIELDS)[number]) => row * layout.stride + layout.fields.indexOf(f);
    t.out16(0x300, 1);
    t.in8(0x301);
    expect([view[col('portWrites')], view[col('portReads')], view[col('bytesWritten')], view[col('traps')]]).toEqual([1, 1, 2, 2]);
    expect(layout.shared).toBe(typeof SharedArrayBuffer === 'function');
    const v = t.bus.stats.version;
    ctx.irq(7);
    expect(t.bus.stats.version).toBeGreaterThan(v);
    expect(t.bus.stats.layout().devices[row].irq).toEqual([7]);
    t.bus.stats.clear();
    expect(view[col('portWrites')]).toBe(0);
  });

  it('times every trap at first, then a sample of them whose weights add up to the traps', () => {
    const stats = new DeviceStats();
    const [a, b, slow] = ['a', 'b', 'slow'].map((name) => stats.add({ name }));
    const time = (device: number) => stats.counters[device * stats.layout().stride + TIME_NS];
    /** n traps into `device`, each handler taking `ns`: how many were timed. */
    const run = (device: number, n: number, ns: number) => {
      let timed = 0;
      for (let i = 0; i < n; i++) {
        const w = stats.trap(device);
        if (w > 0) {
          timed++;
          stats.addTime(device, ns, w);
        }
      }
      return timed;
    };
    // A device's first traps are all timed, each for itself.
    expect(run(a, 256, 100)).toBe(256);
    expect(stats.counters[a * stats.layout().stride + TRAPS]).toBe(256);
    expect(time(a)).toBe(25_600);
    // Then a small share is, and the estimate is near the truth.
    const timed = run(a, 100_000, 100);
    expect(timed).toBeGreaterThan(5_000);
    expect(timed).toBeLessThan(7_500);
    expect(Math.abs(time(a) - 100_256 * 100)).toBeLessThan(0.05 * 100_256 * 100);
    // Two devices accessed in turn (a period the sampling could alias with) both get fair estimates.
    run(b, 256, 100);
    const before = [time(a), time(b)];
    for (let i = 0; i < 100_000; i++) run(i & 1 ? b : a, 1, 100);
    for (const [i, d] of [a, b].entries()) expect(Math.abs(time(d) - before[i] - 50_000 * 100)).toBeLessThan(0.05 * 50_000 * 100);
    // A device whose handlers are slow is timed in full.
    run(slow, 256, 3_000);
    expect(run(slow, 1_000, 3_000)).toBe(1_000);
    // A host pause inside a sampled trap counts once, not once per trap it stands for.
    const t = time(a);
    stats.addTime(a, 10e6, 16);
    expect(time(a) - t).toBe(10e6 + 15 * 50_000);
  });

  it('keeps a log2 histogram of round trips with its maximum, from which the median and 99th percentile are read', () => {
    const stats = new DeviceStats();
    const a = stats.add({ name: 'com1' });
    const b = stats.add({ name: 'ne2k' });
    expect(stats.rttPercentile(a, 0.5)).toBe(0);
    // 98 answers under 1 µs, one of 3 µs, one of 20 ms.
    for (let i = 0; i < 98; i++) stats.roundTrip(a, 600);
    stats.roundTrip(a, 3_000);
    stats.roundTrip(a, 20e6);
    const s = stats.snapshot().devices[a];
    expect([s.rtt0, s.rtt2, s.rtt15, s.rttMaxNs]).toEqual([98, 1, 1, 20e6]);
    expect(stats.rttPercentile(a, 0.5)).toBe(1_000);
    expect(stats.rttPercentile(a, 0.99)).toBe(4_000);
    expect(stats.rttPercentile(a, 1)).toBe(20e6);
    expect(stats.snapshot().devices[b].rtt0).toBe(0);
    // The new columns come after the old ones, whose positions do not move.
    expect(STAT_FIELDS.indexOf('dropLink')).toBe(22);
    expect(STAT_FIELDS.slice(23, 28)).toEqual(['directAccesses', 'bufferedWrites', 'modelTimeNs', 'pathSwitches', 'rttMaxNs']);
    // The path of each row is not a counter: clearing the counters keeps it.
    stats.paths[a] = 2;
    stats.clear();
    expect(stats.paths[a]).toBe(2);
  });

  it('counts direct accesses apart from traps and times them on the same sample', () => {
    const stats = new DeviceStats();
    const a = stats.add({ name: 'com1' });
    let timed = 0;
    for (let i = 0; i < 10_000; i++) timed += stats.direct(a) > 0 ? 1 : 0;
    const s = stats.snapshot().devices[a];
    expect([s.directAccesses, s.traps]).toEqual([10_000, 0]);
    // The first TIMED_IN_FULL in full, then about one in SAMPLE_WEIGHT.
    expect(timed).toBeGreaterThan(256 + 400);
    expect(timed).toBeLessThan(256 + 800);
  });
});
