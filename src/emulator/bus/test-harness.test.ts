import { describe, expect, it } from 'vitest';
import { createTestBus } from './test-harness.ts';
import type { Device, DeviceContext, IrqLine } from './device.ts';
import type { PciContext, PciDevice, PciFunctionSpec } from '../pci/pci-function.ts';

/** A toy timer device: port 0x300 arms a one-shot of N µs that raises IRQ 5; 0x301 DMAs 4 bytes. */
class ToyTimer implements Device {
  readonly name = 'toy';
  private irq!: IrqLine;
  attach(ctx: DeviceContext): void {
    this.irq = ctx.irq(5);
    ctx.mapPorts(0x300, 2, {
      read: (off) => (off === 0 ? 0x42 : 0xff),
      write: (off, _size, v) => {
        if (off === 0) ctx.clock.setTimer(ctx.clock.now() + v * 1000, () => this.irq.raise());
        else {
          const buf = new Uint8Array(4);
          ctx.dma.read(0x1000, buf);
          ctx.dma.write(0x2000, buf.reverse());
          this.irq.lower();
        }
      },
    });
    ctx.mapMmio(0xfe000000, 0x1000, { read: (off, size) => (size === 4 ? 0x11223344 : off), write: () => {} });
  }
  reset(): void {}
  saveState() { return {}; }
  loadState(): void {}
}

describe('createTestBus', () => {
  it('dispatches ports and MMIO, runs timers on virtual time, records IRQs and counts DMA', () => {
    const t = createTestBus();
    t.attach(new ToyTimer());
    expect(t.in8(0x300)).toBe(0x42);
    expect(t.in8(0x302)).toBe(0xff); // unclaimed
    expect(t.mmioRead32(0xfe000010)).toBe(0x11223344);
    t.out8(0x300, 10); // 10 µs
    t.advance(9_999);
    expect(t.irqLevel(5)).toBe(0);
    t.advance(1);
    expect(t.irqLevel(5)).toBe(1);
    expect(t.irqLog).toEqual([{ line: 5, level: true, atNs: 10_000 }]);
    t.ram.set([1, 2, 3, 4], 0x1000);
    t.out8(0x301, 0);
    expect(Array.from(t.ram.subarray(0x2000, 0x2004))).toEqual([4, 3, 2, 1]);
    expect(t.irqLevel(5)).toBe(0);
    const s = t.stats('toy');
    expect([s.portReads, s.portWrites, s.mmioReads, s.dmaBytesRead, s.dmaBytesWritten, s.irqs]).toEqual([1, 2, 1, 4, 4, 1]);
    expect(t.bus.stats.devices.find((d) => d.name === 'toy')?.irq).toEqual([5]);
  });

  it('wire-ORs lines driven by several devices and by the test', () => {
    const t = createTestBus();
    const a = t.context('a').irq(9);
    a.raise();
    t.raise(9);
    a.lower();
    expect(t.irqLevel(9)).toBe(1);
    t.lower(9);
    expect(t.irqLevel(9)).toBe(0);
    expect(t.irqEdges(9)).toBe(1);
  });

  it('plugs a PCI function whose BAR is programmed through 0xCF8/0xCFC', () => {
    const t = createTestBus();
    let intx!: PciContext;
    const regs = new Uint8Array(16);
    const spec: PciFunctionSpec = {
      vendorId: 0x8086, deviceId: 0x7113, revision: 3, classCode: 0x068000, interruptPin: 1,
      bars: [{ index: 4, kind: 'io', size: 16, block: { read: (o) => regs[o], write: (o, _s, v) => { regs[o] = v; } } }],
    };
    const fn: PciDevice = { name: 'pm', pci: spec, attach() {}, attachPci(c) { intx = c; }, reset() {}, saveState: () => ({}), loadState() {} };
    t.plugPci(fn, 1, 3);
    expect(t.cfgRead32(1, 3, 0)).toBe(0x71138086);
    t.cfgWrite32(1, 3, 0x20, 0xb101);
    t.cfgWrite(1, 3, 0x04, 2, 0x0001);
    t.out8(0xb102, 0x5a);
    expect(regs[2]).toBe(0x5a);
    // INTA of slot 1 is PIRQA by the swizzle; its route is disabled until programmed.
    intx.intx.raise();
    expect(t.irqLog).toEqual([]);
    t.pci.setPirq(0, 10);
    expect(t.irqLevel(10)).toBe(1);
  });

  it('puts DMA behind an IOMMU translation and the PCI bus-master enable, counting faults', () => {
    const t = createTestBus();
    const toy = new ToyTimer();
    t.attach(toy);
    const row = t.bus.rowOf(toy);
    // Remap DMA page 0x2000 to 0x5000; everything else faults.
    t.bus.setDmaTranslate(row, (addr) => ((addr & ~0xfff) === 0x2000 ? 0x5000 | (addr & 0xfff) : (addr & ~0xfff) === 0x1000 ? addr : -1));
    t.ram.set([1, 2, 3, 4], 0x1000);
    t.out8(0x301, 0);
    expect(Array.from(t.ram.subarray(0x5000, 0x5004))).toEqual([4, 3, 2, 1]);
    t.bus.setDmaTranslate(row, () => -1);
    t.out8(0x301, 0);
    expect(t.stats('toy').dmaFaults).toBe(2); // its read and its write
    expect(t.bus.dmaFaults).toEqual([
      { device: 'toy', addr: 0x1000, write: false, reason: 'translation' },
      { device: 'toy', addr: 0x2000, write: true, reason: 'translation' },
    ]);

    // A PCI function cannot master the bus until its command register says so.
    let ctx!: DeviceContext;
    const fn: PciDevice = {
      name: 'nic', pci: { vendorId: 0x10ec, deviceId: 0x8029, revision: 0, classCode: 0x020000, interruptPin: 1, bars: [] },
      attach(c) { ctx = c; }, attachPci() {}, reset() {}, saveState: () => ({}), loadState() {},
    };
    t.plugPci(fn, 3);
    expect(ctx.dma.write(0x6000, Uint8Array.of(1))).toBe(false);
    expect(t.bus.dmaFaults.at(-1)?.reason).toBe('bus-master-disabled');
    t.cfgWrite(3, 0, 0x04, 2, 0x0004);
    expect(ctx.dma.write(0x6000, Uint8Array.of(1))).toBe(true);
    expect(t.ram[0x6000]).toBe(1);
  });
});
