/**
 * The register map of the VT-d DMA-remapping unit as data (Intel VT-d specification rev
 * 1.3+, chapter 10 "Register Descriptions"): each register's offset, width, reset value
 * and which bits software may write (plain, or write-1-to-clear). The unit keeps its
 * registers as 1024 dwords; a write merges through these masks and then the unit acts on
 * the registers with side effects (GCMD, CCMD, IOTLB, FSTS, FECTL, the fault records).
 *
 * 64-bit registers are two dwords here because 32-bit Linux writes them that way
 * (io-64-nonatomic-lo-hi.h: the low dword, then the high one): the command bits of
 * CCMD (ICC, bit 63) and IOTLB (IVT, bit 63) are in the high dword, so the unit acts on
 * the high write with the low dword already latched.
 */

/** Where QEMU's intel-iommu sits, and the DRHD of our DMAR points to. */
export const VTD_BASE = 0xfed90000;
export const VTD_WINDOW = 0x1000;

/** Host/guest address width: 39 bits, 3-level second-level tables (CAP.SAGAW bit 1). */
export const VTD_HAW = 39;
/** Fault-recording registers (CAP.NFR + 1) and where they start (CAP.FRO * 16, QEMU's 0x220). */
export const VTD_NFR = 8;
export const VTD_FRCD = 0x220;
/** IOTLB registers at ECAP.IRO * 16 (QEMU's 0xF0): IVA, then IOTLB at +8. */
export const VTD_IRO = 0xf0;
/** Maximum address-mask value for page-selective IOTLB invalidation (CAP.MAMV). */
export const VTD_MAMV = 18;

/** Register offsets (VT-d spec §10.4). */
export const VTD = {
  VER: 0x00, CAP: 0x08, ECAP: 0x10, GCMD: 0x18, GSTS: 0x1c, RTADDR: 0x20, CCMD: 0x28,
  FSTS: 0x34, FECTL: 0x38, FEDATA: 0x3c, FEADDR: 0x40, FEUADDR: 0x44, AFLOG: 0x58,
  PMEN: 0x64, PLMBASE: 0x68, PLMLIMIT: 0x6c, PHMBASE: 0x70, PHMLIMIT: 0x78,
  IVA: VTD_IRO, IOTLB: VTD_IRO + 8,
} as const;

/** GCMD / GSTS bits (§10.4.4, §10.4.5). */
export const GCMD_TE = 1 << 31;
export const GCMD_SRTP = 1 << 30;
export const GCMD_SFL = 1 << 29;
export const GCMD_EAFL = 1 << 28;
export const GCMD_WBF = 1 << 27;
export const GCMD_QIE = 1 << 26;
export const GCMD_IRE = 1 << 25;
export const GCMD_SIRTP = 1 << 24;
export const GCMD_CFI = 1 << 23;
export const GSTS_TES = 1 << 31;
export const GSTS_RTPS = 1 << 30;
export const GSTS_WBFS = 1 << 27;

/** CCMD high dword (bits 63:32): ICC 63, CIRG 62:61, CAIG 60:59, FM 33:32 (§10.4.7). */
export const CCMD_HI_ICC = 1 << 31;
export const CCMD_HI_CIRG_SHIFT = 29;
export const CCMD_HI_CAIG_SHIFT = 27;
/** IOTLB high dword (bits 63:32): IVT 63, IIRG 61:60, IAIG 58:57, DR 49, DW 48, DID 47:32 (§10.4.8.1). */
export const IOTLB_HI_IVT = 1 << 31;
export const IOTLB_HI_IIRG_SHIFT = 28;
export const IOTLB_HI_IAIG_SHIFT = 25;

/** FSTS (§10.4.9): PFO 0 (RW1C), PPF 1 (RO, any FRCD.F), FRI 15:8. */
export const FSTS_PFO = 1 << 0;
export const FSTS_PPF = 1 << 1;
export const FSTS_FRI_SHIFT = 8;
/** FECTL (§10.4.10): IM 31, IP 30. */
export const FECTL_IM = 1 << 31;
export const FECTL_IP = 1 << 30;
/** The fourth dword of a fault record (bits 127:96): F 127 (RW1C), T 126 (1 = read), FR 103:96. */
export const FRCD_HI_F = 1 << 31;
export const FRCD_HI_T = 1 << 30;

