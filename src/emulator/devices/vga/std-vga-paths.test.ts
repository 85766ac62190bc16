/**
 * The std VGA on both device paths (issue 22) through the real bus (test-harness.ts): the
 * same guest session (BIOS mode 3 set through the ports, a font loaded into plane 2 with
 * planar writes, text through the B8000 window, the DAC, input status 1 as time passes, a
 * DISPI mode with the LFB through BAR0, the banked window and BAR2's MMIO block) run direct,
 * emulated and switched at every step reads the same answers, leaves the same video memory
 * and registers and renders the same frames, with the renderer in this thread reading the
 * registers from the device model while the VGA runs there. Video memory is shared by the
 * two copies, so a switch moves the registers only: it marks no page dirty, and the next
 * frame redraws nothing.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createTestBus, type TestBus } from '../../bus/test-harness.ts';
import { DevicePaths, type DeviceModelConnector, type DevicePath } from '../../bus/device-paths.ts';
import { vgaSpec } from '../../machine/switchable.ts';
import { inThreadDeviceModel } from '../../../worker/device-model.ts';
import { workerDeviceModels } from '../../../worker/device-model-node.testing.ts';
import { DISPI, DISPI_ENABLED, DISPI_LFB_ENABLED, STD_VGA_HANDOVER, StdVga, VRAM_BYTES } from './std-vga.ts';
import { MAX_HEIGHT, MAX_WIDTH, VgaRenderer } from './renderer.ts';

const LFB = 0xfd000000;
const MMIO = 0xfebf0000;

interface Rig {
  t: TestBus;
  vga: StdVga;
  paths: DevicePaths;
  renderer: VgaRenderer;
  pixels: Uint8ClampedArray;
}

function rig(connect: DeviceModelConnector): Rig {
  const t = createTestBus({ ramBytes: 4 << 20 });
  const vga = new StdVga();
  const paths = new DevicePaths(t.bus, connect);
  paths.register(vga, vgaSpec(vga));
  t.plugPci(vga, 2);
  t.cfgWrite32(2, 0, 0x10, LFB);
  t.cfgWrite32(2, 0, 0x18, MMIO);
  t.cfgWrite32(2, 0, 0x04, 0x0003);
  return { t, vga, paths, renderer: new VgaRenderer(vga), pixels: new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4) };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

/** One frame as the renderer draws it now: its shape, how much it redrew, and the pixels' hash. */
function frame(r: Rig): string {
  const info = r.renderer.render(r.pixels, r.t.bus.clock.now());
  const shown = new Uint8Array(r.pixels.buffer, 0, info.width * info.height * 4);
  return `${info.mode} ${info.width}x${info.height} rects=${info.rects.length} ${sha(shown)}`;
}

const seq = (t: TestBus, i: number, v: number) => t.out16(0x3c4, i | (v << 8));
const gc = (t: TestBus, i: number, v: number) => t.out16(0x3ce, i | (v << 8));
const crtc = (t: TestBus, i: number, v: number) => t.out16(0x3d4, i | (v << 8));
const dispi = (t: TestBus, i: number, v: number) => { t.out16(0x1ce, i); t.out16(0x1cf, v); };

/** A glyph for every character: a pattern of its code, so each cell's pixels differ. */
const glyphRow = (ch: number, y: number) => ((ch * 37) ^ (y * 11)) & 0xff;

