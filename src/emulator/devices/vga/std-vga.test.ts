/**
 * The std VGA through the bus, as a guest programs it: register files read back, the
 * attribute controller's flip-flop, the DAC's auto-increment, planar write modes with the
 * latches, text memory in odd/even mode, DISPI identification, capabilities and banking,
 * BAR sizing and the linear framebuffer, and the dirty pages every write leaves.
 */
import { describe, expect, it } from 'vitest';
import { createTestBus } from '../../bus/test-harness.ts';
import { DISPI, DISPI_ENABLED, DISPI_GETCAPS, DISPI_LFB_ENABLED, StdVga, VRAM_BYTES } from './std-vga.ts';

function setup() {
  const t = createTestBus({ ramBytes: 4 << 20 });
  const vga = new StdVga({ vgaBios: new Uint8Array(0x10000).fill(0xaa) });
  t.plugPci(vga, 2);
  return { t, vga };
}
const seq = (t: ReturnType<typeof setup>['t'], i: number, v: number) => t.out16(0x3c4, i | (v << 8));
const gc = (t: ReturnType<typeof setup>['t'], i: number, v: number) => t.out16(0x3ce, i | (v << 8));

describe('StdVga registers', () => {
  it('answers sequencer, graphics controller and CRTC indices, colour or mono by misc bit 0', () => {
    const { t } = setup();
    seq(t, 2, 0x0f);
    t.out8(0x3c4, 2);
    expect(t.in8(0x3c5)).toBe(0x0f);
    gc(t, 8, 0x5a);
    t.out8(0x3ce, 8);
    expect(t.in8(0x3cf)).toBe(0x5a);
    t.out8(0x3c2, 0x67); // colour addressing
    expect(t.in8(0x3cc)).toBe(0x67);
    t.out16(0x3d4, 0x0e | (0x12 << 8));
    t.out8(0x3d4, 0x0e);
    expect(t.in8(0x3d5)).toBe(0x12);
    expect(t.in8(0x3b5)).toBe(0xff); // the mono CRTC is not decoded in colour mode
    // CRTC 0x11 bit 7 protects registers 0-7.
    t.out16(0x3d4, 0x11 | (0x80 << 8));
    t.out16(0x3d4, 0x01 | (0x4f << 8));
    t.out8(0x3d4, 0x01);
    expect(t.in8(0x3d5)).toBe(0);
  });

  it('alternates index and data on 0x3C0, and reading input status 1 resets the flip-flop', () => {
    const { t, vga } = setup();
    t.out8(0x3c2, 0x01); // colour: input status 1 at 0x3DA
    t.in8(0x3da);
    t.out8(0x3c0, 0x01);
    t.out8(0x3c0, 0x3f);
    t.out8(0x3c0, 0x21); // index 1 again, with PAS set
    expect(t.in8(0x3c1)).toBe(0x3f);
    t.in8(0x3da); // back to index
    t.out8(0x3c0, 0x02);
    t.out8(0x3c0, 0x15);
    expect(vga.state.ac[2]).toBe(0x15);
    expect(vga.state.ac[1]).toBe(0x3f);
  });

  it('steps the DAC through R, G, B and on to the next entry, reading and writing', () => {
    const { t, vga } = setup();
    t.out8(0x3c8, 5);
    for (const v of [1, 2, 3, 4, 5, 6]) t.out8(0x3c9, v);
    expect(Array.from(vga.state.dac.slice(15, 21))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.in8(0x3c8)).toBe(7);
    t.out8(0x3c7, 6);
    expect(t.in8(0x3c7)).toBe(3);
    expect([t.in8(0x3c9), t.in8(0x3c9), t.in8(0x3c9)]).toEqual([4, 5, 6]);
    t.out8(0x3c9, 0xff);
    expect(vga.state.dac[21]).toBe(0x3f); // 6-bit DAC
  });

  it('shows vertical retrace in input status 1 as virtual time passes', () => {
    const { t } = setup();
    t.out8(0x3c2, 0x01);
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) {
      seen.add(t.in8(0x3da) & 0x08);
      t.advance(100_000);
    }
    expect([...seen].sort()).toEqual([0, 8]);
  });
});

