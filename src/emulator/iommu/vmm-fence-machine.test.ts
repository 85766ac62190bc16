/**
 * The VMM's fence in the machine: a direct-assigned bus master (edu, here on the default
 * direct path) reaches guest RAM, and nothing else: a DMA beyond RAM is refused and lands
 * in the fence's own log, not in the guest's VT-d records, with or without the guest's unit.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../machine/machine.ts';
import { EDU, EDU_BUFFER, EDU_DMA_FROM_DEVICE, EDU_DMA_START } from '../devices/edu.ts';

const BAR = 0xfe000000;

function machineWithEdu(iommu: boolean) {
  // No CPU runs here: a BIOS of zeros is enough to build the PC.
  const m = createMachine({ memoryMiB: 16, bios: new Uint8Array(128 * 1024), boot: 'c', deterministic: true, blockCache: false, iommu, edu: true });
  const slot = Number.parseInt(m.bus.stats.devices[m.bus.rowOf(m.edu!)].pci!.slice(3, 5), 16);
  const cfg = (reg: number, v: number) => {
    m.bus.io.out32(0xcf8, (0x80000000 | (slot << 11) | reg) >>> 0);
    m.bus.io.out32(0xcfc, v);
  };
  cfg(0x10, BAR);
  cfg(0x04, 0x06); // memory decode, bus master
  const w = (off: number, v: number) => m.bus.memory.write32(BAR + off, v);
  const dma = (dst: number) => {
    w(EDU.DMA_SRC, EDU_BUFFER);
    w(EDU.DMA_DST, dst);
    w(EDU.DMA_COUNT, 16);
    w(EDU.DMA_CMD, EDU_DMA_START | EDU_DMA_FROM_DEVICE);
    m.bus.clock.advanceTo(m.bus.clock.now() + 10_000_000);
  };
  return { m, dma };
}

describe('the VMM fence on a direct-assigned device', () => {
  for (const iommu of [false, true]) {
    it(`lets edu's DMA into guest RAM and refuses it beyond RAM (guest VT-d ${iommu ? 'present, translation off' : 'absent'})`, () => {
      const { m, dma } = machineWithEdu(iommu);
      expect(m.paths.pathOf('edu')).toBe('direct');
      dma(0x8000);
      expect(m.vmmFence.describe().counters.refused).toBe(0);
      dma(0x08000000); // 128 MiB: beyond the 16 MiB of RAM (edu masks DMA addresses to 28 bits, as QEMU does)
      const fence = m.vmmFence.describe();
      expect(fence.counters.refused).toBeGreaterThan(0);
      expect(fence.faults[0]).toMatchObject({ device: 'edu', addr: 0x08000000, write: true, reason: 'beyond guest RAM' });
      // The guest's own fault records stay empty: the fence is the host's.
      if (m.iommu) expect(m.iommu.describe().records).toEqual([]);
      expect(m.bus.dmaFaults.some((f) => f.device === 'edu' && f.addr === 0x08000000)).toBe(true);
    });
  }
});
