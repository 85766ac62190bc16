/**
 * The 82077AA floppy controller and the 8237 DMA pair through the bus, in the spirit of
 * QEMU's fdc-test: reset and the four SENSE INTERRUPT STATUS answers, VERSION, SPECIFY,
 * recalibrate/seek/relative seek with the cylinder in ST0/PCN, READ DATA through DMA
 * channel 2 into RAM (with multi-track and terminal count), WRITE DATA, no medium,
 * write protection, the disk-change line, and an invalid command.
 */
import { describe, expect, it } from 'vitest';
import { createTestBus } from '../bus/test-harness.ts';
import { MemoryBlockDevice } from './block-device.ts';
import { Dma8237 } from './dma8237.ts';
import { Fdc82077, floppyGeometry } from './fdc.ts';

/** A 1.44 MB image whose sector at LBA n is filled with (n & 0xff). */
function image(): Uint8Array {
  const d = new Uint8Array(1474560);
  for (let lba = 0; lba < 2880; lba++) d.fill(lba & 0xff, lba * 512, lba * 512 + 512);
  return d;
}

function setup(options: { medium?: Uint8Array | null; readOnly?: boolean } = {}) {
  const t = createTestBus({ ramBytes: 2 << 20 });
  const dma = new Dma8237();
  const data = options.medium === undefined ? image() : options.medium;
  const fdc = new Fdc82077(data ? new MemoryBlockDevice(data, options.readOnly ?? false) : null, dma.channel(2));
  t.attach(dma);
  t.attach(fdc);
  return { t, dma, fdc, data };
}
type T = ReturnType<typeof setup>['t'];

function send(t: T, ...bytes: number[]): void {
  for (const b of bytes) {
    expect(t.in8(0x3f4) & 0xc0).toBe(0x80); // RQM, host to controller
    t.out8(0x3f5, b);
  }
}
function results(t: T): number[] {
  const r: number[] = [];
  while ((t.in8(0x3f4) & 0xc0) === 0xc0) r.push(t.in8(0x3f5));
  return r;
}
/** Take the controller out of reset with DMA and interrupts on, drive 0 selected with its motor. */
function start(t: T): void {
  t.out8(0x3f2, 0x00);
  t.out8(0x3f2, 0x1c);
}
/** Program DMA channel 2 for `bytes` at `addr` (mode: single, write = to memory, or read). */
function programDma(t: T, addr: number, bytes: number, toMemory: boolean): void {
  t.out8(0x0a, 0x06); // mask channel 2
  t.out8(0x0c, 0);
  t.out8(0x0b, toMemory ? 0x46 : 0x4a);
  t.out8(0x04, addr & 0xff);
  t.out8(0x04, (addr >> 8) & 0xff);
  t.out8(0x81, addr >> 16);
  t.out8(0x0c, 0);
  t.out8(0x05, (bytes - 1) & 0xff);
  t.out8(0x05, (bytes - 1) >> 8);
  t.out8(0x0a, 0x02); // unmask
}

