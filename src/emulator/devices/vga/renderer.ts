/**
 * Draws what the std VGA shows into an RGBA buffer, redrawing only what changed (DESIGN.md
 * seam 5). Runs next to the machine (in the worker, or in Node for tests); the page only
 * copies the rectangles it is told about onto its canvas.
 *
 *  - Text modes: the glyphs come from the font the guest loaded into plane 2, 8 or 9 dots
 *    wide (sequencer clocking mode bit 0), with line-graphics replication of column 8 for
 *    0xC0-0xDF, blink (attribute mode bit 3) and the CRTC cursor. A shadow copy of the
 *    cells drawn last time decides which cells to redraw, so an idle console costs nothing
 *    and a scroll redraws only the cells whose character or attribute differs.
 *  - Graphics modes: 16-colour planar (modes 0Dh-12h), 256-colour (mode 13h and unchained
 *    "mode X"), and DISPI linear modes at 8/15/16/24/32 bpp; scanlines are redrawn when a
 *    page of video memory under them is dirty.
 *  - Register, palette or font changes redraw everything.
 */
import { bytesPerPixel, DISPI, DISPI_8BIT_DAC, DISPI_ENABLED, FONT_MAP_OFFSET, type StdVga } from './std-vga.ts';

export interface DirtyRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface FrameInfo {
  width: number;
  height: number;
  mode: 'text' | 'graphics' | 'blank';
  /** Regions of `pixels` rewritten by this call (empty: nothing changed). */
  rects: DirtyRect[];
  /** Redrawn pixels / all pixels, 0..1. */
  redrawnFraction: number;
  cursor?: { x: number; y: number; w: number; h: number; visible: boolean };
}

/** Largest frame the renderer draws (bigger DISPI modes are clipped). */
export const MAX_WIDTH = 2048;
export const MAX_HEIGHT = 1536;
/** Text blink: the cursor toggles every 16 frames and character blink every 32 (at 60 Hz). */
const CURSOR_BLINK_NS = 266_666_667;
const CHAR_BLINK_NS = 533_333_333;

export class VgaRenderer {
  private lastRegisterVersion = -1;
  private lastFontVersion = -1;
  private width = 0;
  private height = 0;
  private mode: FrameInfo['mode'] = 'blank';
  /** Text: char | attr << 8 | blink-visible << 16 of each cell as last drawn (-1 = never). */
  private cells = new Int32Array(0);
  /** Pages of vram dirty since the last frame. */
  private readonly pages: Uint8Array;
  /** RGBA of the 256 DAC entries after the PEL mask (little-endian 0xAABBGGRR). */
  private readonly palette = new Uint32Array(256);
  private full = true;

  constructor(private readonly vga: StdVga) {
    this.pages = new Uint8Array(vga.dirty.pages.length);
  }

  /** Next call redraws everything. */
  invalidate(): void {
    this.full = true;
  }

  render(pixels: Uint8ClampedArray, nowNs: number): FrameInfo {
    const vga = this.vga;
    const s = vga.state;
    const out = new Uint32Array(pixels.buffer, pixels.byteOffset, pixels.length >>> 2);
    vga.dirty.collect(this.pages);
    if (vga.registerVersion !== this.lastRegisterVersion || vga.fontVersion !== this.lastFontVersion) {
      this.full = true;
      this.lastRegisterVersion = vga.registerVersion;
      this.lastFontVersion = vga.fontVersion;
      this.buildPalette();
    }
    const dispi = (s.dispi[DISPI.ENABLE] & DISPI_ENABLED) !== 0;
    // Sequencer reset or screen off (clocking mode bit 5), or the attribute controller's
    // palette source bit clear: the monitor shows black.
    const blank = !dispi && ((s.seq[0] & 3) !== 3 || (s.seq[1] & 0x20) !== 0 || (s.acIndex & 0x20) === 0);
    let info: FrameInfo;
    if (blank) info = this.renderBlank(out);
    else if (dispi) info = this.renderDispi(out);
    else if (vga.textMode) info = this.renderText(out, nowNs);
    else info = this.renderGraphics(out);
    this.full = false;
    return info;
  }

