/**
 * PIIX3 IDE through the bus, in the spirit of QEMU's ide-test and cdrom-test: legacy
 * decode by IDETIM, IDENTIFY, PIO reads and writes (single and MULTIPLE), 48-bit LBA with
 * the HOB registers, bus-master DMA through PRD tables with the status bits and IRQ 14,
 * aborted commands, and the ATAPI CD-ROM: signature, IDENTIFY PACKET DEVICE, INQUIRY,
 * READ CAPACITY, READ(10) by PIO with the byte-count limit and by DMA, and sense data.
 */
import { describe, expect, it } from 'vitest';
import { createTestBus } from '../../bus/test-harness.ts';
import { MemoryBlockDevice } from '../block-device.ts';
import { Piix3Ide } from './piix3-ide.ts';

const BMIBA = 0xc000;

/** A disk of `sectors` sectors whose byte i of sector s is (s * 7 + i) & 0xff. */
function patternDisk(sectors: number, sectorBytes = 512): Uint8Array {
  const d = new Uint8Array(sectors * sectorBytes);
  for (let s = 0; s < sectors; s++) for (let i = 0; i < sectorBytes; i++) d[s * sectorBytes + i] = (s * 7 + i) & 0xff;
  return d;
}

function setup(options: { disk?: Uint8Array; cd?: Uint8Array | null } = {}) {
  const t = createTestBus({ ramBytes: 4 << 20 });
  const disk = options.disk ?? patternDisk(2048);
  const cd = options.cd === undefined ? patternDisk(64, 2048) : options.cd;
  const ide = new Piix3Ide({
    hda: new MemoryBlockDevice(disk),
    cdrom: cd === null ? new MemoryBlockDevice(new Uint8Array(0), true) : new MemoryBlockDevice(cd, true),
  });
  if (cd === null) ide.channels[1].drives[0]!.cdrom!.medium = null;
  t.plugPci(ide, 1, 1);
  // What SeaBIOS does: decode both channels, BAR4 at 0xC000, I/O and bus master on.
  t.cfgWrite(1, 1, 0x40, 2, 0x8000);
  t.cfgWrite(1, 1, 0x42, 2, 0x8000);
  t.cfgWrite32(1, 1, 0x20, BMIBA | 1);
  t.cfgWrite(1, 1, 0x04, 2, 0x0005);
  return { t, ide, disk };
}

type T = ReturnType<typeof setup>['t'];
const readWords = (t: T, port: number, n: number) => Array.from({ length: n }, () => t.in16(port));
const ataString = (words: number[], from: number, n: number) => words.slice(from, from + n).map((w) => String.fromCharCode(w >> 8, w & 0xff)).join('').trim();

