/**
 * A PCI function as a device declares it. The PCI bus (src/emulator/pci) owns the
 * type-0 configuration header: it answers vendor/device/class reads, sizes and moves
 * the BARs (mapping each BAR's RegisterBlock through the bus), honours the command
 * register's I/O, memory and bus-master enables, and routes INTx through the PIIX3
 * PIRQ links. The device only declares what its datasheet says and answers its own
 * registers, so its code is the same whether it is emulated or direct-assigned.
 */
import type { Device, IrqLine, MmioOptions, RegisterBlock } from '../bus/device.ts';

export interface PciBarSpec {
  /** BAR number 0-5. */
  readonly index: number;
  readonly kind: 'io' | 'mem';
  /** Size in bytes, a power of two (I/O >= 4, memory >= 16; the bus rounds memory up to 4 KiB). */
  readonly size: number;
  readonly prefetchable?: boolean;
  /** Registers behind the BAR; offsets are relative to the BAR's base. */
  readonly block: RegisterBlock;
  /** Memory BARs only: plain memory behind the BAR (VRAM) and its dirty log, see MmioOptions. */
  readonly mmio?: MmioOptions;
  /**
   * Fixed legacy decode the function also answers at power-on regardless of the BAR
   * (e.g. PIIX IDE in compatibility mode at 0x1F0), declared separately by the device.
   */
}

export interface PciFunctionSpec {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  /** Class code as 24 bits: base class, subclass, programming interface (e.g. 0x010180 for PIIX IDE). */
  readonly classCode: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** 0x00 normal; 0x80 set for a multi-function device's function 0. */
  readonly headerType?: number;
  /** 0 none, 1 INTA#, 2 INTB#, 3 INTC#, 4 INTD#. */
  readonly interruptPin: number;
  readonly bars: readonly PciBarSpec[];
  /** Expansion ROM image behind the ROM BAR (config 0x30), if any. */
  readonly rom?: Uint8Array;
  /**
   * Device-specific configuration registers (0x40-0xFF, and any header register the
   * device wants to own). Return undefined to let the bus answer (reads 0 there).
   */
  configRead?(offset: number, size: 1 | 2 | 4): number | undefined;
  /** Return true if the device consumed the write. */
  configWrite?(offset: number, size: 1 | 2 | 4, value: number): boolean;
}

/** Given to a PCI function when it is plugged into a slot. */
export interface PciContext {
  /** The function's INTx# pin, routed by the bus (slot swizzle, PIIX3 PIRQ links, ELCR). */
  readonly intx: IrqLine;
  /** Command register bit 2: the function may master the bus (DMA). */
  busMasterEnabled(): boolean;
}

export interface PciDevice extends Device {
  readonly pci: PciFunctionSpec;
  attachPci(ctx: PciContext): void;
}

/** Little-endian read of `size` bytes of a function's own configuration registers. */
export function readConfigBytes(config: Uint8Array, offset: number, size: 1 | 2 | 4): number {
  let v = 0;
  for (let i = 0; i < size; i++) v |= (config[offset + i] ?? 0) << (8 * i);
  return size === 4 ? v | 0 : v;
}