/** A guest's session, step by step; each step returns what the guest read (and a frame where the screen shows something). */
const STEPS: ((r: Rig) => (number | string)[])[] = [
  // BIOS mode 3: 80x25 text, 9x16 cells (IBM VGA Technical Reference's register values).
  ({ t }) => {
    t.out8(0x3c2, 0x67);
    [0x03, 0x00, 0x03, 0x00, 0x02].forEach((v, i) => seq(t, i, v));
    crtc(t, 0x11, 0x0e); // unprotect 0-7
    [0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff]
      .forEach((v, i) => crtc(t, i, v));
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff].forEach((v, i) => gc(t, i, v));
    t.in8(0x3da);
    [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00]
      .forEach((v, i) => { t.out8(0x3c0, i); t.out8(0x3c0, v); });
    t.out8(0x3c0, 0x20); // palette source: the attribute controller runs
    t.out8(0x3c8, 0);
    for (let i = 0; i < 64; i++) for (let c = 0; c < 3; c++) t.out8(0x3c9, (i * (c + 1)) & 0x3f);
    t.out8(0x3d4, 0x11);
    return [t.in8(0x3d5), t.in8(0x3cc), t.in8(0x3c5), t.in8(0x3c8)];
  },
  // A font into plane 2: planar, map mask 4, as the BIOS loads one (sequencer and GC reprogrammed, then back).
  ({ t }) => {
    seq(t, 2, 0x04);
    seq(t, 4, 0x06);
    gc(t, 4, 0x02);
    gc(t, 5, 0x00);
    gc(t, 6, 0x04);
    for (let ch = 0; ch < 128; ch++) for (let y = 0; y < 16; y++) t.mmioWrite8(0xa0000 + ch * 32 + y, glyphRow(ch, y));
    const back = [t.mmioRead8(0xa0000 + 65 * 32 + 3), t.mmioRead8(0xa0000 + 66 * 32 + 15)];
    seq(t, 2, 0x03);
    seq(t, 4, 0x02);
    gc(t, 4, 0x00);
    gc(t, 5, 0x10);
    gc(t, 6, 0x0e);
    return back;
  },
  // Text through the B8000 window (odd/even), a word and a byte at a time; the cursor moves.
  (r) => {
    const { t } = r;
    const text = 'Trapdoor: the VGA on two paths';
    for (let i = 0; i < text.length; i++) t.mmioWrite16(0xb8000 + i * 2, text.charCodeAt(i) | ((0x10 + (i & 7)) << 8));
    for (let i = 0; i < 80; i++) t.mmioWrite8(0xb8000 + 160 + i * 2, 0x41 + (i % 26));
    crtc(t, 0x0e, 0x00);
    crtc(t, 0x0f, 0x52);
    return [t.mmioRead16(0xb8002), t.mmioRead8(0xb8000 + 160 + 10), t.mmioRead8(0xa0000), frame(r)];
  },
  // Input status 1 over a frame's time: retrace and blanking come and go with virtual time.
  ({ t }) => {
    const seen: number[] = [];
    for (let i = 0; i < 40; i++) {
      seen.push(t.in8(0x3da));
      t.advance(500_000);
    }
    return seen;
  },
  // Scroll: the CRTC start address moves one row down; a line written below.
  (r) => {
    const { t } = r;
    for (let i = 0; i < 80; i++) t.mmioWrite16(0xb8000 + 25 * 160 + i * 2, 0x0700 | (0x30 + (i % 10)));
    crtc(t, 0x0c, 0x00);
    crtc(t, 0x0d, 80);
    return [t.in8(0x3d5), frame(r)];
  },
  // The DAC read back, and a palette change the renderer must notice.
  (r) => {
    const { t } = r;
    t.out8(0x3c7, 7);
    const dac = [t.in8(0x3c9), t.in8(0x3c9), t.in8(0x3c9), t.in8(0x3c7)];
    t.out8(0x3c8, 7);
    t.out8(0x3c9, 0x3f);
    t.out8(0x3c9, 0x10);
    t.out8(0x3c9, 0x00);
    return [...dac, frame(r)];
  },
  // Planar write modes with the latches (mode 2 with XOR), then back to text registers.
  ({ t }) => {
    seq(t, 4, 0x06);
    gc(t, 6, 0x05);
    seq(t, 2, 0x0f);
    gc(t, 5, 0x02);
    gc(t, 3, 0x18);
    t.mmioRead8(0xa8000);
    t.mmioWrite8(0xa8000, 0x05);
    gc(t, 5, 0x08);
    gc(t, 2, 0x05);
    gc(t, 7, 0x0f);
    const cmp = t.mmioRead8(0xa8000);
    gc(t, 3, 0x00);
    gc(t, 5, 0x10);
    gc(t, 6, 0x0e);
    seq(t, 4, 0x02);
    seq(t, 2, 0x03);
    return [cmp];
  },
  // A DISPI mode: 640x480x32, pixels through BAR0 (plain memory on both paths) and the banked window.
  (r) => {
    const { t } = r;
    dispi(t, DISPI.ENABLE, 0);
    dispi(t, DISPI.XRES, 640);
    dispi(t, DISPI.YRES, 480);
    dispi(t, DISPI.BPP, 32);
    dispi(t, DISPI.ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED);
    for (let y = 0; y < 480; y += 7) for (let x = 0; x < 640; x += 5) t.mmioWrite32(LFB + (y * 640 + x) * 4, (x * 0x10203 + y * 0x30201) & 0xffffff);
    dispi(t, DISPI.BANK, 2);
    for (let i = 0; i < 256; i++) t.mmioWrite32(0xa0000 + i * 4, 0x00ff00 | i);
    t.out16(0x1ce, DISPI.VIRT_WIDTH);
    return [t.in16(0x1cf), t.mmioRead32(LFB + 4 * 640 * 7), t.mmioRead32(0xa0000 + 40), frame(r)];
  },
  // BAR2: DISPI and the VGA ports through the MMIO block, and the EDID.
  (r) => {
    const { t } = r;
    t.mmioWrite16(MMIO + 0x500 + DISPI.Y_OFFSET * 2, 16);
    const edid = Array.from({ length: 16 }, (_, i) => t.mmioRead8(MMIO + i));
    return [t.mmioRead16(MMIO + 0x500 + DISPI.XRES * 2), t.mmioRead16(MMIO + 0x500), t.mmioRead8(MMIO + 0x400 + 0x0c), ...edid, frame(r)];
  },
];