/**
 * CAP (§10.4.2), as 32-bit halves:
 *  low:  ND 2:0 = 2 (256 domains), AFL/RWBF/PLMR/PHMR/CM = 0 (not-present entries are
 *        never cached, so software need not invalidate when it fills one), SAGAW 12:8 =
 *        0b00010 (39-bit, 3-level), MGAW 21:16 = 38 (39 bits), ZLR 22 = 0, FRO 33:24 = 0x22.
 *  high: SLLPS 37:34 = 0 (no super pages), PSI 39 = 1 (page-selective invalidation),
 *        NFR 47:40 = 7 (8 records), MAMV 53:48 = 18, DWD 54 = DRD 55 = 1 (drains accepted;
 *        every request completes at once anyway), FL1GP/PI/FL5LP = 0.
 */
export const CAP_LO = ((VTD_FRCD / 16) << 24 | (VTD_HAW - 1) << 16 | 0b00010 << 8 | 2) >>> 0;
export const CAP_HI = ((1 << 23) | (1 << 22) | (VTD_MAMV << 16) | ((VTD_NFR - 1) << 8) | (1 << 7) | ((VTD_FRCD / 16) >>> 8)) >>> 0;
/** CAP.SLLPS: super-page sizes (2 MiB bit 34, 1 GiB bit 35); none here, so PS = 1 in a table entry is a reserved bit. */
export const CAP_SLLPS = (CAP_HI >>> 2) & 0xf;

/**
 * ECAP (§10.4.3): C 0 = 1 — page-walk accesses snoop the CPU's caches, so Linux need not
 * CLFLUSH its table writes (this CPU has no CLFLUSH: CPUID.1:EDX bit 19 is clear in
 * cpu/system.ts); QI 1 = 0 (register-based invalidation), DT 2 = 0, IR 3 = 0 (32-bit
 * Linux has no IRQ remapping), EIM 4 = 0, PT 6 = 0 (no pass-through: TT = 2 faults),
 * SC 7 = 0, IRO 17:8 = 0xF (IOTLB registers at 0xF0), everything scalable-mode 0.
 */
export const ECAP_LO = (((VTD_IRO / 16) << 8) | 1) >>> 0;
export const ECAP_HI = 0;

export interface VtdRegister {
  readonly name: string;
  readonly offset: number;
  /** 4 or 8 bytes (an 8-byte register is two dwords here: `reset`, `writable`, `w1c` are [low, high]). */
  readonly width: 4 | 8;
  readonly reset: readonly number[];
  /** Bits a write stores. */
  readonly writable: readonly number[];
  /** Bits a write of 1 clears (RW1C). */
  readonly w1c: readonly number[];
  /** Why the register behaves so (the section of the spec), for the register test and the docs. */
  readonly note: string;
}

const r = (name: string, offset: number, width: 4 | 8, reset: number[], writable: number[], w1c: number[], note: string): VtdRegister => ({ name, offset, width, reset, writable, w1c, note });

