/**
 * QEMU's "std VGA" (PCI 1234:1111): an IBM VGA register set with 16 MiB of video memory
 * and the Bochs DISPI interface for linear framebuffer modes, as Debian's SeaBIOS VGA BIOS
 * (vgabios-stdvga.bin) and Linux's bochs DRM driver expect it.
 *
 * Video memory is stored the way the VGA's four planes are wired: plane p's byte at
 * offset o is vram[o * 4 + p], so a 32-bit latch is one Uint32Array element. How a CPU
 * address in the legacy window reaches the planes depends on the sequencer memory mode
 * and the graphics controller (IBM VGA Technical Reference, "Sequencer" and "Graphics
 * Controller"): chain-4 (plane = A1:A0, offset = A with A1:A0 cleared), odd/even (plane =
 * A0, offset = A with A0 cleared, as the CRTC's word mode reads it back) or planar (all planes at offset A, with
 * the four write modes, the ALU, the bit mask and the latches). In DISPI modes the window
 * is a 64 KiB bank of the linear memory, and BAR0 maps all of it.
 *
 * Every write into video memory marks its page in `dirty` (DESIGN.md seam 5); the
 * renderer (renderer.ts) redraws only what lies under marked pages.
 *
 * On the emulated path (bus/device-paths.ts) a second copy of this class runs in the device
 * model, built over the same video memory and dirty log (`shared`), as QEMU maps VRAM into
 * the guest and keeps it in its own address space: the LFB (BAR0) is plain memory on both
 * paths, and only the registers and the legacy window, which go through the handlers, trap.
 * A switch hands over the registers alone (saveHandOver/loadHandOver); a snapshot still saves
 * video memory whole. The renderer reads `state`, `registerVersion` and `fontVersion`, which
 * the device paths answer from the device model's copy while it runs there.
 */
import { bool, bytes, count, int, oneOf, reg32, u16, u8, vmstate, words, type RecordOf } from '../../bus/vmstate.ts';
import type { AccessSize, Device, DeviceContext, DeviceState, RegisterBlock } from '../../bus/device.ts';
import type { PciContext, PciDevice, PciFunctionSpec } from '../../pci/pci-function.ts';
import { DirtyBitmap } from '../../memory/dirty-bitmap.ts';

export const VRAM_BYTES = 16 << 20;

/** Bochs DISPI register indices (port 0x1CE selects, 0x1CF reads/writes 16 bits). */
export const DISPI = {
  ID: 0, XRES: 1, YRES: 2, BPP: 3, ENABLE: 4, BANK: 5, VIRT_WIDTH: 6, VIRT_HEIGHT: 7, X_OFFSET: 8, Y_OFFSET: 9, VIDEO_MEMORY_64K: 10,
} as const;
/** ENABLE register bits. */
export const DISPI_ENABLED = 0x01;
export const DISPI_GETCAPS = 0x02;
export const DISPI_8BIT_DAC = 0x20;
export const DISPI_LFB_ENABLED = 0x40;
export const DISPI_NOCLEARMEM = 0x80;
const DISPI_ID5 = 0xb0c5;
const DISPI_MAX_XRES = 16000;
const DISPI_MAX_YRES = 12000;
const DISPI_MAX_BPP = 32;

/** Register file sizes (IBM VGA Technical Reference). */
const SEQ_REGS = 5;
const GC_REGS = 9;
const AC_REGS = 21;
const CRTC_REGS = 25;

/** One refresh of the 640x480/720x400 modes: 60 Hz; vertical retrace is the last ~5%. */
const FRAME_NS = 16_683_333;
const LINE_NS = 31_778;

/** Plane offsets of the eight character maps the sequencer's map select names (§ Character Map Select). */
export const FONT_MAP_OFFSET = [0x0000, 0x4000, 0x8000, 0xc000, 0x2000, 0x6000, 0xa000, 0xe000];