describe('StdVga memory', () => {
  it('stores text in odd/even mode: characters in plane 0, attributes in plane 1', () => {
    const { t, vga } = setup();
    seq(t, 4, 0x02); // odd/even
    seq(t, 2, 0x03);
    gc(t, 5, 0x10); // host odd/even
    gc(t, 6, 0x0e); // B8000, text
    t.mmioWrite16(0xb8000, 0x1f41); // 'A' white on blue
    t.mmioWrite16(0xb8002, 0x0742);
    expect([vga.vram[0], vga.vram[1], vga.vram[8], vga.vram[9]]).toEqual([0x41, 0x1f, 0x42, 0x07]);
    expect(t.mmioRead16(0xb8002)).toBe(0x0742);
    expect(t.mmioRead8(0xa0000)).toBe(0xff); // outside the B8000 window
    expect(vga.dirty.pages[0]).toBe(1);
  });

  it('writes planes with write modes 0-3, set/reset, the ALU and the bit mask; reads load the latches', () => {
    const { t, vga } = setup();
    seq(t, 4, 0x06); // planar, no odd/even
    gc(t, 6, 0x05); // A0000 64K, graphics
    gc(t, 5, 0x00);
    // Mode 0 with set/reset on planes 0 and 2 (colour 5), bit mask 0xF0.
    seq(t, 2, 0x0f);
    gc(t, 0, 0x05);
    gc(t, 1, 0x0f);
    gc(t, 8, 0xf0);
    t.mmioWrite8(0xa0000, 0x00);
    expect(Array.from(vga.vram.slice(0, 4))).toEqual([0xf0, 0x00, 0xf0, 0x00]);
    // Mode 1 copies the latches: read offset 0, write offset 1.
    gc(t, 5, 0x01);
    t.mmioRead8(0xa0000);
    t.mmioWrite8(0xa0001, 0x00);
    expect(Array.from(vga.vram.slice(4, 8))).toEqual([0xf0, 0x00, 0xf0, 0x00]);
    // Mode 2: the written value's low four bits are the colour; XOR with the latches.
    gc(t, 5, 0x02);
    gc(t, 8, 0xff);
    gc(t, 3, 0x18); // XOR
    t.mmioRead8(0xa0000);
    t.mmioWrite8(0xa0000, 0x03);
    expect(Array.from(vga.vram.slice(0, 4))).toEqual([0x0f, 0xff, 0xf0, 0x00]);
    // Read mode 1: colour compare with "don't care" on plane 3.
    gc(t, 3, 0x00);
    gc(t, 5, 0x08);
    gc(t, 2, 0x01);
    gc(t, 7, 0x07);
    // pixels: planes 0..2 bits per column = 0x0f,0xff,0xf0 -> high nibble colour 2|4=6... compare with 1.
    expect(t.mmioRead8(0xa0000)).toBe(0x00);
    gc(t, 2, 0x03);
    expect(t.mmioRead8(0xa0000)).toBe(0x0f);
    // Mode 3: the rotated value ANDed with the bit mask; set/reset gives the colour.
    gc(t, 5, 0x03);
    gc(t, 0, 0x08);
    gc(t, 8, 0xff);
    t.mmioRead8(0xa0002);
    t.mmioWrite8(0xa0002, 0x81);
    expect(Array.from(vga.vram.slice(8, 12))).toEqual([0x00, 0x00, 0x00, 0x81]);
  });

  it('addresses pixels in chain-4 (mode 13h) by A1:A0 and keeps the map mask', () => {
    const { t, vga } = setup();
    seq(t, 4, 0x0e);
    seq(t, 2, 0x0f);
    gc(t, 6, 0x05);
    for (let i = 0; i < 8; i++) t.mmioWrite8(0xa0000 + i, 0x10 + i);
    expect(Array.from(vga.vram.slice(0, 4))).toEqual([0x10, 0x11, 0x12, 0x13]);
    expect(Array.from(vga.vram.slice(16, 20))).toEqual([0x14, 0x15, 0x16, 0x17]);
    seq(t, 2, 0x01);
    t.mmioWrite8(0xa0001, 0x99); // plane 1 is masked off
    expect(vga.vram[1]).toBe(0x11);
    expect(t.mmioRead8(0xa0005)).toBe(0x15);
  });
});

