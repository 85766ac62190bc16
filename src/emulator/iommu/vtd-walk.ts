/**
 * The VT-d legacy-mode translation structures (Intel VT-d specification §3.4 and §9):
 * root table -> context table -> second-level page tables, walked for one request.
 * Pure functions over a reader of guest memory; the unit (vtd.ts) caches what they
 * return and records the faults. Every walk reads at most 1 root entry, 1 context entry
 * and 3 page-table entries: a table that points at itself or loops back is simply read as
 * the next level's table, so garbage can make a walk fault but never run on.
 *
 * Addresses are 39 bits (HAW); this PC's physical memory ends below 4 GiB, so a table
 * pointer with bits 38:32 set is an access error, as is one outside RAM (QEMU's
 * dma_memory_read fails there too): the unit never reads device registers as tables.
 */
import { CAP_SLLPS, VTD_FR } from './vtd-regs.ts';

/**
 * Read the 64-bit entry at guest-physical `addr` (8-byte aligned, below 4 GiB) into
 * out[0] (low dword) and out[1] (high dword); false when nothing answers there.
 */
export type QwordReader = (addr: number, out: Uint32Array) => boolean;

/** A present, valid, translate-type context entry (§9.3): what the context cache keeps. */
export interface VtdContext {
  /** Domain id (bits 87:72): the IOTLB's key with the page. */
  readonly did: number;
  /** Second-level page-table pointer (bits 63:12), below 4 GiB. */
  readonly slptptr: number;
  /** Fault processing disable (bit 1): faults through this context are not recorded. */
  readonly fpd: boolean;
  /** Second-level levels: 3 (AW = 1, 39 bits), the only width CAP.SAGAW offers. */
  readonly levels: number;
}

/** Root entry (§9.1): bits 11:1 reserved, bits 63:39 beyond HAW, the upper 64 bits reserved in legacy mode. */
const ROOT_RSVD_LO = 0xffe;
const ROOT_RSVD_HI = 0xffffff80;
/** Context entry (§9.3): low bits 11:4 reserved; high bit 7 and bits 63:24 reserved; DID bits beyond ND = 2 (8 bits) too. */
const CTX_RSVD_LO0 = 0xff0;
const CTX_RSVD_LO1 = 0xffffff80;
const CTX_RSVD_HI0 = 0xffff0080;
/** Second-level entries (§9.8): SNP bit 11 (no ECAP.SC), bits 51:39 beyond HAW, TM bit 62 (no ECAP.DT). */
const SLPTE_RSVD_LO = 0x800;
const SLPTE_RSVD_HI = 0x400fff80;
const SLPTE_R = 1;
const SLPTE_W = 2;
const SLPTE_PS = 1 << 7;

/**
 * The context entry for source id `sid` (bus << 8 | devfn) under the root table at
 * `rta` (bits 38:12 as lo/hi). Returns the context, or a fault reason (VTD_FR).
 */
export function walkContext(rtaLo: number, rtaHi: number, sid: number, read: QwordReader, e: Uint32Array): VtdContext | number {
  if (rtaHi !== 0) return VTD_FR.ROOT_TABLE_INV;
  const bus = sid >>> 8;
  const devfn = sid & 0xff;
  const rootAt = ((rtaLo & 0xfffff000) + bus * 16) >>> 0;
  if (!read(rootAt, e)) return VTD_FR.ROOT_TABLE_INV;
  const rootLo = e[0];
  const rootHi = e[1];
  if ((rootLo & 1) === 0) return VTD_FR.ROOT_ENTRY_P;
  if (!read(rootAt + 8, e)) return VTD_FR.ROOT_TABLE_INV;
  if ((rootLo & ROOT_RSVD_LO) !== 0 || (rootHi & ROOT_RSVD_HI) !== 0 || e[0] !== 0 || e[1] !== 0) return VTD_FR.ROOT_ENTRY_RSVD;
  if (rootHi !== 0) return VTD_FR.CONTEXT_TABLE_INV;
  const ctxAt = ((rootLo & 0xfffff000) + devfn * 16) >>> 0;
  if (!read(ctxAt, e)) return VTD_FR.CONTEXT_TABLE_INV;
  const lo0 = e[0];
  const lo1 = e[1];
  if ((lo0 & 1) === 0) return VTD_FR.CONTEXT_ENTRY_P;
  if (!read(ctxAt + 8, e)) return VTD_FR.CONTEXT_TABLE_INV;
  const hi0 = e[0];
  const hi1 = e[1];
  if ((lo0 & CTX_RSVD_LO0) !== 0 || (lo1 & CTX_RSVD_LO1) !== 0 || (hi0 & CTX_RSVD_HI0) !== 0 || hi1 !== 0) return VTD_FR.CONTEXT_ENTRY_RSVD;
  // TT (bits 3:2): 0 translates; 1 needs ECAP.DT, 2 needs ECAP.PT, 3 is reserved: none offered here.
  if (((lo0 >>> 2) & 3) !== 0) return VTD_FR.CONTEXT_ENTRY_TT;
  // AW (bits 66:64) = levels - 2; only 3 levels (AW 1) are in CAP.SAGAW.
  if ((hi0 & 7) !== 1) return VTD_FR.CONTEXT_ENTRY_INV;
  // A table above 4 GiB cannot be read on this machine: the walk will fault at level 3.
  return { did: (hi0 >>> 8) & 0xff, slptptr: lo1 === 0 ? (lo0 & 0xfffff000) >>> 0 : -1 >>> 0, fpd: (lo0 & 2) !== 0, levels: 3 };
}

/**
 * Walk the second-level tables of `ctx` for the page holding `addr` (§3.7, §9.8).
 * Returns the physical page address with the entry's rights in bits 1:0 (1 read, 2 write,
 * the AND of every level's), or the negated fault reason. `write` picks which right must
 * be there (reason 5 or 6 when it is not, as for an entry with neither: not present).
 */
export function walkPages(ctx: VtdContext, addr: number, write: boolean, read: QwordReader, e: Uint32Array): number {
  const need = write ? SLPTE_W : SLPTE_R;
  let table = ctx.slptptr;
  let rights = SLPTE_R | SLPTE_W;
  for (let level = ctx.levels; level >= 1; level--) {
    // Level 3 takes address bits 38:30; a 32-bit address has bits 38:32 clear.
    const shift = 12 + 9 * (level - 1);
    const index = shift >= 32 ? 0 : (addr >>> shift) & 0x1ff;
    if (table === (-1 >>> 0)) return -VTD_FR.PAGING_ENTRY_INV;
    if (!read((table + index * 8) >>> 0, e)) return -VTD_FR.PAGING_ENTRY_INV;
    const lo = e[0];
    const hi = e[1];
    if ((lo & SLPTE_RSVD_LO) !== 0 || (hi & SLPTE_RSVD_HI) !== 0) return -VTD_FR.PAGING_ENTRY_RSVD;
    // Super pages only if CAP.SLLPS offers them (it does not): PS above level 1 is then reserved.
    if (level > 1 && (lo & SLPTE_PS) !== 0 && CAP_SLLPS === 0) return -VTD_FR.PAGING_ENTRY_RSVD;
    rights &= lo & 3;
    if ((rights & need) === 0) return write ? -VTD_FR.WRITE : -VTD_FR.READ;
    table = hi === 0 ? (lo & 0xfffff000) >>> 0 : -1 >>> 0;
  }
  if (table === (-1 >>> 0)) return -VTD_FR.PAGING_ENTRY_INV;
  return (table | rights) >>> 0;
}