/** The VGA register file (IBM VGA Technical Reference) and the Bochs DISPI registers. */
const VGA_REGISTERS = {
  /** Miscellaneous output (0x3C2 write, 0x3CC read). */
  misc: u8,
  seqIndex: int(0, 7),
  seq: bytes(8),
  gcIndex: int(0, 0x0f),
  gc: bytes(16),
  acIndex: int(0, 0x3f),
  /** Attribute controller flip-flop: false = next 0x3C0 write is an index. */
  acData: bool,
  ac: bytes(AC_REGS),
  crtcIndex: int(0, 0x3f),
  crtc: bytes(CRTC_REGS + 7),
  pelMask: u8,
  dacReadIndex: u8,
  dacWriteIndex: u8,
  /** Which of R, G, B the next 0x3C9 access is. */
  dacComponent: int(0, 2),
  /** 0x3C7 read: 0 = last set was the write index, 3 = the read index. */
  dacState: oneOf(0, 3),
  /** 256 x RGB, 6 bits each (8 with DISPI_8BIT_DAC). */
  dac: bytes(768),
  featureControl: int(0, 3),
  /** The four latches as one 32-bit value (plane p in byte p). */
  latch: reg32,
  dispiIndex: u16,
  dispi: words(16),
};
/** Registers plus the whole video memory (plane p of offset o at vram[o * 4 + p]). */
export const STD_VGA_STATE = vmstate('std-vga', 1, { ...VGA_REGISTERS, vram: bytes(VRAM_BYTES) });
export type StdVgaState = RecordOf<typeof VGA_REGISTERS>;
/**
 * What moves at a path switch: the registers and the renderer's two change counters (each
 * copy goes on counting where the other stopped, so a renderer that saw one copy's count
 * notices the next change made by the other). Video memory stays where both copies see it.
 */
export const STD_VGA_HANDOVER = vmstate('std-vga-handover', 1, { ...VGA_REGISTERS, registerVersion: count, fontVersion: count });

/** Video memory and its dirty log over shared memory, as the vCPU's copy hands them to the device model's. */
export interface SharedVram {
  vram: SharedArrayBuffer;
  dirty: SharedArrayBuffer;
}

export interface StdVgaOptions {
  /** The option ROM behind the ROM BAR (the PCI bus answers it). */
  vgaBios?: Uint8Array;
  /** Use this video memory and dirty log instead of new ones (the device model's copy). */
  shared?: SharedVram;
}

export class StdVga implements PciDevice, Device {
  readonly name = 'vga';
  readonly vram: Uint8Array;
  private readonly vram32: Uint32Array;
  /** One byte per 4 KiB page of vram, set by every write (the renderer collects it). */
  readonly dirty: DirtyBitmap;
  readonly pci: PciFunctionSpec;
  private regs: StdVgaState;
  private registerCount = 0;
  private fontCount = 0;
  private clockNow: () => number = () => 0;
  private log: (m: string) => void = () => {};
  private readonly edid = makeEdid();

  constructor(options: StdVgaOptions = {}) {
    if (options.shared) {
      if (options.shared.vram.byteLength !== VRAM_BYTES) throw new Error(`std-vga: shared video memory must be ${VRAM_BYTES} bytes, got ${options.shared.vram.byteLength}`);
      this.vram = new Uint8Array(options.shared.vram);
      this.vram32 = new Uint32Array(options.shared.vram);
      this.dirty = DirtyBitmap.over(new Uint8Array(options.shared.dirty));
    } else {
      const shared = typeof SharedArrayBuffer === 'function';
      const buffer = shared ? new SharedArrayBuffer(VRAM_BYTES) : new ArrayBuffer(VRAM_BYTES);
      this.vram = new Uint8Array(buffer);
      this.vram32 = new Uint32Array(buffer);
      this.dirty = new DirtyBitmap(VRAM_BYTES, shared);
    }
    this.regs = initialState();
    const lfb: RegisterBlock = {
      // BAR0 is served from `vram` by the bus itself (MmioOptions.backing); nothing is left over.
      read: () => 0,
      write: () => {},
    };
    this.pci = {
      vendorId: 0x1234,
      deviceId: 0x1111,
      revision: 0x02,
      classCode: 0x030000,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      interruptPin: 0,
      bars: [
        { index: 0, kind: 'mem', size: VRAM_BYTES, prefetchable: true, block: lfb, mmio: { backing: this.vram, dirty: this.dirty } },
        { index: 2, kind: 'mem', size: 0x1000, block: { read: (o, s) => this.mmioRead(o, s), write: (o, s, v) => this.mmioWrite(o, s, v) } },
      ],
      rom: options.vgaBios,
    };
    this.reset();
  }

