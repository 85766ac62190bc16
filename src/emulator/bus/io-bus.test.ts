import { describe, expect, it } from 'vitest';
import { IoBus } from './io-bus.ts';
import { DeviceStats } from './stats.ts';
import type { AccessSize } from './device.ts';

describe('IoBus', () => {
  it('dispatches by port, splits straddling accesses and counts per device', () => {
    const stats = new DeviceStats();
    const a = stats.add({ name: 'a' });
    const b = stats.add({ name: 'b' });
    const bus = new IoBus(stats);
    bus.timing = false;
    const regs = new Uint8Array(4);
    const block = {
      read: (off: number, size: AccessSize) => (size === 1 ? regs[off] : size === 2 ? regs[off] | (regs[off + 1] << 8) : new DataView(regs.buffer).getInt32(off, true)),
      write: (off: number, size: AccessSize, v: number) => { for (let i = 0; i < size; i++) regs[off + i] = v >>> (8 * i); },
    };
    bus.map(a, 0x100, 4, block);
    bus.map(b, 0x104, 1, { read: () => 0x5a, write: () => {} });
    bus.out32(0x100, 0x04030201);
    expect(bus.in16(0x102)).toBe(0x0403);
    expect(bus.in8(0x200)).toBe(0xff); // unclaimed
    expect(bus.in16(0x103)).toBe(0x5a04); // straddles two devices
    expect(stats.get(a, 'portWrites')).toBe(1);
    expect(stats.get(a, 'bytesWritten')).toBe(4);
    expect(stats.get(a, 'portReads')).toBe(2);
    expect(stats.get(b, 'portReads')).toBe(1);
    expect(() => bus.map(b, 0x102, 1, block)).toThrow(/claimed twice/);
  });

  it('moves and unmaps a mapping (a BAR being reprogrammed)', () => {
    const stats = new DeviceStats();
    const d = stats.add({ name: 'nic' });
    const bus = new IoBus(stats);
    const m = bus.map(d, 0xc000, 0x20, { read: () => 7, write: () => {} });
    m.move(0xc100);
    expect(bus.in8(0xc000)).toBe(0xff);
    expect(bus.in8(0xc11f)).toBe(7);
    m.unmap();
    expect(bus.claimed(0xc100)).toBe(false);
    expect(stats.snapshot().devices[0].portReads).toBe(1);
  });
});
