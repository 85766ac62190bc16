import { describe, expect, it } from 'vitest';
import { createTestBus } from './test-harness.ts';
import { STAT_FIELDS } from './stats.ts';

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
});