  attach(ctx: DeviceContext): void {
    this.clockNow = () => ctx.clock.now();
    this.log = (m) => ctx.log(m);
    // Legacy decode: a VGA answers 0x3B0-0x3DF and 0xA0000-0xBFFFF whatever its BARs say.
    ctx.mapPorts(0x3b0, 0x30, {
      read: (o, s) => this.sized(o, s, (p) => this.portRead(0x3b0 + p)),
      write: (o, s, v) => this.sizedWrite(o, s, v, (p, b) => this.portWrite(0x3b0 + p, b)),
    });
    // DISPI: 16-bit index at 0x1CE, 16-bit data at 0x1CF (and its alias 0x1D0).
    ctx.mapPorts(0x1ce, 3, {
      read: (o, s) => (o === 0 ? this.regs.dispiIndex : this.dispiRead(this.regs.dispiIndex)) & (s === 1 ? 0xff : 0xffff),
      write: (o, s, v) => {
        if (o === 0) this.regs.dispiIndex = v & 0xffff;
        else this.dispiWrite(this.regs.dispiIndex, v & (s === 1 ? 0xff : 0xffff));
      },
    });
    ctx.mapMmio(0xa0000, 0x20000, {
      read: (o, s) => this.sized(o, s, (a) => this.memRead(a)),
      write: (o, s, v) => this.sizedWrite(o, s, v, (a, b) => this.memWrite(a, b)),
    });
  }

  attachPci(_ctx: PciContext): void {}

  reset(): void {
    this.regs = initialState();
    this.registerCount++;
  }

  /** The registers (what the renderer reads). */
  get state(): StdVgaState {
    return this.regs;
  }

  /** Bumped when anything but video memory changes how the screen looks (registers, DAC). */
  get registerVersion(): number {
    return this.registerCount;
  }

  set registerVersion(v: number) {
    this.registerCount = v;
  }

  /** Bumped when plane 2 (the font) is written. */
  get fontVersion(): number {
    return this.fontCount;
  }

  /** Video memory and its dirty log, for a copy of this device in another thread; null without shared memory. */
  sharedVram(): SharedVram | null {
    const vram = this.vram.buffer;
    const dirty = this.dirty.pages.buffer;
    if (typeof SharedArrayBuffer !== 'function' || !(vram instanceof SharedArrayBuffer) || !(dirty instanceof SharedArrayBuffer)) return null;
    return { vram, dirty };
  }

  // -------------------------------------------------------------------------------------
  // Helpers for access sizes: VGA registers and the window are byte-wide.
  // -------------------------------------------------------------------------------------