  private buildPalette(): void {
    const s = this.vga.state;
    const eight = (s.dispi[DISPI.ENABLE] & DISPI_8BIT_DAC) !== 0;
    for (let i = 0; i < 256; i++) {
      const j = (i & s.pelMask) * 3;
      let r = s.dac[j], g = s.dac[j + 1], b = s.dac[j + 2];
      if (!eight) {
        // 6-bit DAC values to 8 bits, so 63 is full white.
        r = (r << 2) | (r >> 4);
        g = (g << 2) | (g >> 4);
        b = (b << 2) | (b >> 4);
      }
      this.palette[i] = (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
    }
  }

  /** Attribute-controller colour (0-15) to a DAC index (§ Attribute Controller: mode control bit 7, colour select). */
  private acColour(c: number): number {
    const ac = this.vga.state.ac;
    const v = ac[c & ac[0x12] & 0xf] & 0x3f;
    const sel = ac[0x14];
    if (ac[0x10] & 0x80) return ((sel & 0xc) << 4) | ((sel & 3) << 4) | (v & 0xf);
    return ((sel & 0xc) << 4) | v;
  }

  private resize(width: number, height: number, mode: FrameInfo['mode']): void {
    width = Math.min(width, MAX_WIDTH);
    height = Math.min(height, MAX_HEIGHT);
    if (width !== this.width || height !== this.height || mode !== this.mode) {
      this.width = width;
      this.height = height;
      this.mode = mode;
      this.full = true;
    }
  }

  private frame(rects: DirtyRect[], extra: Partial<FrameInfo> = {}): FrameInfo {
    let area = 0;
    for (const r of rects) area += r.w * r.h;
    const total = this.width * this.height;
    return { width: this.width, height: this.height, mode: this.mode, rects, redrawnFraction: total ? Math.min(1, area / total) : 0, ...extra };
  }

  private renderBlank(out: Uint32Array): FrameInfo {
    const was = this.mode;
    this.resize(this.width || 640, this.height || 400, 'blank');
    if (!this.full && was === 'blank') return this.frame([]);
    out.fill(0xff000000, 0, this.width * this.height);
    return this.frame([{ x: 0, y: 0, w: this.width, h: this.height }]);
  }

  // -------------------------------------------------------------------------------------
  // Text
  // -------------------------------------------------------------------------------------

  private renderText(out: Uint32Array, nowNs: number): FrameInfo {
    const vga = this.vga;
    const s = vga.state;
    const { cols, rows, charHeight, charWidth } = vga.textGeometry();
    this.resize(cols * charWidth, rows * charHeight, 'text');
    const width = this.width;
    const n = cols * rows;
    if (this.cells.length !== n) {
      this.cells = new Int32Array(n);
      this.full = true;
    }
    if (this.full) this.cells.fill(-1);
    const vram = vga.vram;
    const start = vga.startAddress;
    const stride = vga.lineStride();
    const blinkEnabled = (s.ac[0x10] & 0x08) !== 0;
    const blinkOn = Math.floor(nowNs / CHAR_BLINK_NS) % 2 === 0;
    const lineGraphics = (s.ac[0x10] & 0x04) !== 0;
    const mapSel = s.seq[3];
    const fontA = FONT_MAP_OFFSET[((mapSel >> 5) & 1) << 2 | ((mapSel >> 2) & 3)];
    const fontB = FONT_MAP_OFFSET[((mapSel >> 4) & 1) << 2 | (mapSel & 3)];
    // The cursor: CRTC 0x0A (start, bit 5 = off), 0x0B (end), 0x0E/0x0F (location).
    const cursorLoc = ((s.crtc[0x0e] << 8) | s.crtc[0x0f]) - start;
    const cursorStart = s.crtc[0x0a] & 0x1f;
    const cursorEnd = s.crtc[0x0b] & 0x1f;
    const cursorOn = (s.crtc[0x0a] & 0x20) === 0 && Math.floor(nowNs / CURSOR_BLINK_NS) % 2 === 0 && cursorStart <= cursorEnd;
    const cursorRow = Math.floor(cursorLoc / stride);
    const cursorCol = cursorLoc - cursorRow * stride;
    const cursorCell = cursorLoc >= 0 && cursorRow < rows && cursorCol < cols ? cursorRow * cols + cursorCol : -1;
    const rects: DirtyRect[] = [];
    for (let r = 0; r < rows; r++) {
      let runStart = -1;
      for (let c = 0; c <= cols; c++) {
        let changed = false;
        if (c < cols) {
          const cell = r * cols + c;
          const at = (((start + r * stride + c) * 2) & 0xffff) * 4;
          const ch = vram[at];
          const attr = vram[at + 1];
          const blinkHidden = blinkEnabled && (attr & 0x80) !== 0 && !blinkOn;
          const isCursor = cell === cursorCell && cursorOn;
          const key = ch | (attr << 8) | (blinkHidden ? 1 << 16 : 0) | (isCursor ? 1 << 17 : 0);
          // The key holds everything a cell's pixels depend on, the cursor included, so a
          // moving or blinking cursor redraws exactly the cells it leaves and enters.
          if (this.cells[cell] !== key) {
            changed = true;
            {
              this.cells[cell] = key;
              const fg = this.palette[this.acColour(attr & 0x0f)];
              const bg = this.palette[this.acColour(blinkEnabled ? (attr >> 4) & 7 : attr >> 4)];
              const font = (attr & 0x08) !== 0 ? fontA : fontB;
              this.drawGlyph(out, width, c * charWidth, r * charHeight, charWidth, charHeight, ch, font, blinkHidden ? bg : fg, bg, lineGraphics);
              if (isCursor) {
                for (let y = cursorStart; y <= Math.min(cursorEnd, charHeight - 1); y++) {
                  const row = (r * charHeight + y) * width + c * charWidth;
                  for (let x = 0; x < charWidth; x++) out[row + x] = fg;
                }
              }
            }
          }
        }
        if (changed && runStart < 0) runStart = c;
        if (!changed && runStart >= 0) {
          rects.push({ x: runStart * charWidth, y: r * charHeight, w: (c - runStart) * charWidth, h: charHeight });
          runStart = -1;
        }
      }
    }
    const cursor = cursorCell >= 0
      ? { x: cursorCol * charWidth, y: cursorRow * charHeight + cursorStart, w: charWidth, h: Math.max(1, cursorEnd - cursorStart + 1), visible: cursorOn }
      : undefined;
    return this.frame(mergeRows(rects), { cursor });
  }

  private drawGlyph(out: Uint32Array, width: number, x0: number, y0: number, cw: number, chh: number, ch: number, font: number, fg: number, bg: number, lineGraphics: boolean): void {
    const vram = this.vga.vram;
    const base = font + ch * 32;
    const ninth = cw === 9 && lineGraphics && ch >= 0xc0 && ch <= 0xdf;
    for (let y = 0; y < chh; y++) {
      const bits = vram[((base + y) & 0xffff) * 4 + 2];
      let p = (y0 + y) * width + x0;
      for (let x = 0; x < 8; x++) out[p++] = (bits << x) & 0x80 ? fg : bg;
      if (cw === 9) out[p] = ninth && (bits & 1) ? fg : bg;
    }
  }

  // -------------------------------------------------------------------------------------
  // VGA graphics
  // -------------------------------------------------------------------------------------

  private renderGraphics(out: Uint32Array): FrameInfo {
    const s = this.vga.state;
    const c = s.crtc;
    const charClocks = c[1] + 1;
    const vdisp = (c[0x12] | ((c[7] & 0x02) << 7) | ((c[7] & 0x40) << 3)) + 1;
    // Each displayed row repeats (max scan line + 1) times, doubled again by double scan.
    const repeat = ((c[9] & 0x1f) + 1) * ((c[9] & 0x80) ? 2 : 1);
    const height = Math.max(1, Math.floor(vdisp / repeat));
    // 256-colour modes take four pixels a character clock from the four planes, 16-colour
    // modes eight (one bit from each plane). Drawn at the mode's own resolution.
    const eightBit = (s.ac[0x10] & 0x40) !== 0;
    this.resize(eightBit ? charClocks * 4 : charClocks * 8, height, 'graphics');
    const w = this.width;
    // Address of the display memory: word, doubleword or byte mode (CRTC 0x17 bit 6, 0x14 bit 6).
    const shift = (c[0x14] & 0x40) ? 2 : (c[0x17] & 0x40) ? 0 : 1;
    const lineWords = c[0x13] * 2;
    const start = this.vga.startAddress;
    const vram = this.vga.vram;
    const rects: DirtyRect[] = [];
    let runStart = -1;
    for (let y = 0; y <= height; y++) {
      let draw = false;
      if (y < this.height) {
        const ma = start + y * lineWords;
        const first = ((ma << shift) * 4) >>> 12;
        const last = ((((ma + charClocks) << shift) * 4) - 1) >>> 12;
        draw = this.full;
        for (let p = first; !draw && p <= last && p < this.pages.length; p++) if (this.pages[p]) draw = true;
        if (draw) {
          let o = y * w;
          for (let k = 0; k < charClocks; k++) {
            const at = (((ma + k) << shift) & 0xffff) * 4;
            if (eightBit) {
              for (let p = 0; p < 4; p++) out[o++] = this.palette[vram[at + p]];
            } else {
              const p0 = vram[at], p1 = vram[at + 1], p2 = vram[at + 2], p3 = vram[at + 3];
              for (let b = 7; b >= 0; b--) {
                const colour = ((p0 >> b) & 1) | (((p1 >> b) & 1) << 1) | (((p2 >> b) & 1) << 2) | (((p3 >> b) & 1) << 3);
                out[o++] = this.palette[this.acColour(colour)];
              }
            }
          }
        }
      }
      if (draw && runStart < 0) runStart = y;
      if (!draw && runStart >= 0) {
        rects.push({ x: 0, y: runStart, w, h: y - runStart });
        runStart = -1;
      }
    }
    return this.frame(rects);
  }

  // -------------------------------------------------------------------------------------
  // DISPI linear modes
  // -------------------------------------------------------------------------------------

  private renderDispi(out: Uint32Array): FrameInfo {
    const d = this.vga.state.dispi;
    const bpp = d[DISPI.BPP];
    this.resize(d[DISPI.XRES] || 1, d[DISPI.YRES] || 1, 'graphics');
    const w = this.width;
    const bytes = bytesPerPixel(bpp);
    const stride = Math.floor(d[DISPI.VIRT_WIDTH] * bytes);
    const base = d[DISPI.Y_OFFSET] * stride + Math.floor(d[DISPI.X_OFFSET] * bytes);
    const vram = this.vga.vram;
    const rects: DirtyRect[] = [];
    let runStart = -1;
    for (let y = 0; y <= this.height; y++) {
      let draw = false;
      if (y < this.height) {
        const line = base + y * stride;
        const end = Math.min(line + Math.ceil(w * bytes), vram.length);
        draw = this.full || anyPageSet(this.pages, line >>> 12, (end - 1) >>> 12);
        if (draw) convertLine(out, y * w, vram, line, w, bpp, this.palette);
      }
      if (draw && runStart < 0) runStart = y;
      if (!draw && runStart >= 0) {
        rects.push({ x: 0, y: runStart, w, h: y - runStart });
        runStart = -1;
      }
    }
    return this.frame(rects);
  }
}

/*
 * renderDispi's loop over the lines calls these for the work within a line, rather than
 * nesting loops: V8 compiles a hot nested loop "on stack" for that loop alone and throws
 * the code away each time the loop is left (deopt reason "exit from OSR'd inner loop"),
 * which in Chromium's worker happened hundreds of times per boot, about once per line.
 */

/** Whether any of pages[first..last] is set. */
function anyPageSet(pages: Uint8Array, first: number, last: number): boolean {
  for (let p = first; p <= last; p++) if (pages[p]) return true;
  return false;
}

/**
 * Convert `w` pixels of a DISPI line at `bpp` bits per pixel from vram[a..] into
 * out[o..]; pixels whose bytes would run past the end of video memory are black.
 */
function convertLine(out: Uint32Array, o: number, vram: Uint8Array, a: number, w: number, bpp: number, palette: Uint32Array): void {
  const limit = vram.length;
  let x = 0;
  switch (bpp) {
    case 8:
      for (; x < w && a + 1 <= limit; x++, a += 1) out[o + x] = palette[vram[a]];
      break;
    case 15:
      for (; x < w && a + 2 <= limit; x++, a += 2) {
        const v = vram[a] | (vram[a + 1] << 8);
        out[o + x] = rgb(((v >> 10) & 31) * 255 / 31, ((v >> 5) & 31) * 255 / 31, (v & 31) * 255 / 31);
      }
      break;
    case 16:
      for (; x < w && a + 2 <= limit; x++, a += 2) {
        const v = vram[a] | (vram[a + 1] << 8);
        out[o + x] = rgb(((v >> 11) & 31) * 255 / 31, ((v >> 5) & 63) * 255 / 63, (v & 31) * 255 / 31);
      }
      break;
    case 24:
      for (; x < w && a + 3 <= limit; x++, a += 3) out[o + x] = rgb(vram[a + 2], vram[a + 1], vram[a]);
      break;
    case 32:
      for (; x < w && a + 4 <= limit; x++, a += 4) out[o + x] = rgb(vram[a + 2], vram[a + 1], vram[a]);
      break;
  }
  for (; x < w; x++) out[o + x] = 0xff000000;
}

function rgb(r: number, g: number, b: number): number {
  return (0xff000000 | ((b & 0xff) << 16) | ((g & 0xff) << 8) | (r & 0xff)) >>> 0;
}

/** Merge text-row rectangles that span the same columns on consecutive rows. */
function mergeRows(rects: DirtyRect[]): DirtyRect[] {
  const merged: DirtyRect[] = [];
  for (const r of rects) {
    const last = merged[merged.length - 1];
    if (last && last.x === r.x && last.w === r.w && last.y + last.h === r.y) last.h += r.h;
    else merged.push({ ...r });
  }
  return merged;
}