describe('82077AA floppy controller', () => {
  it('knows the PC floppy formats by size', () => {
    expect(floppyGeometry(1474560)).toEqual({ cylinders: 80, heads: 2, sectors: 18 });
    expect(floppyGeometry(737280)).toEqual({ cylinders: 80, heads: 2, sectors: 9 });
    expect(floppyGeometry(1000)).toBeNull();
  });

  it('interrupts after reset and answers four SENSE INTERRUPT STATUS with a ready change', () => {
    const { t } = setup();
    start(t);
    expect(t.irqLevel(6)).toBe(1);
    for (let drive = 0; drive < 4; drive++) {
      send(t, 0x08);
      expect(results(t)).toEqual([0xc0 | drive, 0]);
    }
    expect(t.irqLevel(6)).toBe(0);
    send(t, 0x08);
    expect(results(t)).toEqual([0x80]); // nothing pending: invalid
    send(t, 0x10);
    expect(results(t)).toEqual([0x90]); // VERSION
  });

  it('recalibrates, seeks and seeks relatively, reporting the cylinder', () => {
    const { t } = setup();
    start(t);
    for (let i = 0; i < 4; i++) { send(t, 0x08); results(t); }
    send(t, 0x03, 0xaf, 0x02); // SPECIFY, DMA mode
    expect(results(t)).toEqual([]);
    expect(t.in8(0x3f7) & 0x80).toBe(0x80); // disk changed since power-on
    send(t, 0x0f, 0x00, 40);
    expect(t.irqLevel(6)).toBe(1);
    send(t, 0x08);
    expect(results(t)).toEqual([0x20, 40]);
    expect(t.in8(0x3f7) & 0x80).toBe(0); // stepping cleared the change line
    send(t, 0xcf, 0x00, 5); // relative seek inwards by 5
    send(t, 0x08);
    expect(results(t)).toEqual([0x20, 45]);
    send(t, 0x07, 0x00); // RECALIBRATE
    send(t, 0x08);
    expect(results(t)).toEqual([0x20, 0]);
    send(t, 0x04, 0x00); // SENSE DRIVE STATUS: ready, track 0, two-sided
    expect(results(t)).toEqual([0x38]);
  });

  it('reads sectors through DMA channel 2 until terminal count, across heads with MT', () => {
    const { t } = setup();
    start(t);
    for (let i = 0; i < 4; i++) { send(t, 0x08); results(t); }
    // Cylinder 1, head 0, sector 17: 4 sectors with MT = 17, 18 (head 0), 1, 2 (head 1).
    programDma(t, 0x10000, 4 * 512, true);
    send(t, 0xe6, 0x00, 1, 0, 17, 2, 18, 0x1b, 0xff);
    expect(t.irqLevel(6)).toBe(1);
    const r = results(t);
    expect(r).toEqual([0x04, 0, 0, 1, 1, 3, 2]); // ended on head 1; next sector is C1 H1 R3
    const lba = (c: number, h: number, s: number) => (c * 2 + h) * 18 + s - 1;
    expect(t.ram[0x10000]).toBe(lba(1, 0, 17) & 0xff);
    expect(t.ram[0x10000 + 512]).toBe(lba(1, 0, 18) & 0xff);
    expect(t.ram[0x10000 + 1024]).toBe(lba(1, 1, 1) & 0xff);
    expect(t.ram[0x10000 + 1536]).toBe(lba(1, 1, 2) & 0xff);
    expect(t.ram[0x10000 + 2048]).toBe(0); // nothing past the DMA count
    expect(t.in8(0x08) & 0x04).toBe(0x04); // channel 2 reached terminal count
  });

  it('writes sectors from memory, and refuses a write-protected disk', () => {
    const { t, data } = setup();
    start(t);
    for (let i = 0; i < 4; i++) { send(t, 0x08); results(t); }
    t.ram.fill(0xab, 0x20000, 0x20000 + 512);
    programDma(t, 0x20000, 512, false);
    send(t, 0xc5, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff);
    expect(results(t)[0] & 0xc0).toBe(0);
    expect(data![0]).toBe(0xab);
    expect(data![512]).toBe(1);

    const ro = setup({ readOnly: true });
    start(ro.t);
    for (let i = 0; i < 4; i++) { send(ro.t, 0x08); results(ro.t); }
    programDma(ro.t, 0x20000, 512, false);
    send(ro.t, 0xc5, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff);
    const r = results(ro.t);
    expect(r[0] & 0xc0).toBe(0x40);
    expect(r[1] & 0x02).toBe(0x02); // not writable
  });

  it('fails a read with no disk in the drive, and answers an unknown command with ST0 = 0x80', () => {
    const { t } = setup({ medium: null });
    start(t);
    for (let i = 0; i < 4; i++) { send(t, 0x08); results(t); }
    programDma(t, 0x10000, 512, true);
    send(t, 0xe6, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff);
    const r = results(t);
    expect(r[0] & 0xc0).toBe(0x40);
    send(t, 0x1f);
    expect(results(t)).toEqual([0x80]);
  });
});

describe('8237 DMA controller', () => {
  it('reads back address and count through the flip-flop, and auto-initialises at terminal count', () => {
    const { t, dma } = setup();
    t.out8(0x0c, 0);
    t.out8(0x02, 0x34);
    t.out8(0x02, 0x12);
    t.out8(0x0c, 0);
    expect([t.in8(0x02), t.in8(0x02)]).toEqual([0x34, 0x12]);
    t.out8(0x0b, 0x55); // channel 1: auto-init, write
    t.out8(0x03, 3);
    t.out8(0x03, 0);
    t.out8(0x83, 0x01); // page of channel 1
    t.out8(0x0a, 0x01); // unmask channel 1
    const ch = dma.channel(1);
    const r = ch.transfer(new Uint8Array([1, 2, 3, 4, 5, 6]), true);
    expect(r).toEqual({ moved: 6, terminalCount: true });
    // Four bytes fill the programmed count; auto-init restarts at the base, so 5 and 6 land over 1 and 2.
    expect(Array.from(t.ram.subarray(0x11234, 0x11239))).toEqual([5, 6, 3, 4, 0]);
    t.out8(0x0c, 0);
    expect([t.in8(0x03), t.in8(0x03)]).toEqual([1, 0]); // two bytes left of the reloaded count
  });

  it('moves nothing on a masked channel and keeps port 0x80 for the POST code', () => {
    const { t, dma } = setup();
    expect(dma.channel(2).transfer(new Uint8Array(4), true).moved).toBe(0);
    expect(t.in8(0x80)).toBe(0xff); // not ours
    t.out8(0x84, 0x5a);
    expect(t.in8(0x84)).toBe(0x5a);
  });
});