  private sized(offset: number, size: AccessSize, read8: (o: number) => number): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= read8(offset + i) << (8 * i);
    return size === 4 ? v | 0 : v;
  }

  private sizedWrite(offset: number, size: AccessSize, value: number, write8: (o: number, b: number) => void): void {
    for (let i = 0; i < size; i++) write8(offset + i, (value >>> (8 * i)) & 0xff);
  }

  // -------------------------------------------------------------------------------------
  // I/O ports 0x3B0-0x3DF
  // -------------------------------------------------------------------------------------

  /** Colour (0x3Dx) or monochrome (0x3Bx) CRTC addressing, by misc output bit 0. */
  private ignored(port: number): boolean {
    const colour = (this.regs.misc & 1) !== 0;
    if (port >= 0x3b0 && port <= 0x3bf) return colour;
    if (port >= 0x3d0 && port <= 0x3df) return !colour;
    return false;
  }

  portRead(port: number): number {
    if (this.ignored(port)) return 0xff;
    const s = this.regs;
    switch (port) {
      case 0x3c0:
        return s.acIndex;
      case 0x3c1:
        return (s.acIndex & 0x1f) < AC_REGS ? s.ac[s.acIndex & 0x1f] : 0;
      case 0x3c2:
        return 0x10; // input status 0: switch sense (a colour monitor is attached)
      case 0x3c3:
        return 1; // VGA enable
      case 0x3c4:
        return s.seqIndex;
      case 0x3c5:
        return s.seqIndex < SEQ_REGS ? s.seq[s.seqIndex] : 0;
      case 0x3c6:
        return s.pelMask;
      case 0x3c7:
        return s.dacState;
      case 0x3c8:
        return s.dacWriteIndex;
      case 0x3c9: {
        const v = s.dac[s.dacReadIndex * 3 + s.dacComponent];
        if (++s.dacComponent === 3) {
          s.dacComponent = 0;
          s.dacReadIndex = (s.dacReadIndex + 1) & 0xff;
        }
        return v;
      }
      case 0x3ca:
        return s.featureControl;
      case 0x3cc:
        return s.misc;
      case 0x3ce:
        return s.gcIndex;
      case 0x3cf:
        return s.gcIndex < GC_REGS ? s.gc[s.gcIndex] : 0;
      case 0x3b4:
      case 0x3d4:
        return s.crtcIndex;
      case 0x3b5:
      case 0x3d5:
        return s.crtcIndex < CRTC_REGS ? s.crtc[s.crtcIndex] : 0;
      case 0x3ba:
      case 0x3da: {
        // Input status 1: reading it also resets the attribute controller's flip-flop.
        s.acData = false;
        const now = this.clockNow();
        const inFrame = now % FRAME_NS;
        const vretrace = inFrame > FRAME_NS * 0.95;
        const hblank = now % LINE_NS > LINE_NS * 0.8;
        return (vretrace ? 0x08 : 0) | (vretrace || hblank ? 0x01 : 0);
      }
      default:
        return 0xff;
    }
  }

  portWrite(port: number, v: number): void {
    if (this.ignored(port)) return;
    const s = this.regs;
    switch (port) {
      case 0x3c0:
        if (!s.acData) {
          s.acIndex = v & 0x3f;
        } else {
          const i = s.acIndex & 0x1f;
          if (i < AC_REGS) s.ac[i] = v;
          this.registerCount++;
        }
        s.acData = !s.acData;
        break;
      case 0x3c2:
        s.misc = v;
        this.registerCount++;
        break;
      case 0x3c4:
        s.seqIndex = v & 0x07;
        break;
      case 0x3c5:
        if (s.seqIndex < SEQ_REGS) {
          s.seq[s.seqIndex] = v;
          this.registerCount++;
        }
        break;
      case 0x3c6:
        s.pelMask = v;
        this.registerCount++;
        break;
      case 0x3c7:
        s.dacReadIndex = v;
        s.dacComponent = 0;
        s.dacState = 3;
        break;
      case 0x3c8:
        s.dacWriteIndex = v;
        s.dacComponent = 0;
        s.dacState = 0;
        break;
      case 0x3c9:
        s.dac[s.dacWriteIndex * 3 + s.dacComponent] = (s.dispi[DISPI.ENABLE] & DISPI_8BIT_DAC) !== 0 ? v : v & 0x3f;
        if (++s.dacComponent === 3) {
          s.dacComponent = 0;
          s.dacWriteIndex = (s.dacWriteIndex + 1) & 0xff;
        }
        this.registerCount++;
        break;
      case 0x3ce:
        s.gcIndex = v & 0x0f;
        break;
      case 0x3cf:
        if (s.gcIndex < GC_REGS) {
          s.gc[s.gcIndex] = v;
          this.registerCount++;
        }
        break;
      case 0x3b4:
      case 0x3d4:
        s.crtcIndex = v & 0x3f;
        break;
      case 0x3b5:
      case 0x3d5: {
        const i = s.crtcIndex;
        if (i >= CRTC_REGS) break;
        // CRTC register 0x11 bit 7 write-protects registers 0-7, except bit 4 of 7 (line compare bit 8).
        if ((s.crtc[0x11] & 0x80) !== 0 && i <= 7) {
          if (i === 7) s.crtc[7] = (s.crtc[7] & ~0x10) | (v & 0x10);
          break;
        }
        s.crtc[i] = v;
        this.registerCount++;
        break;
      }
      case 0x3ba:
      case 0x3da:
        s.featureControl = v & 0x03;
        break;
      default:
        break;
    }
  }

  // -------------------------------------------------------------------------------------
  // The legacy memory window 0xA0000-0xBFFFF
  // -------------------------------------------------------------------------------------

  /** Window offset (from 0xA0000) to the offset within the mapped range, or -1 if not decoded (GC misc bits 3:2). */
  private windowOffset(a: number): number {
    switch ((this.regs.gc[6] >> 2) & 3) {
      case 0: return a;
      case 1: return a < 0x10000 ? a : -1;
      case 2: return a >= 0x10000 && a < 0x18000 ? a - 0x10000 : -1;
      default: return a >= 0x18000 ? a - 0x18000 : -1;
    }
  }

  private dispiBanked(): boolean {
    return (this.regs.dispi[DISPI.ENABLE] & DISPI_ENABLED) !== 0;
  }

  memRead(a: number): number {
    const s = this.regs;
    if (this.dispiBanked()) {
      if (a >= 0x10000) return 0xff;
      return this.vram[(s.dispi[DISPI.BANK] * 0x10000 + a) % VRAM_BYTES];
    }
    const off = this.windowOffset(a);
    if (off < 0) return 0xff;
    const seqMode = s.seq[4];
    if (seqMode & 0x08) {
      // Chain-4: A1:A0 select the plane.
      return this.vram[(off & ~3) * 4 + (off & 3)];
    }
    if ((s.gc[5] & 0x10) !== 0) {
      // Host odd/even: A0 selects plane 0/1 (2/3 with read map select bit 1).
      const plane = (s.gc[4] & 2) | (off & 1);
      return this.vram[(off & ~1) * 4 + plane];
    }
    // Planar: every read loads the four latches (GC mode register bit 3 picks the read mode).
    s.latch = this.vram32[off];
    if ((s.gc[5] & 0x08) === 0) return (s.latch >>> (8 * (s.gc[4] & 3))) & 0xff;
    // Read mode 1: colour compare over the planes that "colour don't care" keeps.
    const care = s.gc[7] & 0xf;
    const cmp = s.gc[2] & 0xf;
    let diff = 0;
    for (let p = 0; p < 4; p++) {
      if ((care >> p) & 1) diff |= ((s.latch >>> (8 * p)) & 0xff) ^ (((cmp >> p) & 1) ? 0xff : 0);
    }
    return ~diff & 0xff;
  }

  memWrite(a: number, v: number): void {
    const s = this.regs;
    if (this.dispiBanked()) {
      if (a >= 0x10000) return;
      const at = (s.dispi[DISPI.BANK] * 0x10000 + a) % VRAM_BYTES;
      this.vram[at] = v;
      this.dirty.mark(at);
      return;
    }
    const off = this.windowOffset(a);
    if (off < 0) return;
    const mapMask = s.seq[2] & 0xf;
    if (s.seq[4] & 0x08) {
      const plane = off & 3;
      if ((mapMask >> plane) & 1) this.store((off & ~3) * 4 + plane, v);
      return;
    }
    if ((s.gc[5] & 0x10) !== 0) {
      const plane = (s.gc[4] & 2) | (off & 1);
      if ((mapMask >> plane) & 1) this.store((off & ~1) * 4 + plane, v);
      return;
    }
    this.planarWrite(off, v, mapMask);
  }

  private store(at: number, v: number): void {
    this.vram[at] = v;
    this.dirty.mark(at);
    if ((at & 3) === 2) this.fontCount++;
  }

  /** Write modes 0-3 with rotate, set/reset, ALU and bit mask (Graphics Controller registers 0-8). */
  private planarWrite(off: number, v: number, mapMask: number): void {
    const s = this.regs;
    const gc = s.gc;
    const mode = gc[5] & 3;
    let value: number; // four planes' bytes
    let bitMask = gc[8];
    if (mode === 1) {
      value = s.latch;
    } else {
      const rot = gc[3] & 7;
      const rotated = ((v >>> rot) | (v << (8 - rot))) & 0xff;
      if (mode === 0) {
        value = expand(rotated);
        const enable = gc[1] & 0xf;
        const sr = expand4(gc[0] & 0xf);
        const em = expand4(enable);
        value = (value & ~em) | (sr & em);
      } else if (mode === 2) {
        value = expand4(v & 0xf);
      } else {
        bitMask &= rotated;
        value = expand4(gc[0] & 0xf);
      }
      switch ((gc[3] >> 3) & 3) {
        case 1: value &= s.latch; break;
        case 2: value |= s.latch; break;
        case 3: value ^= s.latch; break;
        default: break;
      }
      const m = expand(bitMask);
      value = (value & m) | (s.latch & ~m);
    }
    const planes = expand4(mapMask);
    const old = this.vram32[off];
    this.vram32[off] = (old & ~planes) | (value & planes);
    this.dirty.mark(off * 4);
    if (mapMask & 4) this.fontCount++;
  }

  // -------------------------------------------------------------------------------------
  // Bochs DISPI (VBE)
  // -------------------------------------------------------------------------------------

  dispiRead(index: number): number {
    const d = this.regs.dispi;
    const caps = (d[DISPI.ENABLE] & DISPI_GETCAPS) !== 0;
    switch (index) {
      case DISPI.XRES: return caps ? DISPI_MAX_XRES : d[index];
      case DISPI.YRES: return caps ? DISPI_MAX_YRES : d[index];
      case DISPI.BPP: return caps ? DISPI_MAX_BPP : d[index];
      case DISPI.VIDEO_MEMORY_64K: return VRAM_BYTES >>> 16;
      default: return index < d.length ? d[index] : 0;
    }
  }

  dispiWrite(index: number, v: number): void {
    const d = this.regs.dispi;
    switch (index) {
      case DISPI.ID:
        if (v >= 0xb0c0 && v <= DISPI_ID5) d[DISPI.ID] = v;
        break;
      case DISPI.XRES:
      case DISPI.YRES:
        if (v <= (index === DISPI.XRES ? DISPI_MAX_XRES : DISPI_MAX_YRES)) d[index] = v;
        break;
      case DISPI.BPP:
        if ([4, 8, 15, 16, 24, 32].includes(v)) d[index] = v;
        else this.log(`DISPI: unsupported depth ${v} bpp ignored`);
        break;
      case DISPI.BANK:
        d[index] = v & 0xff;
        break;
      case DISPI.ENABLE: {
        const was = d[DISPI.ENABLE] & DISPI_ENABLED;
        d[DISPI.ENABLE] = v;
        if ((v & DISPI_ENABLED) !== 0 && !was) {
          // A mode set: the virtual screen starts as the visible one, at offset 0.
          d[DISPI.VIRT_WIDTH] = d[DISPI.XRES];
          const lineBytes = Math.max(1, (d[DISPI.XRES] * bytesPerPixel(d[DISPI.BPP])) | 0);
          d[DISPI.VIRT_HEIGHT] = Math.min(0xffff, Math.floor(VRAM_BYTES / lineBytes));
          d[DISPI.X_OFFSET] = 0;
          d[DISPI.Y_OFFSET] = 0;
          if ((v & DISPI_NOCLEARMEM) === 0) {
            this.vram.fill(0, 0, Math.min(VRAM_BYTES, lineBytes * d[DISPI.YRES]));
            this.dirty.markRange(0, lineBytes * d[DISPI.YRES]);
          }
        }
        this.registerCount++;
        break;
      }
      case DISPI.VIRT_WIDTH:
      case DISPI.X_OFFSET:
      case DISPI.Y_OFFSET:
        d[index] = v;
        this.registerCount++;
        break;
      default:
        break;
    }
  }

  // -------------------------------------------------------------------------------------
  // BAR2: EDID at 0x000, VGA ports at 0x400, DISPI at 0x500, QEMU extended registers at 0x600
  // -------------------------------------------------------------------------------------

  private mmioRead(o: number, size: AccessSize): number {
    if (o < 0x400) return this.sized(o, size, (x) => (x < this.edid.length ? this.edid[x] : 0));
    if (o >= 0x400 && o < 0x420) return this.sized(o - 0x400, size, (x) => this.portRead(0x3c0 + x));
    if (o >= 0x500 && o < 0x516) return this.dispiRead((o - 0x500) >> 1) & (size === 1 ? 0xff : 0xffff);
    if (o === 0x600) return 8; // size of the QEMU extended register block
    if (o === 0x604) return 0x1e1e1e1e; // framebuffer is little-endian
    return 0;
  }

  private mmioWrite(o: number, size: AccessSize, v: number): void {
    if (o >= 0x400 && o < 0x420) this.sizedWrite(o - 0x400, size, v, (x, b) => this.portWrite(0x3c0 + x, b));
    else if (o >= 0x500 && o < 0x516) this.dispiWrite((o - 0x500) >> 1, v & 0xffff);
  }

  // -------------------------------------------------------------------------------------
  // State
  // -------------------------------------------------------------------------------------

  saveState(): DeviceState {
    return STD_VGA_STATE.save({ ...this.regs, vram: this.vram });
  }

  loadState(saved: DeviceState): void {
    const { vram, ...rest } = STD_VGA_STATE.load(saved, this.name);
    this.regs = rest;
    this.vram.set(vram);
    this.dirty.markAll();
    this.registerCount++;
    this.fontCount++;
  }

  /** The state a path switch moves: the registers; video memory is shared by both copies (SharedVram). */
  saveHandOver(): DeviceState {
    return STD_VGA_HANDOVER.save({ ...this.regs, registerVersion: this.registerCount, fontVersion: this.fontCount });
  }

  loadHandOver(saved: DeviceState): void {
    const { registerVersion, fontVersion, ...rest } = STD_VGA_HANDOVER.load(saved, this.name);
    this.regs = rest;
    // Nothing the screen shows changed: the counters go on from the other copy's.
    this.registerCount = registerVersion;
    this.fontCount = fontVersion;
  }

  // -------------------------------------------------------------------------------------
  // What the renderer and the CLI read
  // -------------------------------------------------------------------------------------

  /** True in an alphanumeric (text) mode: graphics controller misc bit 0 clear and DISPI off. */
  get textMode(): boolean {
    const s = this.state;
    return (s.dispi[DISPI.ENABLE] & DISPI_ENABLED) === 0 && (s.gc[6] & 1) === 0;
  }

  /** CRTC start address (registers 0x0C/0x0D). */
  get startAddress(): number {
    return (this.state.crtc[0x0c] << 8) | this.state.crtc[0x0d];
  }

  /** Text columns and rows of the current text mode. */
  textGeometry(): { cols: number; rows: number; charHeight: number; charWidth: number } {
    const c = this.state.crtc;
    const cols = c[1] + 1;
    const vdisp = (c[0x12] | ((c[7] & 0x02) << 7) | ((c[7] & 0x40) << 3)) + 1;
    const charHeight = (c[9] & 0x1f) + 1;
    const rows = Math.max(1, Math.floor(vdisp / charHeight));
    const charWidth = (this.state.seq[1] & 1) !== 0 ? 8 : 9;
    return { cols, rows, charHeight, charWidth };
  }

  /** The text screen as lines of characters (code page 437 bytes mapped to Unicode). */
  textLines(): string[] {
    const { cols, rows } = this.textGeometry();
    const start = this.startAddress;
    const lines: string[] = [];
    for (let r = 0; r < rows; r++) {
      let line = '';
      for (let col = 0; col < cols; col++) {
        const at = ((start + r * this.lineStride() + col) * 2) & 0xffff;
        line += CP437[this.vram[at * 4]];
      }
      lines.push(line.replace(/\s+$/, ''));
    }
    return lines;
  }

  /** Character cells from one text row to the next (CRTC offset register, in words). */
  lineStride(): number {
    return this.state.crtc[0x13] * 2 || this.textGeometry().cols;
  }
}

