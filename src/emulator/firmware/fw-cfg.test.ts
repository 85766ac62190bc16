/** fw_cfg as SeaBIOS uses it (the spirit of QEMU's fw_cfg-test): signature, ID, files, DMA. */
import { describe, expect, it } from 'vitest';
import { FwCfg, FW_CFG } from './fw-cfg.ts';
import { PlatformBus } from '../bus/platform-bus.ts';

const byteSwap = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

function setup() {
  const bus = new PlatformBus(2 << 20);
  const fw = new FwCfg();
  fw.addItem(FW_CFG.NB_CPUS, Uint8Array.of(1, 0));
  fw.addFile('etc/e820', new Uint8Array(20).fill(0xab));
  fw.addFile('bootorder', new TextEncoder().encode('/rom@genroms/linuxboot.bin\n'));
  bus.attach(fw);
  const readItem = (key: number, n: number) => {
    bus.io.out16(0x510, key);
    return Array.from({ length: n }, () => bus.io.in8(0x511));
  };
  return { bus, fw, readItem };
}

describe('FwCfg', () => {
  it('reads "QEMU" and an ID with the DMA bit; past the end reads 0', () => {
    const { readItem } = setup();
    expect(String.fromCharCode(...readItem(FW_CFG.SIGNATURE, 4))).toBe('QEMU');
    expect(readItem(FW_CFG.ID, 4)).toEqual([3, 0, 0, 0]);
    expect(readItem(FW_CFG.NB_CPUS, 3)).toEqual([1, 0, 0]);
  });

  it('lists files in name order in the big-endian directory', () => {
    const { readItem } = setup();
    const dir = Uint8Array.from(readItem(FW_CFG.FILE_DIR, 4 + 2 * 64));
    const view = new DataView(dir.buffer);
    expect(view.getUint32(0, false)).toBe(2);
    const name = (i: number) => new TextDecoder().decode(dir.subarray(4 + i * 64 + 8, 4 + i * 64 + 64)).replace(/\0+$/, '');
    expect([name(0), name(1)]).toEqual(['bootorder', 'etc/e820']);
    expect(view.getUint32(4 + 64, false)).toBe(20);
    const key = view.getUint16(4 + 64 + 4, false);
    expect(readItem(key, 2)).toEqual([0xab, 0xab]);
  });

  it('answers the DMA signature and runs select+read descriptors, clearing control', () => {
    const { bus } = setup();
    expect(String.fromCharCode(...Array.from({ length: 8 }, (_, i) => bus.io.in8(0x514 + i)))).toBe('QEMU CFG');
    const mem = bus.memory;
    const desc = 0x1000;
    const dest = 0x2000;
    const put32be = (a: number, v: number) => { for (let i = 0; i < 4; i++) mem.write8(a + i, (v >>> (24 - 8 * i)) & 0xff); };
    put32be(desc, (FW_CFG.SIGNATURE << 16) | 0x08 | 0x02); // select + read
    put32be(desc + 4, 6);
    put32be(desc + 8, 0);
    put32be(desc + 12, dest);
    // SeaBIOS writes the high half then the low half, each as a big-endian dword.
    bus.io.out32(0x514, 0);
    bus.io.out32(0x518, byteSwap(desc));
    expect(Array.from({ length: 6 }, (_, i) => mem.read8(dest + i))).toEqual([0x51, 0x45, 0x4d, 0x55, 0, 0]);
    expect(mem.read32(desc)).toBe(0);
    expect(bus.stats.snapshot().devices[0].dmaBytesWritten).toBeGreaterThan(0);
  });
});