describe('StdVga DISPI and PCI', () => {
  it('identifies itself, reports capabilities, and banks the A0000 window into linear memory', () => {
    const { t, vga } = setup();
    t.out16(0x1ce, DISPI.ID);
    t.out16(0x1cf, 0xb0c0);
    expect(t.in16(0x1cf)).toBe(0xb0c0);
    t.out16(0x1cf, 0xb0c5);
    t.out16(0x1ce, DISPI.VIDEO_MEMORY_64K);
    expect(t.in16(0x1cf)).toBe(VRAM_BYTES >>> 16);
    t.out16(0x1ce, DISPI.ENABLE);
    t.out16(0x1cf, DISPI_GETCAPS);
    t.out16(0x1ce, DISPI.XRES);
    expect(t.in16(0x1cf)).toBe(16000);
    t.out16(0x1ce, DISPI.BPP);
    expect(t.in16(0x1cf)).toBe(32);
    const set = (i: number, v: number) => { t.out16(0x1ce, i); t.out16(0x1cf, v); };
    set(DISPI.ENABLE, 0);
    set(DISPI.XRES, 800);
    set(DISPI.YRES, 600);
    set(DISPI.BPP, 32);
    set(DISPI.ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED);
    t.out16(0x1ce, DISPI.VIRT_WIDTH);
    expect(t.in16(0x1cf)).toBe(800);
    set(DISPI.BANK, 3);
    t.mmioWrite32(0xa0010, 0x11223344);
    expect(vga.vram[3 * 0x10000 + 0x10]).toBe(0x44);
    expect(vga.dirty.pages[(3 * 0x10000) >>> 12]).toBe(1);
  });

  it('sizes BAR0 as 16 MiB prefetchable memory and maps video memory there; BAR2 answers DISPI and EDID', () => {
    const { t, vga } = setup();
    expect(t.cfgRead32(2, 0, 0) >>> 0).toBe(0x11111234);
    expect(t.cfgRead32(2, 0, 0x2c) >>> 0).toBe(0x11001af4);
    t.cfgWrite32(2, 0, 0x10, 0xffffffff);
    expect(t.cfgRead32(2, 0, 0x10) >>> 0).toBe(0xff000008);
    t.cfgWrite32(2, 0, 0x10, 0xfd000000);
    t.cfgWrite32(2, 0, 0x18, 0xfebf0000);
    t.cfgWrite32(2, 0, 0x04, 0x0003);
    t.mmioWrite32(0xfd000100, 0xcafef00d);
    expect(vga.vram[0x100]).toBe(0x0d);
    expect(vga.dirty.pages[0]).toBe(1);
    expect(t.mmioRead32(0xfd000100)).toBe(0xcafef00d);
    expect(t.mmioRead16(0xfebf0500)).toBe(0xb0c5); // DISPI ID through BAR2
    const edid = Array.from({ length: 128 }, (_, i) => t.mmioRead8(0xfebf0000 + i));
    expect(edid.slice(0, 8)).toEqual([0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    expect(edid.reduce((a, b) => a + b, 0) & 0xff).toBe(0);
    expect(t.stats('vga').mmioWrites).toBeGreaterThan(0);
  });

  it('survives random writes to every port and the whole window without a host exception', () => {
    const { t } = setup();
    let x = 12345;
    const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 20000; i++) {
      const port = 0x3b0 + (rnd() % 0x30);
      if (rnd() & 1) t.out8(port, rnd() & 0xff);
      else t.in8(port);
      t.mmioWrite8(0xa0000 + (rnd() % 0x20000), rnd() & 0xff);
      t.out16(0x1ce, rnd() % 16);
      t.out16(0x1cf, rnd() & 0xffff);
      t.mmioRead8(0xa0000 + (rnd() % 0x20000));
    }
  });
});