function initialState(): StdVgaState {
  const s: StdVgaState = {
    misc: 0, seqIndex: 0, seq: new Uint8Array(8), gcIndex: 0, gc: new Uint8Array(16), acIndex: 0, acData: false,
    ac: new Uint8Array(AC_REGS), crtcIndex: 0, crtc: new Uint8Array(CRTC_REGS + 7), pelMask: 0xff, dacReadIndex: 0,
    dacWriteIndex: 0, dacComponent: 0, dacState: 0, dac: new Uint8Array(768), featureControl: 0, latch: 0,
    dispiIndex: 0, dispi: new Uint16Array(16),
  };
  s.dispi[DISPI.ID] = DISPI_ID5;
  s.dispi[DISPI.BPP] = 8;
  return s;
}

/** Replicate a byte into the four plane lanes. */
function expand(b: number): number {
  return (b * 0x01010101) | 0;
}

/** One bit per plane to a full byte per plane (set/reset, map mask). */
function expand4(bits: number): number {
  return ((bits & 1 ? 0xff : 0) | (bits & 2 ? 0xff00 : 0) | (bits & 4 ? 0xff0000 : 0) | (bits & 8 ? 0xff000000 : 0)) | 0;
}

export function bytesPerPixel(bpp: number): number {
  return bpp === 15 ? 2 : bpp / 8;
}

