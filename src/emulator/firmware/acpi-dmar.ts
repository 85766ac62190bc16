/**
 * The ACPI DMA Remapping table (Intel VT-d specification §8.1 "DMA Remapping Reporting
 * Structure", §8.3 "DRHD"): how a guest finds the remapping unit. One DRHD at the unit's
 * base with INCLUDE_PCI_ALL (it covers every PCI device of segment 0), host address width
 * 39 bits, no interrupt remapping. Given to SeaBIOS as the fw_cfg file `acpi/dmar`:
 * SeaBIOS appends every `acpi/*` file to the tables it builds itself (as for QEMU's
 * machines that predate its table loader), and links it from the RSDT.
 */
import { VTD_BASE, VTD_HAW } from '../iommu/vtd-regs.ts';

/** Flags of the DMAR header (§8.1): bit 0 INTR_REMAP, bit 1 X2APIC_OPT_OUT, bit 2 DMA_CTRL_PLATFORM_OPT_IN. */
export const DMAR_FLAGS = 0;
/** DRHD flags (§8.3): bit 0 INCLUDE_PCI_ALL. */
export const DRHD_INCLUDE_PCI_ALL = 1;

const HEADER = 36;
const DMAR_FIXED = HEADER + 12;
const DRHD_LENGTH = 16;

/** The DMAR table as bytes, with its checksum (all bytes sum to 0 mod 256). */
export function buildDmar(options: { base?: number; hostAddressWidth?: number } = {}): Uint8Array {
  const base = options.base ?? VTD_BASE;
  const haw = options.hostAddressWidth ?? VTD_HAW;
  const t = new Uint8Array(DMAR_FIXED + DRHD_LENGTH);
  const v = new DataView(t.buffer);
  const ascii = (at: number, s: string) => {
    for (let i = 0; i < s.length; i++) t[at + i] = s.charCodeAt(i);
  };
  // The ACPI system description table header (ACPI 6.4 §5.2.6).
  ascii(0, 'DMAR');
  v.setUint32(4, t.length, true);
  t[8] = 1; // revision
  ascii(10, 'TRAPDR'); // OEM ID (6)
  ascii(16, 'TRAPDOOR'); // OEM table ID (8)
  v.setUint32(24, 1, true); // OEM revision
  ascii(28, 'TRPD'); // creator ID
  v.setUint32(32, 1, true); // creator revision
  // Host address width is stored as N - 1; flags; 10 reserved bytes.
  t[36] = haw - 1;
  t[37] = DMAR_FLAGS;
  // DRHD: type 0, length, flags, size (2^0 pages: one 4 KiB window), segment 0, register base.
  const d = DMAR_FIXED;
  v.setUint16(d, 0, true);
  v.setUint16(d + 2, DRHD_LENGTH, true);
  t[d + 4] = DRHD_INCLUDE_PCI_ALL;
  t[d + 5] = 0;
  v.setUint16(d + 6, 0, true);
  v.setUint32(d + 8, base >>> 0, true);
  v.setUint32(d + 12, 0, true);
  let sum = 0;
  for (const b of t) sum += b;
  t[9] = (256 - (sum & 0xff)) & 0xff;
  return t;
}
