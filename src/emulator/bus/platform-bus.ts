/**
 * The bus every device is attached to (DESIGN.md seam 1): it hands each device a
 * DeviceContext whose ports, MMIO, IRQ lines and DMA all go through counted paths
 * tagged with that device's statistics row. The machine and the device tests build
 * the same PlatformBus; only what listens to the IRQ lines differs.
 */
import type { Clock, DeviceContext, DmaHandle, IrqLine, Device, TimerId } from './device.ts';
import { IoBus } from './io-bus.ts';
import { DeviceStats, DMA_BYTES_READ, DMA_BYTES_WRITTEN, DMA_FAULTS, IRQS, type DeviceInfo } from './stats.ts';
import { PhysicalMemory } from '../memory/physical-memory.ts';
import { VirtualClock } from '../machine/clock.ts';

/** ISA IRQs 0-15 and I/O APIC inputs 16-23. */
export const IRQ_LINES = 24;

/**
 * The IOMMU's hook on a device's DMA (DESIGN.md seam 4): map the device's DMA address
 * `addr` to a guest-physical address, or return -1 for a fault (the IOMMU records its
 * own fault registers; the bus counts it). Called once per 4 KiB page the transfer
 * touches, with `addr` anywhere in that page.
 */
export type DmaTranslate = (addr: number, write: boolean) => number;

/** A DMA the bus refused: a translation fault, or a PCI master with bus mastering off. */
export interface DmaFault {
  device: string;
  addr: number;
  write: boolean;
  reason: 'translation' | 'bus-master-disabled';
}

const DMA_PAGE = 4096;

export class PlatformBus {
  readonly stats: DeviceStats;
  readonly io: IoBus;
  readonly memory: PhysicalMemory;
  readonly clock: VirtualClock;
  /** Current level of each interrupt line (wired-OR of the devices driving it). */
  readonly irqLevels = new Uint8Array(IRQ_LINES);
  /** How many devices drive each line high right now. */
  private readonly irqDrivers = new Uint8Array(IRQ_LINES);
  /** Where line changes go: the PIC pair and the I/O APIC, wired by the machine. */
  irqSink: (line: number, level: boolean) => void = () => {};
  /** Diagnostics from devices, rate-limited per device. */
  log: (device: string, message: string) => void = () => {};
  /** Per statistics row: the IOMMU's translation for that device, or null for identity. */
  private readonly dmaTranslate: (DmaTranslate | null)[] = [];
  /** Per statistics row: may the device master the bus now (PCI command bit 2)? null = always. */
  private readonly dmaAllowed: ((() => boolean) | null)[] = [];
  /** The last faults (at most 64), newest last: what the devices panel and the IOMMU tests read. */
  readonly dmaFaults: DmaFault[] = [];
  private readonly rows = new Map<Device, number>();
  /**
   * Devices (by name) whose timers the bus keeps a list of, so that moving one to the
   * other path can cancel what this copy of it armed (bus/device-paths.ts registers the
   * switchable devices before they attach). The others' clocks are the machine's own.
   */
  readonly trackTimers = new Set<string>();
  private readonly liveTimers: (Set<TimerId> | undefined)[] = [];
  private readonly contexts: DeviceContext[] = [];

  constructor(ramBytes: number, opts: { shared?: boolean } = {}) {
    this.stats = new DeviceStats();
    this.io = new IoBus(this.stats);
    this.memory = new PhysicalMemory(ramBytes, this.stats, opts.shared);
    this.clock = new VirtualClock();
  }

  /** Give `device` its context (registering its statistics row) and let it map itself. */
  attach(device: Device, info: Omit<DeviceInfo, 'name'> = {}): DeviceContext {
    const row = this.stats.add({ name: device.name, ...info });
    this.rows.set(device, row);
    const ctx = this.context(row, device.name);
    device.attach(ctx);
    return ctx;
  }

  /** The statistics row of an attached device (the key for setDmaTranslate). */
  rowOf(device: Device): number {
    const row = this.rows.get(device);
    if (row === undefined) throw new Error(`${device.name} is not attached to this bus`);
    return row;
  }

  /** Put `device`'s DMA behind an IOMMU translation (null: identity, the default). */
  setDmaTranslate(row: number, translate: DmaTranslate | null): void {
    this.dmaTranslate[row] = translate;
  }

  /** Gate `device`'s DMA on a condition (the PCI bus: the command register's bus-master enable). */
  setDmaAllowed(row: number, allowed: (() => boolean) | null): void {
    this.dmaAllowed[row] = allowed;
  }

  private dmaFault(row: number, addr: number, write: boolean, reason: DmaFault['reason']): void {
    this.stats.count(row, DMA_FAULTS);
    if (this.dmaFaults.length >= 64) this.dmaFaults.shift();
    this.dmaFaults.push({ device: this.stats.devices[row]?.name ?? '?', addr: addr >>> 0, write, reason });
  }