/** A 128-byte EDID 1.3 block for a 1024x768 display, as the VGA BIOS reads from BAR2. */
function makeEdid(): Uint8Array {
  const e = new Uint8Array(128);
  e.set([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00], 0);
  // Manufacturer "TRD" (three 5-bit letters), product 1, serial 0, week 1, 2026.
  const id = ((('T'.charCodeAt(0) - 64) << 10) | (('R'.charCodeAt(0) - 64) << 5) | ('D'.charCodeAt(0) - 64));
  e[8] = id >> 8;
  e[9] = id & 0xff;
  e[10] = 1;
  e[16] = 1;
  e[17] = 2026 - 1990;
  e[18] = 1;
  e[19] = 3;
  e[20] = 0x80; // digital input
  e[21] = 32; // 32 x 24 cm
  e[22] = 24;
  e[23] = 120; // gamma 2.2
  e[24] = 0x0a; // RGB, preferred timing in the first descriptor
  // Established timings: 640x480@60, 800x600@60, 1024x768@60.
  e[35] = 0x21;
  e[36] = 0x08;
  for (let i = 38; i < 54; i++) e[i] = 0x01; // no standard timings
  // Detailed timing: 1024x768 @ 60 Hz (65 MHz), the preferred mode.
  e.set([0x64, 0x19, 0x00, 0x40, 0x41, 0x00, 0x26, 0x30, 0x18, 0x88, 0x36, 0x00, 0x40, 0xf0, 0x10, 0x00, 0x00, 0x1e], 54);
  // Monitor name descriptor.
  e.set([0, 0, 0, 0xfc, 0], 72);
  const name = 'Trapdoor VGA\n';
  for (let i = 0; i < 13; i++) e[77 + i] = i < name.length ? name.charCodeAt(i) : 0x20;
  e.set([0, 0, 0, 0x10, 0], 90);
  e.set([0, 0, 0, 0x10, 0], 108);
  let sum = 0;
  for (let i = 0; i < 127; i++) sum += e[i];
  e[127] = (256 - (sum & 0xff)) & 0xff;
  return e;
}

/** Code page 437 as Unicode, for text dumps of the screen. */
export const CP437: string[] = (() => {
  const high = 'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ';
  const low = ' ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼';
  const t: string[] = [];
  for (let i = 0; i < 256; i++) t.push(i < 32 ? low[i] : i < 127 ? String.fromCharCode(i) : i === 127 ? '⌂' : high[i - 128]);
  return t;
})();
