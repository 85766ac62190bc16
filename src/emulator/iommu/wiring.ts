/**
 * Puts a machine's bus masters behind the guest's VT-d unit: every PCI function with its
 * own source id (bus << 8 | device << 3 | function, from the "00:01.1" the PCI bus gave
 * its statistics row), and the ISA DMA controller with the source id of the PIIX3's ISA
 * bridge (00:01.0), which is the PCI master for ISA DMA on this chipset.
 */
import type { PlatformBus } from '../bus/platform-bus.ts';
import type { IntelIommu } from './vtd.ts';

/** The PIIX3 ISA bridge at 00:01.0: the requester for ISA (8237) DMA. */
export const ISA_BRIDGE_SID = 0x0008;

/** "00:01.1" to a source id; null for anything else. */
export function sourceIdOf(bdf: string): number | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(bdf);
  if (!m) return null;
  const dev = parseInt(m[2], 16);
  if (dev > 31) return null;
  return (parseInt(m[1], 16) << 8) | (dev << 3) | Number(m[3]);
}

/** Give every PCI row of `bus` (and the rows in `isaDmaRows`) the unit's translation; returns the rows and their source ids. */
export function putBehindIommu(bus: PlatformBus, iommu: IntelIommu, isaDmaRows: number[]): { row: number; sid: number }[] {
  const placed: { row: number; sid: number }[] = [];
  bus.stats.devices.forEach((info, row) => {
    const sid = info.pci === undefined ? null : sourceIdOf(info.pci);
    if (sid === null) return;
    bus.setDmaTranslate(row, iommu.translator(sid));
    placed.push({ row, sid });
  });
  for (const row of isaDmaRows) {
    bus.setDmaTranslate(row, iommu.translator(ISA_BRIDGE_SID));
    placed.push({ row, sid: ISA_BRIDGE_SID });
  }
  return placed;
}