function runPlan(connect: DeviceModelConnector, plan: 'direct' | 'emulated' | 'switching') {
  const r = rig(connect);
  let path: DevicePath = plan === 'emulated' ? 'emulated' : 'direct';
  r.paths.switchNow('vga', path);
  const reads: (number | string)[][] = [];
  let quietSwitches = 0;
  for (const step of STEPS) {
    reads.push(step(r));
    if (plan === 'switching') {
      frame(r);
      path = path === 'direct' ? 'emulated' : 'direct';
      r.paths.switchNow('vga', path);
      // Nothing the screen shows moved: no page is dirty, no register counted as changed.
      if (r.vga.dirty.pages.every((p) => p === 0) && / rects=0 /.test(frame(r))) quietSwitches++;
    }
  }
  const stats = r.t.stats('vga');
  r.paths.switchNow('vga', 'direct');
  const registers = { ...STD_VGA_HANDOVER.load(r.vga.saveHandOver(), 'vga') };
  r.paths.close();
  return { trace: { reads, vram: sha(r.vga.vram), registers }, stats, failure: r.paths.failure, quietSwitches };
}

describe('the std VGA on both paths (device model in this thread)', () => {
  it('reads, draws and ends the same direct, emulated and switched at every step', () => {
    const direct = runPlan(inThreadDeviceModel, 'direct');
    const emulated = runPlan(inThreadDeviceModel, 'emulated');
    const switching = runPlan(inThreadDeviceModel, 'switching');
    // The session really drew: text, then a linear mode.
    expect(direct.trace.reads[2][3]).toMatch(/^text 720x400 rects=[1-9]/);
    expect(direct.trace.reads[7][3]).toMatch(/^graphics 640x480 rects=[1-9]/);
    expect(new Set(direct.trace.reads[3]).size).toBeGreaterThan(1);
    expect(emulated.trace).toEqual(direct.trace);
    expect(switching.trace).toEqual(direct.trace);
    expect(emulated.failure).toBeNull();
    expect(switching.failure).toBeNull();
    expect(switching.quietSwitches).toBe(STEPS.length);
    // Direct: no trap; emulated: every register and window access a trap, the LFB none.
    expect(direct.stats.traps).toBe(0);
    expect(emulated.stats.directAccesses).toBe(0);
    expect(emulated.stats.traps).toBe(direct.stats.directAccesses);
    expect(emulated.stats.rttMaxNs).toBeGreaterThan(0);
    expect(switching.stats.traps).toBeGreaterThan(0);
    expect(switching.stats.directAccesses).toBeGreaterThan(0);
    expect(switching.stats.pathSwitches).toBe(STEPS.length);
  });

  it("reads the registers from the device model while emulated, never a stale copy", () => {
    const r = rig(inThreadDeviceModel);
    r.paths.switchNow('vga', 'emulated');
    const version = r.vga.registerVersion;
    gc(r.t, 8, 0x5a);
    expect(r.vga.state.gc[8]).toBe(0x5a);
    expect(r.vga.registerVersion).toBe(version + 1);
    gc(r.t, 8, 0xa5);
    expect(r.vga.state.gc[8]).toBe(0xa5);
    expect(r.vga.registerVersion).toBe(version + 2);
    // Read twice with no access between: asked of the device model once.
    const asked = r.t.stats('vga').traps;
    void r.vga.state;
    void r.vga.state;
    expect(r.t.stats('vga').traps).toBe(asked);
    r.paths.switchNow('vga', 'direct');
    expect(r.vga.state.gc[8]).toBe(0xa5);
    expect(r.vga.registerVersion).toBe(version + 2);
    r.paths.close();
  });

  it('hands over a typed state: save -> load -> save is identical, and a misshapen one is refused untouched', () => {
    const a = rig(inThreadDeviceModel);
    STEPS.slice(0, 3).forEach((step) => step(a));
    const saved = a.vga.saveHandOver();
    const b = new StdVga();
    b.loadHandOver(saved);
    expect(b.saveHandOver()).toEqual(saved);
    expect(b.registerVersion).toBe(a.vga.registerVersion);
    expect(b.fontVersion).toBe(a.vga.fontVersion);
    const before = b.saveHandOver();
    expect(() => b.loadHandOver({ ...saved, crtc: new Uint8Array(3) })).toThrow(/vga: state field 'crtc' must be a Uint8Array\(32\), got a Uint8Array\(3\)/);
    expect(() => b.loadHandOver(a.vga.saveState())).toThrow(/vga/);
    expect(b.saveHandOver()).toEqual(before);
  });

  it('a snapshot while emulated saves video memory whole, from the copy that runs', () => {
    const r = rig(inThreadDeviceModel);
    r.paths.switchNow('vga', 'emulated');
    seq(r.t, 4, 0x0e);
    seq(r.t, 2, 0x0f);
    gc(r.t, 6, 0x05);
    r.t.mmioWrite8(0xa0001, 0x77);
    const saved = r.vga.saveState();
    expect((saved.vram as Uint8Array).length).toBe(VRAM_BYTES);
    expect((saved.vram as Uint8Array)[1]).toBe(0x77);
    expect((saved.seq as Uint8Array)[4]).toBe(0x0e);
    r.paths.close();
  });
});

describe('the std VGA on both paths (device model in a worker thread)', () => {
  const connect = workerDeviceModels();

  it('shares video memory and the dirty log with the worker: the same trace switched at every step', () => {
    const direct = runPlan(connect, 'direct');
    const switching = runPlan(connect, 'switching');
    expect(switching.failure).toBeNull();
    expect(switching.trace).toEqual(direct.trace);
    expect(switching.quietSwitches).toBe(STEPS.length);
    expect(switching.stats.modelTimeNs).toBeGreaterThan(0);
  }, 60_000);
});