/** Every register of the window; offsets not listed read 0 and ignore writes (reserved). */
export const VTD_REGISTERS: readonly VtdRegister[] = [
  r('VER', VTD.VER, 4, [0x10], [0], [0], '§10.4.1: major 1, minor 0'),
  r('CAP', VTD.CAP, 8, [CAP_LO, CAP_HI], [0, 0], [0, 0], '§10.4.2, read-only'),
  r('ECAP', VTD.ECAP, 8, [ECAP_LO, ECAP_HI], [0, 0], [0, 0], '§10.4.3, read-only'),
  // GCMD is write-only: it reads 0, a write is a command (the unit acts and updates GSTS).
  r('GCMD', VTD.GCMD, 4, [0], [0], [0], '§10.4.4, write-only: reads 0'),
  r('GSTS', VTD.GSTS, 4, [0], [0], [0], '§10.4.5, read-only status'),
  // RTADDR: root table address bits 38:12 (HAW 39); RTT/TTM bits 11:10 must stay 0 (legacy mode only).
  r('RTADDR', VTD.RTADDR, 8, [0, 0], [0xfffff000, 0x7f], [0, 0], '§10.4.6: latched by GCMD.SRTP'),
  // CCMD: DID 15:0, SID 31:16 | FM 33:32, CIRG 62:61, ICC 63 (CAIG 60:59 is the unit's answer).
  r('CCMD', VTD.CCMD, 8, [0, 0], [0xffffffff, 0xe0000003], [0, 0], '§10.4.7: acts when ICC is written in the high dword'),
  r('FSTS', VTD.FSTS, 4, [0], [0], [FSTS_PFO], '§10.4.9: PFO write-1-to-clear, PPF and FRI read-only'),
  r('FECTL', VTD.FECTL, 4, [FECTL_IM], [FECTL_IM], [0], '§10.4.10: IM writable (set at reset), IP read-only'),
  r('FEDATA', VTD.FEDATA, 4, [0], [0xffff], [0], '§10.4.11: interrupt data (bits 31:16 reserved without EIM)'),
  r('FEADDR', VTD.FEADDR, 4, [0], [0xfffffffc], [0], '§10.4.12: interrupt address, dword aligned'),
  r('FEUADDR', VTD.FEUADDR, 4, [0], [0xffffffff], [0], '§10.4.13: upper address (kept; ignored for delivery)'),
  r('AFLOG', VTD.AFLOG, 8, [0, 0], [0, 0], [0, 0], '§10.4.14: no advanced fault log (CAP.AFL = 0)'),
  r('PMEN', VTD.PMEN, 4, [0], [0], [0], '§10.4.16: no protected memory regions (CAP.PLMR = PHMR = 0): reads 0'),
  // IVA: ADDR 63:12, IH 6, AM 5:0.
  r('IVA', VTD.IVA, 8, [0, 0], [0xfffff07f, 0x7f], [0, 0], '§10.4.8.2: page-selective invalidation address'),
  // IOTLB: DID 47:32, DW 48, DR 49, IIRG 61:60, IVT 63 (IAIG 58:57 is the unit's answer).
  r('IOTLB', VTD.IOTLB, 8, [0, 0], [0, 0xb003ffff], [0, 0], '§10.4.8.1: acts when IVT is written in the high dword'),
  ...Array.from({ length: VTD_NFR }, (_, i) =>
    r(`FRCD${i}`, VTD_FRCD + i * 16, 8, [0, 0], [0, 0], [0, 0], '§10.4.15: fault record low half (fault address), read-only')),
  ...Array.from({ length: VTD_NFR }, (_, i) =>
    r(`FRCD${i}_HI`, VTD_FRCD + i * 16 + 8, 8, [0, 0], [0, 0], [0, FRCD_HI_F], '§10.4.15: source id, reason, T; F write-1-to-clear')),
];

/** Per dword of the window: reset value, writable bits, write-1-to-clear bits (built from VTD_REGISTERS). */
export const DWORD_RESET = new Uint32Array(VTD_WINDOW / 4);
export const DWORD_WRITABLE = new Uint32Array(VTD_WINDOW / 4);
export const DWORD_W1C = new Uint32Array(VTD_WINDOW / 4);
for (const reg of VTD_REGISTERS) {
  for (let i = 0; i < reg.width / 4; i++) {
    const d = reg.offset / 4 + i;
    DWORD_RESET[d] = reg.reset[i];
    DWORD_WRITABLE[d] = reg.writable[i];
    DWORD_W1C[d] = reg.w1c[i];
  }
}

/** Fault reasons (VT-d spec §7.2.3 table "Unrecoverable fault conditions", legacy mode). */
export const VTD_FR = {
  ROOT_ENTRY_P: 0x1,
  CONTEXT_ENTRY_P: 0x2,
  CONTEXT_ENTRY_INV: 0x3,
  ADDR_BEYOND_MGAW: 0x4,
  WRITE: 0x5,
  READ: 0x6,
  PAGING_ENTRY_INV: 0x7,
  ROOT_TABLE_INV: 0x8,
  CONTEXT_TABLE_INV: 0x9,
  ROOT_ENTRY_RSVD: 0xa,
  CONTEXT_ENTRY_RSVD: 0xb,
  PAGING_ENTRY_RSVD: 0xc,
  CONTEXT_ENTRY_TT: 0xd,
} as const;

/** A fault reason in words (the page's fault log, --stats, the docs). */
export const VTD_FR_TEXT: Record<number, string> = {
  0x1: 'root entry not present',
  0x2: 'context entry not present',
  0x3: 'context entry invalid (address width not supported)',
  0x4: 'address beyond the guest address width',
  0x5: 'write not permitted',
  0x6: 'read not permitted',
  0x7: 'page-table entry could not be read',
  0x8: 'root table could not be read',
  0x9: 'context table could not be read',
  0xa: 'reserved bit set in root entry',
  0xb: 'reserved bit set in context entry',
  0xc: 'reserved bit set in page-table entry',
  0xd: 'translation type not supported',
};
