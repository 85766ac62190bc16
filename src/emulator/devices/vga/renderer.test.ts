/**
 * The renderer redraws only what changed: an idle text console draws nothing, a scroll
 * redraws only the cells whose character or attribute differs, the cursor redraws the
 * cells it leaves and enters, glyphs come from the font in plane 2, and in a linear mode
 * only the scanlines under dirty pages are drawn.
 */
import { describe, expect, it } from 'vitest';
import { DISPI, DISPI_ENABLED, StdVga } from './std-vga.ts';
import { MAX_HEIGHT, MAX_WIDTH, VgaRenderer } from './renderer.ts';

/** Register values of BIOS mode 3 (80x25 text, 9x16 cells), IBM VGA Technical Reference. */
function mode3(vga: StdVga): void {
  const s = vga.state;
  s.misc = 0x67;
  s.seq.set([0x03, 0x00, 0x03, 0x00, 0x02]);
  s.crtc.set([0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff]);
  s.gc.set([0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff]);
  s.ac.set([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00]);
  s.acIndex = 0x20; // palette source: the attribute controller runs
  s.dac.set([0, 0, 0], 0);
  s.dac.set([0x2a, 0x2a, 0x2a], 7 * 3);
  s.dac.set([0x3f, 0x3f, 0x3f], 0x3f * 3);
  vga.registerVersion++;
}

/** Put `text` at cell `cell` (white on black), as a guest writing B8000 would. */
function put(vga: StdVga, cell: number, text: string, attr = 0x07): void {
  for (let i = 0; i < text.length; i++) {
    const at = (cell + i) * 2 * 4;
    vga.vram[at] = text.charCodeAt(i);
    vga.vram[at + 1] = attr;
    vga.dirty.mark(at);
  }
}

const cellsOf = (rects: { w: number; h: number }[]) => rects.reduce((a, r) => a + (r.w / 9) * (r.h / 16), 0);

describe('VgaRenderer, text mode', () => {
  it('redraws everything once, then nothing while the screen is idle', () => {
    const vga = new StdVga();
    mode3(vga);
    vga.state.crtc[0x0a] = 0x20; // cursor off (it blinks)
    put(vga, 0, 'Hello');
    const r = new VgaRenderer(vga);
    const px = new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4);
    const first = r.render(px, 0);
    expect([first.width, first.height, first.mode]).toEqual([720, 400, 'text']);
    expect(first.redrawnFraction).toBe(1);
    for (let t = 1; t <= 10; t++) {
      const f = r.render(px, t * 16_666_667);
      expect(f.rects).toEqual([]);
      expect(f.redrawnFraction).toBe(0);
    }
  });

  it('redraws only the cells a scroll changed', () => {
    const vga = new StdVga();
    mode3(vga);
    vga.state.crtc[0x0a] = 0x20;
    // Rows 0-9 each say "line N"; the rest is blank.
    for (let row = 0; row < 10; row++) put(vga, row * 80, `line ${row}`);
    const r = new VgaRenderer(vga);
    const px = new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4);
    r.render(px, 0);
    // Scroll up one row as a console does (copy rows 1..24 to 0..23, blank row 24).
    const copy = vga.vram.slice(80 * 2 * 4, 25 * 80 * 2 * 4);
    vga.vram.set(copy, 0);
    vga.vram.fill(0, 24 * 80 * 2 * 4);
    vga.dirty.markRange(0, 25 * 80 * 8);
    const f = r.render(px, 1);
    // Rows 0-8 now read "line 1".."line 9": only the digit differs; row 9 became blank
    // (6 cells: "line 9"); nothing else changed.
    expect(cellsOf(f.rects)).toBe(9 + 6);
    expect(f.redrawnFraction).toBeCloseTo(15 / 2000, 6);
  });

  it('moves the cursor by redrawing the cell it leaves and the one it enters', () => {
    const vga = new StdVga();
    mode3(vga);
    put(vga, 0, 'ab');
    const r = new VgaRenderer(vga);
    const px = new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4);
    vga.state.crtc[0x0f] = 0; // cursor at cell 0
    r.render(px, 0);
    vga.state.crtc[0x0f] = 1;
    const f = r.render(px, 1);
    expect(cellsOf(f.rects)).toBe(2);
    expect(f.cursor).toMatchObject({ x: 9, y: 13, w: 9, visible: true });
  });

  it('draws glyphs from the font in plane 2', () => {
    const vga = new StdVga();
    mode3(vga);
    vga.state.crtc[0x0a] = 0x20;
    // Glyph of 'A' (font map 0): top row 0x81, everything else empty.
    vga.vram[(0x41 * 32) * 4 + 2] = 0x81;
    put(vga, 0, 'A', 0x0f);
    const r = new VgaRenderer(vga);
    const px = new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4);
    r.render(px, 0);
    const at = (x: number, y: number) => Array.from(px.slice((y * 720 + x) * 4, (y * 720 + x) * 4 + 4));
    expect(at(0, 0)).toEqual([255, 255, 255, 255]); // colour 0x0f -> palette 0x3f -> white
    expect(at(7, 0)).toEqual([255, 255, 255, 255]);
    expect(at(1, 0)).toEqual([0, 0, 0, 255]);
    expect(at(8, 0)).toEqual([0, 0, 0, 255]); // 9th column: not a line-graphics character
    expect(at(0, 1)).toEqual([0, 0, 0, 255]);
  });
});