describe('PIIX3 IDE: ATA disk', () => {
  it('decodes the legacy ports only while IDETIM enables them', () => {
    const t = createTestBus();
    t.plugPci(new Piix3Ide({ hda: new MemoryBlockDevice(new Uint8Array(512 * 16)) }), 1, 1);
    expect(t.in8(0x1f7)).toBe(0xff);
    t.cfgWrite(1, 1, 0x40, 2, 0x8000);
    expect(t.in8(0x1f7)).toBe(0x50); // DRDY | DSC
    expect(t.cfgRead32(1, 1, 0) >>> 0).toBe(0x70108086);
    expect(t.cfgRead32(1, 1, 0x08) >>> 8).toBe(0x010180);
  });

  it('answers IDENTIFY DEVICE with its geometry, capacity and model', () => {
    const { t } = setup();
    t.out8(0x1f6, 0xa0);
    t.out8(0x1f7, 0xec);
    expect(t.irqLevel(14)).toBe(1);
    expect(t.in8(0x1f7) & 0x08).toBe(0x08); // DRQ
    expect(t.irqLevel(14)).toBe(0); // reading status acknowledged the interrupt
    const w = readWords(t, 0x1f0, 256);
    expect(w[0]).toBe(0x0040);
    expect(ataString(w, 27, 20)).toBe('TRAPDOOR HARDDISK');
    expect(w[60] | (w[61] << 16)).toBe(2048);
    expect(w[83] & 0x0400).toBe(0x0400); // LBA48
    expect(w[100]).toBe(2048);
    expect(t.in8(0x1f7)).toBe(0x50);
  });

  it('reads sectors by PIO (LBA28), one interrupt per sector', () => {
    const { t, disk } = setup();
    t.out8(0x1f6, 0xe0);
    t.out8(0x1f2, 2);
    t.out8(0x1f3, 10);
    t.out8(0x1f4, 0);
    t.out8(0x1f5, 0);
    t.clearIrqLog();
    t.out8(0x1f7, 0x20);
    const got: number[] = [];
    for (let s = 0; s < 2; s++) {
      expect(t.in8(0x1f7) & 0x88).toBe(0x08);
      for (let i = 0; i < 128; i++) {
        const v = t.in32(0x1f0);
        got.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
      }
    }
    expect(got).toEqual(Array.from(disk.subarray(10 * 512, 12 * 512)));
    expect(t.irqEdges(14)).toBe(3); // two data blocks and completion
    expect(t.in8(0x1f7)).toBe(0x50);
    expect(t.in8(0x1f3)).toBe(11); // the last sector reached
  });

  it('writes with WRITE MULTIPLE after SET MULTIPLE MODE, and rejects a bad multiple count', () => {
    const { t, disk } = setup();
    t.out8(0x1f6, 0xe0);
    t.out8(0x1f2, 3);
    t.out8(0x1f7, 0xc6);
    expect(t.in8(0x1f7) & 0x01).toBe(0x01); // 3 is not a power of two: aborted
    expect(t.in8(0x1f1)).toBe(0x04);
    t.out8(0x1f2, 4);
    t.out8(0x1f7, 0xc6);
    expect(t.in8(0x1f7)).toBe(0x50);
    t.out8(0x1f2, 8);
    t.out8(0x1f3, 100);
    t.out8(0x1f7, 0xc5);
    for (let block = 0; block < 2; block++) {
      expect(t.in8(0x1f7) & 0x08).toBe(0x08);
      for (let i = 0; i < 4 * 256; i++) t.out16(0x1f0, 0xbeef);
    }
    expect(t.in8(0x1f7)).toBe(0x50);
    expect(disk[100 * 512]).toBe(0xef);
    expect(disk[108 * 512 - 1]).toBe(0xbe);
    expect(disk[108 * 512]).toBe((108 * 7) & 0xff); // untouched after the 8 sectors
  });

  it('reads by bus-master DMA through a two-entry PRD table with READ DMA EXT', () => {
    const { t, disk } = setup();
    // PRD table at 0x1000: 1 KiB to 0x20000, then 1 KiB to 0x30000 (end of table).
    const prd = new DataView(t.ram.buffer, 0x1000, 16);
    prd.setUint32(0, 0x20000, true);
    prd.setUint32(4, 1024, true);
    prd.setUint32(8, 0x30000, true);
    prd.setUint32(12, 0x80000000 | 1024, true);
    t.out32(BMIBA + 4, 0x1000);
    t.out8(0x1f6, 0x40);
    // 48-bit: sector count and LBA written twice, the high bytes first.
    for (const [port, hi, lo] of [[0x1f2, 0, 4], [0x1f3, 0, 0x20], [0x1f4, 0, 3], [0x1f5, 0, 0]] as const) {
      t.out8(port, hi);
      t.out8(port, lo);
    }
    t.out8(0x3f6, 0x80); // HOB: read back the high bytes
    expect(t.in8(0x1f2)).toBe(0);
    t.out8(0x3f6, 0x00);
    t.out8(0x1f7, 0x25);
    t.out8(BMIBA, 0x09); // start, device to memory
    expect(t.in8(BMIBA + 2) & 0x07).toBe(0x04); // interrupt, not active, no error
    expect(t.irqLevel(14)).toBe(1);
    const lba = 0x320;
    expect(Array.from(t.ram.subarray(0x20000, 0x20400))).toEqual(Array.from(disk.subarray(lba * 512, lba * 512 + 1024)));
    expect(Array.from(t.ram.subarray(0x30000, 0x30400))).toEqual(Array.from(disk.subarray(lba * 512 + 1024, lba * 512 + 2048)));
    t.out8(BMIBA + 2, 0x04); // write 1 to clear
    expect(t.in8(BMIBA + 2) & 0x04).toBe(0);
    expect(t.in8(0x1f7)).toBe(0x50);
    expect(t.stats('ide').dmaBytesWritten).toBe(2048);
  });

  it('aborts an unknown command and a read past the end of the disk', () => {
    const { t } = setup();
    t.out8(0x1f6, 0xe0);
    t.out8(0x1f7, 0xfe);
    expect(t.in8(0x1f7)).toBe(0x51);
    expect(t.in8(0x1f1)).toBe(0x04);
    t.out8(0x1f2, 1);
    t.out8(0x1f3, 0);
    t.out8(0x1f4, 0x10); // LBA 0x1000 > 2048 sectors
    t.out8(0x1f7, 0x20);
    expect(t.in8(0x1f7) & 0x01).toBe(1);
  });

  it('shows nothing for the absent slave, and SRST restores the signature', () => {
    const { t } = setup();
    t.out8(0x1f6, 0xb0);
    expect(t.in8(0x1f7)).toBe(0);
    t.out8(0x1f6, 0xa0);
    t.out8(0x1f2, 0x55);
    t.out8(0x3f6, 0x04);
    expect(t.in8(0x3f6) & 0x80).toBe(0x80); // busy during reset
    t.out8(0x3f6, 0x00);
    expect([t.in8(0x1f2), t.in8(0x1f3), t.in8(0x1f4), t.in8(0x1f5), t.in8(0x1f7)]).toEqual([1, 1, 0, 0, 0x50]);
  });
});

