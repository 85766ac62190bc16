/**
 * The seam between the CPU and the physical address space.
 *
 * The CPU's software TLB maps a virtual page straight to an offset in `ram` when the
 * physical page is plain RAM for that kind of access (DESIGN.md seam 7). Everything
 * else (ROM, MMIO, PCI holes, pages under a dirty log, PAM-redirected shadow areas)
 * goes through the slow path `read*` / `write*`, which decodes the address fully.
 *
 * Whenever the answer to "may this page be accessed directly?" changes (PAM write,
 * a BAR moves, A20 toggles, a dirty log starts), the memory calls every map listener
 * and the CPU flushes its TLB.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Number of 4 KiB pages in the 32-bit physical address space. */
export const PAGE_COUNT = 1 << (32 - PAGE_SHIFT);

/** `pageAccess` bit: reads of this physical page may be served from `ram[address]`. */
export const PAGE_DIRECT_READ = 1;
/** `pageAccess` bit: writes to this physical page may go straight to `ram[address]`. */
export const PAGE_DIRECT_WRITE = 2;

export interface PhysicalBus {
  /** Guest RAM. A physical address `a` with a direct bit set in `pageAccess[a >>> 12]` is `ram[a]`. */
  readonly ram: Uint8Array;
  /** One byte per 4 KiB physical page (PAGE_COUNT entries): PAGE_DIRECT_READ | PAGE_DIRECT_WRITE. */
  readonly pageAccess: Uint8Array;
  /**
   * Physical address mask applied by the CPU after paging: 0xFFFFFFFF with A20 enabled,
   * 0xFFEFFFFF with it masked (the 8086 wrap-around the PC keeps for compatibility).
   */
  readonly a20Mask: number;

  /** Slow path: full decode (RAM, ROM, MMIO, unassigned reads 0xFF..). Little-endian; unaligned allowed. */
  read8(addr: number): number;
  read16(addr: number): number;
  read32(addr: number): number;
  write8(addr: number, value: number): void;
  write16(addr: number, value: number): void;
  write32(addr: number, value: number): void;

  /**
   * For a run of string-instruction accesses (REP MOVS/STOS) to one page that is not
   * direct RAM: the bytes [addr, addr + bytes) as a view of the plain memory behind a
   * device's region (video memory), or null when any of them needs the slow path. Nothing
   * is counted here; once the run is done, `spanDone` counts it.
   */
  backedSpan?(addr: number, bytes: number): Uint8Array | null;
  /**
   * Count a run done through `backedSpan` as `elements` accesses of `size` bytes, as one at
   * a time would have been counted, and mark written pages dirty.
   */
  spanDone?(addr: number, elements: number, size: number, write: boolean): void;

  /** `fn` runs whenever `pageAccess` or `a20Mask` changes; the CPU flushes its TLB then. */
  addMapListener(fn: () => void): void;

  /**
   * Call `onWrite(page)` before any store that does not come through a CPU TLB direct
   * entry (the slow path, page walks, bus-master DMA) reaches RAM page `page` while
   * `pages[page]` is set. The CPU's block cache uses it to drop translations of
   * overwritten code (cpu/jit/block-cache.ts); the CPU keeps those pages off its direct path.
   */
  watchWrites?(pages: Uint8Array, onWrite: (page: number) => void): void;
}

/**
 * A page map with no page set (one per 4 KiB page of the 4 GiB space): what the memory's
 * write watch and the CPU's code-page check read until a block cache supplies its own.
 * Shared and never written.
 */
export const NO_WATCHED_PAGES = new Uint8Array(PAGE_COUNT);

/** Port I/O as the CPU issues it (IN, OUT, INS, OUTS). Unclaimed ports read all-ones. */
export interface PortBus {
  in8(port: number): number;
  in16(port: number): number;
  in32(port: number): number;
  out8(port: number, value: number): void;
  out16(port: number, value: number): void;
  out32(port: number, value: number): void;
  /**
   * REP INS/OUTS in one call (the CPU's bulk path for a run of elements that stays in one
   * page of plain RAM): `count` elements of `size` bytes between `port` and `bytes`, in
   * the order the CPU moves them, little-endian. False, with nothing done, when the bus
   * cannot take the run whole (no device or one that does not cover the access): the CPU
   * then goes element by element.
   */
  insString?(port: number, size: 1 | 2 | 4, bytes: Uint8Array, count: number): boolean;
  outsString?(port: number, size: 1 | 2 | 4, bytes: Uint8Array, count: number): boolean;
}
