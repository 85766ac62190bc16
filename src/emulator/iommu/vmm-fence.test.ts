import { describe, expect, it } from 'vitest';
import { createTestBus } from '../bus/test-harness.ts';
import { VmmFence } from './vmm-fence.ts';
import { IntelIommu } from './vtd.ts';
import { enableTranslation, VtdTables } from './vtd-test-tables.ts';

describe('the VMM fence', () => {
  function fenced(ramBytes = 8 << 20) {
    const t = createTestBus({ ramBytes });
    const fence = new VmmFence({ ramBytes, clock: t.bus.clock });
    const row = t.bus.stats.add({ name: 'assigned' });
    const dev = t.bus.context(row, 'assigned');
    t.bus.setDmaTranslate(row, fence.translator('assigned'));
    return { t, fence, dev };
  }

  it("maps exactly the guest's RAM, identity", () => {
    const { t, fence, dev } = fenced();
    expect(dev.dma.write(0x1000, Uint8Array.of(1, 2))).toBe(true);
    expect(dev.dma.write((8 << 20) - 2, Uint8Array.of(3, 4))).toBe(true);
    expect([...t.ram.subarray(0x1000, 0x1002)]).toEqual([1, 2]);
    expect(t.ram[(8 << 20) - 1]).toBe(4);
    expect(dev.dma.read(0x9f000, new Uint8Array(4096))).toBe(true);
    expect(fence.log).toHaveLength(0);
  });

  const refused: [string, number, string][] = [
    ['the VGA window', 0xa0000, 'legacy VGA/ROM hole'],
    ['the BIOS shadow below 1 MiB', 0xf0000, 'legacy VGA/ROM hole'],
    ['beyond RAM', 8 << 20, 'beyond guest RAM'],
    ['a PCI MMIO hole', 0xe0000000, 'beyond guest RAM'],
    ['the BIOS at the top of 4 GiB', 0xfffff000, 'beyond guest RAM'],
    ['the local APIC', 0xfee00000, 'beyond guest RAM'],
  ];
  for (const [what, addr, reason] of refused) {
    it(`refuses ${what} and records it in its own log`, () => {
      const { t, fence, dev } = fenced();
      const before = t.bus.memory.read8(addr);
      expect(dev.dma.write(addr, Uint8Array.of(0x5a))).toBe(false);
      expect(t.bus.memory.read8(addr)).toBe(before);
      expect(fence.log).toEqual([{ atNs: 0, device: 'assigned', addr, write: true, reason }]);
      expect(fence.counters.refused).toBe(1);
      expect(t.stats('assigned').dmaFaults).toBe(1);
    });
  }

  it('a transfer that runs off the end of RAM stops at the first page outside it', () => {
    const { t, fence, dev } = fenced();
    const buf = new Uint8Array(8192).fill(7);
    expect(dev.dma.write((8 << 20) - 4096, buf)).toBe(false);
    expect(t.ram[(8 << 20) - 1]).toBe(7);
    expect(fence.log[0].addr).toBe(8 << 20);
  });

  it("behind the guest's VT-d: the guest's translation first, its faults in the guest's records, the VMM's refusals in the fence's log", () => {
    const t = createTestBus({ ramBytes: 8 << 20 });
    const iommu = new IntelIommu({ ramBytes: t.ram.length });
    t.attach(iommu);
    const fence = new VmmFence({ ramBytes: t.ram.length });
    const row = t.bus.stats.add({ name: 'assigned' });
    const dev = t.bus.context(row, 'assigned');
    t.bus.setDmaTranslate(row, fence.behind(iommu.translator(0x30), 'assigned'));
    const tables = new VtdTables(t.ram, 0x100000, 0x101000);
    const slpt = tables.setContext(tables.setRoot(0), 0x30, 2);
    tables.map(slpt, 0x1000, 0x300000);
    tables.map(slpt, 0x2000, 0xc0000); // the guest maps the VGA window: the VMM refuses it
    enableTranslation(t, 0x100000);
    expect(dev.dma.write(0x1000, Uint8Array.of(9))).toBe(true);
    expect(t.ram[0x300000]).toBe(9);
    expect(dev.dma.write(0x2000, Uint8Array.of(9))).toBe(false);
    expect(fence.log.map((f) => f.addr)).toEqual([0xc0000]);
    expect(iommu.describe().records).toHaveLength(0);
    expect(dev.dma.write(0x3000, Uint8Array.of(9))).toBe(false);
    expect(iommu.describe().records).toHaveLength(1);
    expect(fence.log).toHaveLength(1);
  });
});