  /**
   * One bus-master transfer for the device in `row`: gated, translated page by page,
   * counted. A fault stops the transfer where it happened (what went before stays done).
   */
  private dma(row: number, addr: number, buf: Uint8Array, write: boolean): boolean {
    const allowed = this.dmaAllowed[row];
    if (allowed && !allowed()) {
      this.dmaFault(row, addr, write, 'bus-master-disabled');
      return false;
    }
    const translate = this.dmaTranslate[row];
    const mem = this.memory;
    if (!translate) {
      if (write) mem.dmaWrite(addr >>> 0, buf);
      else mem.dmaRead(addr >>> 0, buf);
      this.stats.count(row, write ? DMA_BYTES_WRITTEN : DMA_BYTES_READ, buf.length);
      return true;
    }
    let done = 0;
    while (done < buf.length) {
      const a = (addr + done) >>> 0;
      const n = Math.min(buf.length - done, DMA_PAGE - (a & (DMA_PAGE - 1)));
      const pa = translate(a, write);
      if (pa < 0) {
        this.dmaFault(row, a, write, 'translation');
        this.stats.count(row, write ? DMA_BYTES_WRITTEN : DMA_BYTES_READ, done);
        return false;
      }
      const chunk = buf.subarray(done, done + n);
      if (write) mem.dmaWrite(pa >>> 0, chunk);
      else mem.dmaRead(pa >>> 0, chunk);
      done += n;
    }
    this.stats.count(row, write ? DMA_BYTES_WRITTEN : DMA_BYTES_READ, done);
    return true;
  }

  /** The context the device in `row` was given (its IRQ line handles and DMA handle). */
  contextOf(row: number): DeviceContext {
    const ctx = this.contexts[row];
    if (!ctx) throw new Error(`no device in statistics row ${row}`);
    return ctx;
  }

  /** Cancel every timer the device in `row` has pending (only for devices in trackTimers). */
  cancelTimersOf(row: number): number {
    const live = this.liveTimers[row];
    if (!live) return 0;
    const n = live.size;
    for (const id of live) this.clock.cancelTimer(id);
    live.clear();
    return n;
  }

  private trackedClock(row: number): Clock {
    const clock = this.clock;
    const live = (this.liveTimers[row] = new Set<TimerId>());
    return {
      now: () => clock.now(),
      setTimer: (atNs, callback) => {
        const id = clock.setTimer(atNs, () => {
          live.delete(id);
          callback();
        });
        live.add(id);
        return id;
      },
      cancelTimer: (id) => {
        live.delete(id);
        clock.cancelTimer(id);
      },
    };
  }

  context(row: number, name: string): DeviceContext {
    const lines = new Map<number, IrqLine>();
    let logged = 0;
    const dma: DmaHandle = {
      read: (addr, dst) => this.dma(row, addr, dst, false),
      write: (addr, src) => this.dma(row, addr, src, true),
    };
    const ctx: DeviceContext = {
      clock: this.trackTimers.has(name) ? this.trackedClock(row) : (this.clock as Clock),
      mapPorts: (start, length, block) => this.io.map(row, start, length, block),
      mapMmio: (start, length, block, options) => this.memory.map(row, start, length, block, options),
      irq: (line) => {
        if (line < 0 || line >= IRQ_LINES) throw new RangeError(`${name}: no IRQ line ${line}`);
        let l = lines.get(line);
        if (!l) {
          l = this.irqLine(row, line);
          lines.set(line, l);
          // The device table shows which lines a device drives.
          const info = this.stats.devices[row];
          if (info) {
            (info.irq ??= []).push(line);
            this.stats.version++;
          }
        }
        return l;
      },
      dma,
      log: (message) => {
        // A guest hammering an unsupported feature must not flood the user's console.
        if (++logged <= 20) this.log(name, logged === 20 ? `${message} (further messages suppressed)` : message);
      },
    };
    this.contexts[row] = ctx;
    return ctx;
  }

  /** Every line handle given out, so a state load can let go of them all at once. */
  private readonly driven: { high: boolean }[] = [];

  /**
   * Before devices load a saved state: every device stops driving every line, without
   * telling the interrupt controllers (whose own saved state is loaded after the devices
   * have driven their lines again, so no edge is invented).
   */
  releaseIrqLines(): void {
    for (const d of this.driven) d.high = false;
    this.irqDrivers.fill(0);
    this.irqLevels.fill(0);
  }

  private irqLine(row: number, line: number): IrqLine {
    const d = { high: false };
    this.driven.push(d);
    const set = (level: boolean) => {
      if (level === d.high) return;
      d.high = level;
      this.irqDrivers[line] += level ? 1 : -1;
      const now = this.irqDrivers[line] > 0 ? 1 : 0;
      if (level) this.stats.count(row, IRQS);
      if (now !== this.irqLevels[line]) {
        this.irqLevels[line] = now;
        this.irqSink(line, now === 1);
      }
    };
    return {
      set,
      raise: () => set(true),
      lower: () => set(false),
      pulse: () => {
        set(true);
        set(false);
      },
    };
  }
}
