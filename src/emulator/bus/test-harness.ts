/**
 * A real bus for device unit tests: the same PlatformBus (IoBus, PhysicalMemory,
 * VirtualClock, DeviceStats) the machine builds, with the interrupt lines recorded
 * instead of wired to a PIC. A device tested here is dispatched, counted and given DMA
 * exactly as in the PC, so a test that passes here says something about the machine.
 *
 *   const t = createTestBus();
 *   const pic = new I8259Pic();
 *   t.attach(pic);
 *   t.out8(0x20, 0x11);
 *   t.raise(4);            // drive ISA IRQ 4 from the test
 *   t.irqLevel(4);         // what the devices drive on line 4 now (0 or 1)
 *   t.advance(1_000_000);  // 1 ms of virtual time, firing the device timers due
 *   t.stats('pic').portWrites;
 *
 * PCI functions: `t.plugPci(fn, slot, func)` places them on a real PciBus behind
 * 0xCF8/0xCFC; `t.cfgRead32(slot, func, reg)` / `t.cfgWrite32(...)` reach their config
 * space through the ports, so BAR programming maps their registers as on the PC.
 */
import type { AccessSize, Device, DeviceContext, IrqLine } from './device.ts';
import { IRQ_LINES, PlatformBus } from './platform-bus.ts';
import type { DeviceInfo, StatField } from './stats.ts';
import { PciBus } from '../pci/pci-bus.ts';
import type { PciDevice } from '../pci/pci-function.ts';

export interface TestBusOptions {
  /** Guest RAM in bytes (default 2 MiB). */
  ramBytes?: number;
  /** Measure time spent in handlers (off by default: tests compare counters, not times). */
  timing?: boolean;
}

/** One change of an interrupt line, in the order it happened. */
export interface IrqEvent {
  line: number;
  level: boolean;
  atNs: number;
}

export interface TestBus {
  readonly bus: PlatformBus;
  /** Guest RAM as the devices' DMA sees it. */
  readonly ram: Uint8Array;
  /** Every line change since creation (or the last `clearIrqLog()`). */
  readonly irqLog: IrqEvent[];

  /** Attach `device` with its own statistics row; returns the context it was given. */
  attach(device: Device, info?: Omit<DeviceInfo, 'name'>): DeviceContext;
  /** A context for a pretend device (e.g. to drive an IRQ line or map a probe block). */
  context(name: string): DeviceContext;
  /** Place a PCI function at 00:slot.func (the PCI bus is created on first use). */
  plugPci(device: PciDevice, slot: number, func?: number): DeviceContext;
  readonly pci: PciBus;

  in8(port: number): number;
  in16(port: number): number;
  in32(port: number): number;
  out8(port: number, value: number): void;
  out16(port: number, value: number): void;
  out32(port: number, value: number): void;

  /** CPU-side physical accesses (MMIO regions, RAM, ROM), through the full decode. */
  mmioRead8(addr: number): number;
  mmioRead16(addr: number): number;
  mmioRead32(addr: number): number;
  mmioWrite8(addr: number, value: number): void;
  mmioWrite16(addr: number, value: number): void;
  mmioWrite32(addr: number, value: number): void;

  /** PCI configuration mechanism #1 through the ports (returns unsigned for 32-bit). */
  cfgRead(slot: number, func: number, reg: number, size: AccessSize): number;
  cfgWrite(slot: number, func: number, reg: number, size: AccessSize, value: number): void;
  cfgRead32(slot: number, func: number, reg: number): number;
  cfgWrite32(slot: number, func: number, reg: number, value: number): void;

  /** Level of interrupt line `line` (ISA 0-15, I/O APIC 16-23) as the devices drive it: 0 or 1. */
  irqLevel(line: number): number;
  /** Rising edges seen on `line`. */
  irqEdges(line: number): number;
  clearIrqLog(): void;
  /** Drive a line from the test itself (a pretend device named "test"). */
  raise(line: number): void;
  lower(line: number): void;

