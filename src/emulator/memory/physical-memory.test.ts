import { describe, expect, it } from 'vitest';
import { PhysicalMemory, PAM_OFF, PAM_READ, PAM_RW } from './physical-memory.ts';
import { DeviceStats } from '../bus/stats.ts';
import { DirtyBitmap } from './dirty-bitmap.ts';
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

  it('tracks dirty pages: tracked pages leave the direct path and collect once', () => {
    const m = new PhysicalMemory(4 << 20, new DeviceStats());
    m.trackDirty(0x200000, 0x4000);
    expect(m.pageAccess[0x201] & PAGE_DIRECT_WRITE).toBe(0);
    expect(m.pageAccess[0x204] & PAGE_DIRECT_WRITE).toBe(PAGE_DIRECT_WRITE);
    m.write8(0x201010, 1);
    m.dmaWrite(0x203ffe, Uint8Array.of(1, 2, 3)); // DMA marks too, across a page boundary
    const bits = new Uint8Array(4);
    expect(m.collectDirty(0x200000, 0x4000, bits)).toBe(2);
    expect(Array.from(bits)).toEqual([0, 1, 0, 1]);
    m.collectDirty(0x200000, 0x4000, bits);
    expect(Array.from(bits)).toEqual([0, 0, 0, 0]);
    m.untrackDirty(0x200000, 0x4000);
    expect(m.pageAccess[0x201] & PAGE_DIRECT_WRITE).toBe(PAGE_DIRECT_WRITE);
  });

  it('serves MMIO-backed video memory without a trap and marks written pages in its log', () => {
    const stats = new DeviceStats();
    const dev = stats.add({ name: 'vga' });
    const m = new PhysicalMemory(4 << 20, stats);
    const vram = new Uint8Array(0x10000);
    const log = new DirtyBitmap(vram.length, false);
    const regs: string[] = [];
    m.map(dev, 0xfd000000, 0x20000, { read: (off) => { regs.push(`r@${off.toString(16)}`); return 0x77; }, write: () => {} }, { backing: vram, dirty: log });
    m.write32(0xfd002000, 0x44332211);
    m.write16(0xfd005fff, 0xbbaa); // straddles pages 5 and 6: split, both marked
    expect(Array.from(vram.subarray(0x2000, 0x2004))).toEqual([0x11, 0x22, 0x33, 0x44]);
    expect([vram[0x5fff], vram[0x6000]]).toEqual([0xaa, 0xbb]);
    expect(m.read32(0xfd002000)).toBe(0x44332211);
    expect(m.read8(0xfd010000)).toBe(0x77); // beyond the backing: the device answers
    expect(regs).toEqual(['r@10000']);
    const pages = new Uint8Array(16);
    expect(log.collect(pages)).toBe(3);
    expect([pages[2], pages[5], pages[6]]).toEqual([1, 1, 1]);
    expect(log.collect(pages)).toBe(0);
    expect(stats.get(dev, 'traps')).toBe(1);
    expect(stats.get(dev, 'mmioWrites')).toBe(3);
    expect(m.pageAccess[0xfd002]).toBe(0);
  });

  it('lets bus masters bypass the A20 gate but honour PAM and MMIO', () => {
    const stats = new DeviceStats();
    const dev = stats.add({ name: 'dev' });
    const m = new PhysicalMemory(4 << 20, stats);
    m.setBios(bios());
    m.setA20(false);
    m.dmaWrite(0x100000, Uint8Array.of(9));
    expect(m.ram[0x100000]).toBe(9);
    expect(m.ram[0]).toBe(0);
    const out = new Uint8Array(2);
    m.dmaRead(0xfffff, out); // ROM side (BIOS alias) then RAM at 1 MiB
    expect(Array.from(out)).toEqual([0x1f, 9]);
    m.dmaWrite(0xf0000, Uint8Array.of(1)); // PAM 0: the write goes to the ROM side, dropped
    expect(m.ram[0xf0000]).toBe(0);
    const seen: number[] = [];
    m.map(dev, 0x300000, 0x1000, { read: () => 0, write: (off, _s, v) => seen.push(off, v) });
    m.dmaWrite(0x300010, Uint8Array.of(5, 6));
    expect(seen).toEqual([0x10, 5, 0x11, 6]);
  });
});