/** A VGA in a DISPI linear mode. */
function dispiVga(xres: number, yres: number, bpp: number): StdVga {
  const vga = new StdVga();
  const d = vga.state.dispi;
  d[DISPI.XRES] = xres;
  d[DISPI.YRES] = yres;
  d[DISPI.BPP] = bpp;
  vga.dispiWrite(DISPI.ENABLE, DISPI_ENABLED);
  return vga;
}

describe('VgaRenderer, linear (DISPI) modes', () => {
  it('redraws only the scanlines under dirty pages', () => {
    const vga = dispiVga(1024, 768, 32);
    const r = new VgaRenderer(vga);
    const px = new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4);
    expect(r.render(px, 0).redrawnFraction).toBe(1);
    expect(r.render(px, 1).rects).toEqual([]);
    // One pixel on line 100: 4096 bytes a line at 32 bpp, one page a line.
    const at = 100 * 4096 + 8;
    vga.vram.set([0x30, 0x20, 0x10, 0], at);
    vga.dirty.mark(at);
    const f = r.render(px, 2);
    expect(f.rects).toEqual([{ x: 0, y: 100, w: 1024, h: 1 }]);
    expect(Array.from(px.slice((100 * 1024 + 2) * 4, (100 * 1024 + 2) * 4 + 4))).toEqual([0x10, 0x20, 0x30, 255]);
  });

  it('converts 15, 16, 24 and 32 bpp pixels, and shows bytes past video memory as black', () => {
    const pixel = (bpp: number, bytes: number[]) => {
      const vga = dispiVga(16, 4, bpp);
      vga.vram.set(bytes, 0);
      const px = new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4);
      new VgaRenderer(vga).render(px, 0);
      return Array.from(px.slice(0, 4));
    };
    expect(pixel(15, [0x00, 0x7c])).toEqual([255, 0, 0, 255]);
    expect(pixel(15, [0x1f, 0x00])).toEqual([0, 0, 255, 255]);
    expect(pixel(16, [0xe0, 0x07])).toEqual([0, 255, 0, 255]);
    expect(pixel(16, [0x00, 0xf8])).toEqual([255, 0, 0, 255]);
    expect(pixel(24, [0x01, 0x02, 0x03])).toEqual([3, 2, 1, 255]);
    expect(pixel(32, [0x01, 0x02, 0x03, 0x00])).toEqual([3, 2, 1, 255]);

    // The last line starts 8 bytes before the end of video memory: two pixels, then black.
    const vga = dispiVga(16, 4, 32);
    const d = vga.state.dispi;
    // 16 KiB lines; line 3 starts at the last line's start plus 4094 pixels.
    d[DISPI.VIRT_WIDTH] = 4096;
    d[DISPI.Y_OFFSET] = vga.vram.length / 16384 - 4;
    d[DISPI.X_OFFSET] = 4094;
    vga.vram.fill(0x80, vga.vram.length - 8);
    const px = new Uint32Array(MAX_WIDTH * MAX_HEIGHT);
    new VgaRenderer(vga).render(new Uint8ClampedArray(px.buffer), 0);
    expect(Array.from(px.slice(3 * 16, 3 * 16 + 4)).map((v) => v.toString(16))).toEqual(['ff808080', 'ff808080', 'ff000000', 'ff000000']);
  });
});