  /** Virtual time in ns. */
  now(): number;
  /** Move virtual time forward by `ns`, firing due timers in order. */
  advance(ns: number): void;
  advanceTo(ns: number): void;
  /** Time of the next pending timer (Infinity when none). */
  nextDeadline(): number;

  /** A device's counters by name (the first row with that name). */
  stats(name: string): Record<StatField, number>;
}

export function createTestBus(options: TestBusOptions = {}): TestBus {
  const bus = new PlatformBus(options.ramBytes ?? 2 << 20, { shared: false });
  bus.io.timing = options.timing ?? false;
  bus.memory.timing = options.timing ?? false;
  const irqLog: IrqEvent[] = [];
  const edges = new Float64Array(IRQ_LINES);
  bus.irqSink = (line, level) => {
    irqLog.push({ line, level, atNs: bus.clock.now() });
    if (level) edges[line]++;
  };
  let pci: PciBus | undefined;
  const pciBus = () => (pci ??= new PciBus(bus));
  let testLines: IrqLine[] | undefined;
  const testLine = (line: number) => {
    testLines ??= (() => {
      const ctx = bus.context(bus.stats.add({ name: 'test' }), 'test');
      return Array.from({ length: IRQ_LINES }, (_, i) => ctx.irq(i));
    })();
    return testLines[line];
  };
  const cfgAddress = (slot: number, func: number, reg: number) => (0x80000000 | (slot << 11) | (func << 8) | (reg & 0xfc)) >>> 0;
  const io = bus.io;
  const mem = bus.memory;

  const t: TestBus = {
    bus,
    ram: mem.ram,
    irqLog,
    attach: (device, info) => bus.attach(device, info),
    context: (name) => bus.context(bus.stats.add({ name }), name),
    plugPci: (device, slot, func = 0) => pciBus().plug(device, slot, func),
    get pci() {
      return pciBus();
    },

    in8: (p) => io.in8(p),
    in16: (p) => io.in16(p),
    in32: (p) => io.in32(p) >>> 0,
    out8: (p, v) => io.out8(p, v),
    out16: (p, v) => io.out16(p, v),
    out32: (p, v) => io.out32(p, v),

    mmioRead8: (a) => mem.read8(a),
    mmioRead16: (a) => mem.read16(a),
    mmioRead32: (a) => mem.read32(a) >>> 0,
    mmioWrite8: (a, v) => mem.write8(a, v),
    mmioWrite16: (a, v) => mem.write16(a, v),
    mmioWrite32: (a, v) => mem.write32(a, v),

    cfgRead(slot, func, reg, size) {
      pciBus();
      io.out32(0xcf8, cfgAddress(slot, func, reg));
      const port = 0xcfc + (reg & 3);
      return size === 1 ? io.in8(port) : size === 2 ? io.in16(port) : io.in32(port) >>> 0;
    },
    cfgWrite(slot, func, reg, size, value) {
      pciBus();
      io.out32(0xcf8, cfgAddress(slot, func, reg));
      const port = 0xcfc + (reg & 3);
      if (size === 1) io.out8(port, value);
      else if (size === 2) io.out16(port, value);
      else io.out32(port, value);
    },
    cfgRead32: (slot, func, reg) => t.cfgRead(slot, func, reg, 4),
    cfgWrite32: (slot, func, reg, value) => t.cfgWrite(slot, func, reg, 4, value),

    irqLevel: (line) => bus.irqLevels[line],
    irqEdges: (line) => edges[line],
    clearIrqLog() {
      irqLog.length = 0;
      edges.fill(0);
    },
    raise: (line) => testLine(line).raise(),
    lower: (line) => testLine(line).lower(),

    now: () => bus.clock.now(),
    advance: (ns) => bus.clock.advanceTo(bus.clock.now() + ns),
    advanceTo: (ns) => bus.clock.advanceTo(ns),
    nextDeadline: () => bus.clock.nextDeadline(),

    stats(name) {
      const row = bus.stats.snapshot().devices.find((d) => d.name === name);
      if (!row) throw new Error(`no device named ${name} on the test bus`);
      return row;
    },
  };
  return t;
}
