/** Configuration mechanism #1, BAR sizing and decoding, PAM and PIRQ routing. */
import { describe, expect, it } from 'vitest';
import { PciBus } from './pci-bus.ts';
import { I440fxHostBridge } from './i440fx.ts';
import { Piix3IsaBridge } from './piix3.ts';
import { PlatformBus } from '../bus/platform-bus.ts';
import type { PciContext, PciDevice } from './pci-function.ts';

/** A minimal function with an I/O BAR, a memory BAR and INTA, like a NIC. */
class TestFunction implements PciDevice {
  readonly name = 'testfn';
  pciCtx!: PciContext;
  readonly regs = new Uint8Array(256);
  readonly pci = {
    vendorId: 0x10ec, deviceId: 0x8029, revision: 0, classCode: 0x020000, interruptPin: 1,
    bars: [
      { index: 0, kind: 'io' as const, size: 32, block: { read: (o: number) => this.regs[o], write: (o: number, _s: number, v: number) => { this.regs[o] = v; } } },
      { index: 1, kind: 'mem' as const, size: 4096, block: { read: (o: number) => this.regs[o & 0xff], write: () => {} } },
    ],
    rom: Uint8Array.of(0x55, 0xaa, 0x04),
  };
  attach(): void {}
  attachPci(ctx: PciContext): void { this.pciCtx = ctx; }
  reset(): void {}
  saveState() { return {}; }
  loadState(): void {}
}

function setup() {
  const bus = new PlatformBus(16 << 20);
  const pci = new PciBus(bus);
  const host = new I440fxHostBridge();
  host.onPam = (i, v) => bus.memory.setPam(i, v);
  const isa = new Piix3IsaBridge();
  isa.onPirq = (link, v) => pci.setPirq(link, v);
  pci.plug(host, 0);
  pci.plug(isa, 1);
  const fn = new TestFunction();
  pci.plug(fn, 3);
  const cfg = (slot: number, reg: number) => ((1 << 31) | (slot << 11) | reg) >>> 0;
  const read32 = (slot: number, reg: number) => { bus.io.out32(0xcf8, cfg(slot, reg)); return bus.io.in32(0xcfc) >>> 0; };
  const write32 = (slot: number, reg: number, v: number) => { bus.io.out32(0xcf8, cfg(slot, reg)); bus.io.out32(0xcfc, v); };
  return { bus, pci, fn, read32, write32, cfg };
}

describe('PciBus', () => {
  it('identifies the i440FX with QEMU\'s subsystem IDs and the PIIX3 as multi-function', () => {
    const { read32, bus, cfg } = setup();
    expect(read32(0, 0x00)).toBe(0x12378086);
    expect(read32(0, 0x2c)).toBe(0x11001af4);
    expect(read32(1, 0x00)).toBe(0x70008086);
    bus.io.out32(0xcf8, cfg(1, 0x0c));
    expect(bus.io.in8(0xcfe)).toBe(0x80);
    expect(read32(9, 0x00)).toBe(0xffffffff); // empty slot
    // Configuration cycles are counted on the function they reached.
    const rows = Object.fromEntries(bus.stats.snapshot().devices.map((d) => [d.name, d]));
    expect(rows.i440fx.configReads).toBe(2);
    expect(rows.piix3.configReads).toBe(2);
  });

  it('sizes and moves BARs, decoding them only with the command enables', () => {
    const { read32, write32, bus, fn } = setup();
    write32(3, 0x10, 0xffffffff);
    // 32 bytes of I/O space with every upper bit writable, as QEMU's BARs are: SeaBIOS sizes
    // a BAR as ~(value & ~3) + 1 with no 16-bit clamp, so upper bits wired to 0 read as a huge BAR.
    expect(read32(3, 0x10)).toBe(0xffffffe1);
    write32(3, 0x14, 0xffffffff);
    expect(read32(3, 0x14)).toBe(0xfffff000);
    write32(3, 0x10, 0xc001);
    write32(3, 0x14, 0xfebf0000);
    fn.regs[5] = 0x77;
    expect(bus.io.in8(0xc005)).toBe(0xff); // not decoded until I/O space is enabled
    write32(3, 0x04, 0x0103);
    expect(bus.io.in8(0xc005)).toBe(0x77);
    expect(bus.memory.read8(0xfebf0005)).toBe(0x77);
    write32(3, 0x10, 0xc101);
    expect(bus.io.in8(0xc005)).toBe(0xff);
    expect(bus.io.in8(0xc105)).toBe(0x77);
    // Expansion ROM BAR: size 2 KiB, enabled with bit 0.
    write32(3, 0x30, 0xfffff800);
    expect(read32(3, 0x30)).toBe(0xfffff800);
    write32(3, 0x30, 0xfeb00001);
    expect(bus.memory.read16(0xfeb00000)).toBe(0xaa55);
  });

  it('shadows the BIOS area through the PAM registers', () => {
    const { write32, bus } = setup();
    bus.memory.setBios(new Uint8Array(128 * 1024).fill(0x5a));
    expect(bus.memory.read8(0xf0000)).toBe(0x5a);
    write32(0, 0x58, 0x33333000); // PAM0 = 3: RAM read/write (SeaBIOS)
    write32(0, 0x5c, 0x33333333);
    bus.memory.write8(0xf0000, 0x11);
    expect(bus.memory.read8(0xf0000)).toBe(0x11);
    write32(0, 0x58, 0x11111000); // read-only
    bus.memory.write8(0xf0000, 0x22);
    expect(bus.memory.read8(0xf0000)).toBe(0x11);
  });

  it('routes INTA of slot 3 through PIRQ link C to the programmed ISA IRQ', () => {
    const { write32, fn, bus, pci } = setup();
    expect(pci.link(3 << 3, 1)).toBe(2); // (1 - 1 + 3 - 1) & 3
    write32(1, 0x60, 0x0b0b0a0a); // PIRQA-D = 10, 10, 11, 11 (SeaBIOS)
    fn.pciCtx.intx.raise();
    expect(bus.irqLevels[11]).toBe(1);
    fn.pciCtx.intx.lower();
    expect(bus.irqLevels[11]).toBe(0);
    fn.pciCtx.intx.raise();
    write32(1, 0x60, 0x0b050a0a); // reroute link C to IRQ 5 while asserted
    expect(bus.irqLevels[11]).toBe(0);
    expect(bus.irqLevels[5]).toBe(1);
  });

  it('describes each function for the machine view: BARs as programmed, INTx link and routed IRQ', () => {
    const { pci, write32 } = setup();
    write32(3, 0x10, 0xc001);
    write32(3, 0x04, 0x0001); // I/O decode only
    pci.setPirq(2, 0x0b); // slot 3 INTA -> link C -> IRQ 11
    const { functions, pirq } = pci.describe();
    expect(functions.map((f) => f.bdf)).toEqual(['00:00.0', '00:01.0', '00:03.0']);
    const nic = functions[2];
    expect(nic).toMatchObject({ name: 'testfn', vendorId: 0x10ec, deviceId: 0x8029, classCode: 0x020000, interruptPin: 1, link: 'C', irq: 11 });
    expect(nic.bars).toEqual([
      { index: 0, kind: 'io', base: 0xc000, size: 32, decoded: true },
      { index: 1, kind: 'mem', base: 0, size: 4096, decoded: false },
    ]);
    expect(pirq).toEqual([{ link: 'A', irq: null }, { link: 'B', irq: null }, { link: 'C', irq: 11 }, { link: 'D', irq: null }]);
  });
});

