import { describe, expect, it } from 'vitest';
import { PhysicalMemory, PAM_OFF, PAM_READ, PAM_RW } from './physical-memory.ts';
import { DeviceStats } from '../bus/stats.ts';
import { PAGE_DIRECT_READ, PAGE_DIRECT_WRITE } from './physical-bus.ts';
import type { AccessSize } from '../bus/device.ts';

function bios(): Uint8Array {
  // 128 KiB image whose every byte tells its offset's page, and a reset vector marker at the end.
  const b = new Uint8Array(128 * 1024);
  for (let i = 0; i < b.length; i++) b[i] = (i >>> 12) & 0xff;
  b[b.length - 16] = 0xea; // JMP FAR at F000:FFF0
  return b;
}

describe('PhysicalMemory', () => {
  it('maps the BIOS at the top of 4 GiB with its last 128 KiB shadowable below 1 MiB (PAM)', () => {
    const stats = new DeviceStats();
    const m = new PhysicalMemory(32 << 20, stats);
    m.setBios(bios());
    expect(m.read8(0xfffffff0)).toBe(0xea);
    // PAM 0 (reset value): reads of 0xF0000 come from the ROM side, i.e. the BIOS alias.
    expect(m.read8(0xffff0)).toBe(0xea);
    expect(m.pageAccess[0xff]).toBe(0);
    // SeaBIOS: make the area RAM both ways, copy itself, then read-only (platform-facts).
    m.setPam(0, PAM_RW);
    expect(m.pageAccess[0xff]).toBe(PAGE_DIRECT_READ | PAGE_DIRECT_WRITE);
    m.write8(0xffff0, 0x90);
    expect(m.read8(0xffff0)).toBe(0x90);
    m.setPam(0, PAM_READ);
    m.write8(0xffff0, 0x11); // writes go to the ROM side: dropped
    expect(m.read8(0xffff0)).toBe(0x90);
    expect(m.pageAccess[0xff]).toBe(PAGE_DIRECT_READ);
    m.setPam(0, PAM_OFF);
    expect(m.read8(0xffff0)).toBe(0xea);
    // The ROM at 4 GiB never changes.
    m.write8(0xfffffff0, 0);
    expect(m.read8(0xfffffff0)).toBe(0xea);
  });

  it('rejects a BIOS whose size is not a multiple of 64 KiB', () => {
    const m = new PhysicalMemory(2 << 20, new DeviceStats());
    expect(() => m.setBios(new Uint8Array(1000))).toThrow(/multiple of 64 KiB/);
  });

  it('wraps at 1 MiB with A20 masked and tells listeners', () => {
    const m = new PhysicalMemory(4 << 20, new DeviceStats());
    let calls = 0;
    m.addMapListener(() => calls++);
    m.write8(0x100005, 0x42);
    m.write8(0x000005, 0x24);
    m.setA20(false);
    expect(m.read8(0x100005)).toBe(0x24);
    m.setA20(true);
    expect(m.read8(0x100005)).toBe(0x42);
    expect(calls).toBe(2);
  });

  it('dispatches MMIO to the device, counts it, and moves regions', () => {
    const stats = new DeviceStats();
    const dev = stats.add({ name: 'test' });
    const m = new PhysicalMemory(4 << 20, stats);
    const seen: string[] = [];
    const block = {
      read: (off: number, size: AccessSize) => { seen.push(`r${size}@${off}`); return 0x11223344 & (size === 4 ? -1 : (1 << (size * 8)) - 1); },
      write: (off: number, size: AccessSize, v: number) => { seen.push(`w${size}@${off}=${v.toString(16)}`); },
    };
    const map = m.map(dev, 0xfebf0000, 0x1000, block);
    expect(m.read32(0xfebf0010)).toBe(0x11223344);
    m.write16(0xfebf0020, 0xbeef);
    expect(seen).toEqual(['r4@16', 'w2@32=beef']);
    expect(stats.get(dev, 'mmioReads')).toBe(1);
    expect(stats.get(dev, 'mmioWrites')).toBe(1);
    expect(stats.get(dev, 'bytesRead')).toBe(4);
    expect(stats.get(dev, 'traps')).toBe(2);
    map.move(0xfe000000);
    expect(m.read8(0xfebf0010)).toBe(0xff);
    m.read8(0xfe000003);
    expect(seen.at(-1)).toBe('r1@3');
  });

  it('logs dirty pages: logged pages leave the direct path and collect once', () => {
    const m = new PhysicalMemory(4 << 20, new DeviceStats());
    m.logDirty(0x200000, 0x4000);
    expect(m.pageAccess[0x201] & PAGE_DIRECT_WRITE).toBe(0);
    m.write8(0x201010, 1);
    const bits = new Uint8Array(4);
    m.collectDirty(0x200000, 0x4000, bits);
    expect(Array.from(bits)).toEqual([0, 1, 0, 0]);
    m.collectDirty(0x200000, 0x4000, bits);
    expect(Array.from(bits)).toEqual([0, 0, 0, 0]);
  });
});
