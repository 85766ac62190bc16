/**
 * What a device may see of the machine (DESIGN.md seam 1): register blocks it
 * answers, IRQ lines it drives, a DMA handle for bus-master access, and the clock.
 * A device never holds another device or the RAM array; everything goes through
 * the bus so it can be counted, trapped, assigned directly or fenced by the IOMMU.
 */

export type AccessSize = 1 | 2 | 4;

/**
 * A block of registers answered by a device: a range of I/O ports or an MMIO window.
 * `offset` is relative to the start of the mapping, so a relocated BAR needs no change.
 * Reads return the value zero-extended to `size` bytes; little-endian throughout.
 */
export interface RegisterBlock {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

/** Where the bus marks the pages an MMIO write touched (memory/dirty-bitmap.ts's DirtyBitmap). */
export interface DirtyLog {
  /** Mark the 4 KiB page holding byte `offset` of the region. */
  mark(offset: number): void;
  markRange(offset: number, length: number): void;
}

/**
 * How an MMIO region is backed (DESIGN.md seam 5). Video memory is plain memory owned by
 * its device: with `backing`, the bus reads and writes those bytes itself (offset from
 * the region's start, up to backing.length) without calling the block, which still
 * answers anything beyond. With `dirty`, every write the bus dispatches to the region
 * (backed or not) marks the page at that offset, so the screen redraws only what changed.
 */
export interface MmioOptions {
  backing?: Uint8Array;
  dirty?: DirtyLog;
}

/** A live mapping of a RegisterBlock; PCI BARs move it when the guest reprograms them. */
export interface Mapping {
  readonly start: number;
  readonly length: number;
  /** Re-map at another base (a BAR write). */
  move(start: number): void;
  /** Remove (decode disabled). `move` maps it again. */
  unmap(): void;
  readonly mapped: boolean;
}

/** An interrupt line as the device drives it: level for PCI INTx and most ISA devices. */
export interface IrqLine {
  set(level: boolean): void;
  raise(): void;
  lower(): void;
  /** Edge for edge-triggered ISA inputs: raise then lower. */
  pulse(): void;
}

/**
 * Bus-master access to guest-physical memory (DESIGN.md seam 4): through the IOMMU
 * when the device is direct-assigned. Returns false if any part faulted (the fault is
 * recorded by the IOMMU and counted by the bus); the device decides how to report it.
 */
export interface DmaHandle {
  read(addr: number, dst: Uint8Array): boolean;
  write(addr: number, src: Uint8Array): boolean;
}

export type TimerId = number;

/** Virtual time (DESIGN.md seam 6). Never use setTimeout in a device. */
export interface Clock {
  /** Virtual nanoseconds since power-on. */
  now(): number;
  /** Run `callback` once when virtual time reaches `atNs`. Timers that share a time fire in the order set. */
  setTimer(atNs: number, callback: () => void): TimerId;
  cancelTimer(id: TimerId): void;
}

export interface DeviceContext {
  readonly clock: Clock;
  mapPorts(start: number, length: number, block: RegisterBlock): Mapping;
  mapMmio(start: number, length: number, block: RegisterBlock, options?: MmioOptions): Mapping;
  /** ISA IRQ 0-15 (routed to the PIC and the I/O APIC) or an I/O APIC input 16-23. */
  irq(line: number): IrqLine;
  readonly dma: DmaHandle;
  /** A diagnostic the user may want to see (unsupported command, bad guest value); rate-limited by the machine. */
  log(message: string): void;
}

/** Save/restore and `moving a device between paths` both use this plain-data state. */
export type DeviceState = Record<string, unknown>;

export interface Device {
  /** Short name shown in statistics and logs, e.g. "pic", "com1", "ide0". */
  readonly name: string;
  attach(ctx: DeviceContext): void;
  /** Hardware reset (the RESET pin): registers to their datasheet reset values. */
  reset(): void;
  saveState(): DeviceState;
  loadState(state: DeviceState): void;
}
