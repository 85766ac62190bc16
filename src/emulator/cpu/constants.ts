/** Architectural constants named as the Intel SDM names them. */

// Segment registers in the order the ModRM/Sreg encoding uses (SDM vol.2 §3.1.1.3, table 3-6? "Sreg").
export const ES = 0;
export const CS = 1;
export const SS = 2;
export const DS = 3;
export const FS = 4;
export const GS = 5;
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;

// General registers in encoding order.
export const EAX = 0;
export const ECX = 1;
export const EDX = 2;
export const EBX = 3;
export const ESP = 4;
export const EBP = 5;
export const ESI = 6;
export const EDI = 7;

// EFLAGS (SDM vol.1 §3.4.3).
export const CF = 1 << 0;
export const PF = 1 << 2;
export const AF = 1 << 4;
export const ZF = 1 << 6;
export const SF = 1 << 7;
export const TF = 1 << 8;
export const IF = 1 << 9;
export const DF = 1 << 10;
export const OF = 1 << 11;
export const IOPL = 3 << 12;
export const NT = 1 << 14;
export const RF = 1 << 16;
export const VM = 1 << 17;
export const AC = 1 << 18;
export const VIF = 1 << 19;
export const VIP = 1 << 20;
export const ID = 1 << 21;
/** The six status flags the lazy-flags machinery computes. */
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;
/** Bit 1 of EFLAGS always reads 1. */
export const FLAGS_FIXED_ONE = 1 << 1;
/** Flags an i686 implements (no VME here, so VIF/VIP are plain bits only set by POPFD at CPL 0). */
export const FLAGS_IMPLEMENTED = ARITH_FLAGS | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;

// CR0 (SDM vol.3 §2.5).
export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_EM = 1 << 2;
export const CR0_TS = 1 << 3;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_NW = 1 << 29;
export const CR0_CD = 1 << 30;
export const CR0_PG = 1 << 31;

// CR4.
export const CR4_VME = 1 << 0;
export const CR4_PVI = 1 << 1;
export const CR4_TSD = 1 << 2;
export const CR4_DE = 1 << 3;
export const CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5;
export const CR4_MCE = 1 << 6;
export const CR4_PGE = 1 << 7;
export const CR4_PCE = 1 << 8;
export const CR4_OSFXSR = 1 << 9;
export const CR4_OSXMMEXCPT = 1 << 10;

// Exception vectors (SDM vol.3 §6.3.1, table 6-1).
export const DE = 0;
export const DB = 1;
export const NMI = 2;
export const BP = 3;
export const OF_VEC = 4;
export const BR = 5;
export const UD = 6;
export const NM = 7;
export const DF_VEC = 8;
export const TS = 10;
export const NP = 11;
export const SS_VEC = 12;
export const GP = 13;
export const PF_VEC = 14;
export const MF = 16;
export const AC_VEC = 17;
export const MC = 18;
export const XM = 19;

export const EXCEPTION_NAMES: Record<number, string> = {
  0: '#DE divide error', 1: '#DB debug', 2: 'NMI', 3: '#BP breakpoint', 4: '#OF overflow', 5: '#BR bound range',
  6: '#UD invalid opcode', 7: '#NM device not available', 8: '#DF double fault', 10: '#TS invalid TSS',
  11: '#NP segment not present', 12: '#SS stack fault', 13: '#GP general protection', 14: '#PF page fault',
  16: '#MF x87 error', 17: '#AC alignment check', 18: '#MC machine check', 19: '#XM SIMD exception',
};

/** Exceptions that push an error code (SDM vol.3 table 6-1). */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
}

/** Contributory exceptions for the double-fault rules (SDM vol.3 table 6-4). */
export function isContributory(vector: number): boolean {
  return vector === 0 || (vector >= 10 && vector <= 13);
}

/**
 * Exceptions of the fault class (SDM vol.3 table 6-1): restarted at the faulting
 * instruction, and delivered with RF = 1 in the EFLAGS image they push (§17.3.1.1). #DB is
 * left out: this CPU raises it only as a trap (single-step, task switch T bit), and an
 * instruction-breakpoint fault is the one fault that pushes RF as it was.
 */
export function isFaultClass(vector: number): boolean {
  return vector === 0 || (vector >= 5 && vector <= 7) || (vector >= 10 && vector <= 14) || vector === 16 || vector === 17 || vector === 19;
}

// Page-table entry bits (SDM vol.3 §4.3).
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
export const PTE_PS = 1 << 7;
export const PTE_G = 1 << 8;

// MSRs Linux and SeaBIOS touch.
/** IA32_PLATFORM_ID (SDM vol.4, table 2-3: P6 family and later, read-only): bits 52:50 give the platform. */
export const MSR_PLATFORM_ID = 0x17;
export const MSR_TSC = 0x10;
export const MSR_APIC_BASE = 0x1b;
/** IA32_BIOS_SIGN_ID: the loaded microcode update's signature (none here: 0). */
export const MSR_BIOS_SIGN_ID = 0x8b;
export const MSR_SYSENTER_CS = 0x174;
export const MSR_SYSENTER_ESP = 0x175;
export const MSR_SYSENTER_EIP = 0x176;

/** A software TLB entry (Cpu.tlbR/tlbW): physical page | TLB_SLOW for pages the memory must decode, TLB_MISS when empty. */
export const TLB_MISS = -1;
export const TLB_SLOW = 1;