describe('PIIX3 IDE: ATAPI CD-ROM on the secondary channel', () => {
  /** Send a 12-byte packet; returns the status after the packet phase. */
  function packet(t: T, bytes: number[], byteLimit = 0xfffe, dma = false): number {
    t.out8(0x176, 0xa0);
    t.out8(0x171, dma ? 1 : 0);
    t.out8(0x174, byteLimit & 0xff);
    t.out8(0x175, byteLimit >> 8);
    t.out8(0x177, 0xa0);
    expect(t.in8(0x177) & 0x08).toBe(0x08);
    expect(t.in8(0x172) & 3).toBe(1); // CoD: the drive wants the packet
    const p = [...bytes, ...new Array(12 - bytes.length).fill(0)];
    for (let i = 0; i < 12; i += 2) t.out16(0x170, p[i] | (p[i + 1] << 8));
    return t.in8(0x177);
  }
  /** Read the DRQ blocks of a data-in packet command. */
  function readData(t: T): { data: number[]; blocks: number } {
    const data: number[] = [];
    let blocks = 0;
    while (t.in8(0x376) & 0x08) { // alternate status
      const n = t.in8(0x174) | (t.in8(0x175) << 8);
      expect(t.in8(0x172) & 3).toBe(2); // IO: data to the host
      for (let i = 0; i < n; i += 2) {
        const w = t.in16(0x170);
        data.push(w & 0xff, w >> 8);
      }
      blocks++;
    }
    return { data, blocks };
  }

  it('has the packet signature and answers IDENTIFY PACKET DEVICE (IDENTIFY DEVICE aborts)', () => {
    const { t } = setup();
    t.out8(0x176, 0xa0);
    expect([t.in8(0x174), t.in8(0x175)]).toEqual([0x14, 0xeb]);
    t.out8(0x177, 0xec);
    expect(t.in8(0x177) & 0x01).toBe(1);
    t.out8(0x177, 0xa1);
    const w = readWords(t, 0x170, 256);
    expect(w[0]).toBe(0x85c0);
    expect(ataString(w, 27, 20)).toBe('TRAPDOOR ATAPI CD-ROM');
  });

  it('answers INQUIRY and READ CAPACITY', () => {
    const { t } = setup();
    packet(t, [0x12, 0, 0, 0, 36]);
    const inq = readData(t).data;
    expect(inq[0]).toBe(5);
    expect(String.fromCharCode(...inq.slice(8, 16))).toBe('TRAPDOOR');
    expect(t.in8(0x177)).toBe(0x40);
    expect(t.in8(0x172) & 3).toBe(3); // command complete
    packet(t, [0x25]);
    const cap = readData(t).data;
    expect(cap).toEqual([0, 0, 0, 63, 0, 0, 8, 0]);
  });

  it('reads sectors with READ(10) in byte-count-limited PIO blocks', () => {
    const { t } = setup();
    packet(t, [0x28, 0, 0, 0, 0, 5, 0, 0, 2], 2048);
    const { data, blocks } = readData(t);
    expect(blocks).toBe(2);
    const cd = patternDisk(64, 2048);
    expect(data).toEqual(Array.from(cd.subarray(5 * 2048, 7 * 2048)));
    expect(t.in8(0x177)).toBe(0x40);
  });

  it('reads sectors with READ(10) by DMA', () => {
    const { t } = setup();
    const prd = new DataView(t.ram.buffer, 0x1000, 8);
    prd.setUint32(0, 0x40000, true);
    prd.setUint32(4, 0x80000000 | 4096, true);
    t.out32(BMIBA + 8 + 4, 0x1000);
    packet(t, [0x28, 0, 0, 0, 0, 3, 0, 0, 2], 0xfffe, true);
    t.out8(BMIBA + 8, 0x09);
    expect(t.in8(BMIBA + 8 + 2) & 0x07).toBe(0x04);
    expect(t.irqLevel(15)).toBe(1);
    const cd = patternDisk(64, 2048);
    expect(Array.from(t.ram.subarray(0x40000, 0x41000))).toEqual(Array.from(cd.subarray(3 * 2048, 5 * 2048)));
    expect(t.in8(0x177)).toBe(0x40);
  });

  it('reports CHECK CONDITION with sense data: no medium, a bad LBA, an unknown command', () => {
    const { t } = setup({ cd: null });
    expect(packet(t, [0x00]) & 0x01).toBe(1);
    expect(t.in8(0x171) >> 4).toBe(2); // NOT READY
    packet(t, [0x03, 0, 0, 0, 18]);
    const sense = readData(t).data;
    expect([sense[2] & 0xf, sense[12]]).toEqual([2, 0x3a]); // medium not present
    const { t: t2 } = setup();
    expect(packet(t2, [0x28, 0, 0, 0, 1, 0, 0, 0, 1]) & 0x01).toBe(1);
    expect(t2.in8(0x171) >> 4).toBe(5); // ILLEGAL REQUEST
    expect(packet(t2, [0xee]) & 0x01).toBe(1);
  });
});
