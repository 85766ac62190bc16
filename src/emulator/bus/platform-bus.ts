/**
 * The bus every device is attached to (DESIGN.md seam 1): it hands each device a
 * DeviceContext whose ports, MMIO, IRQ lines and DMA all go through counted paths
 * tagged with that device's statistics row. The machine and the device tests build
 * the same PlatformBus; only what listens to the IRQ lines differs.
 */
import type { Clock, DeviceContext, DmaHandle, IrqLine, Device } from './device.ts';
import { IoBus } from './io-bus.ts';
import { DeviceStats, DMA_BYTES_READ, DMA_BYTES_WRITTEN, IRQS, type DeviceInfo } from './stats.ts';
import { PhysicalMemory } from '../memory/physical-memory.ts';
import { VirtualClock } from '../machine/clock.ts';

/** ISA IRQs 0-15 and I/O APIC inputs 16-23. */
export const IRQ_LINES = 24;

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

  constructor(ramBytes: number, opts: { shared?: boolean } = {}) {
    this.stats = new DeviceStats();
    this.io = new IoBus(this.stats);
    this.memory = new PhysicalMemory(ramBytes, this.stats, opts.shared);
    this.clock = new VirtualClock();
  }

  /** Give `device` its context (registering its statistics row) and let it map itself. */
  attach(device: Device, info: Omit<DeviceInfo, 'name'> = {}): DeviceContext {
    const row = this.stats.add({ name: device.name, ...info });
    const ctx = this.context(row, device.name);
    device.attach(ctx);
    return ctx;
  }

  context(row: number, name: string): DeviceContext {
    const lines = new Map<number, IrqLine>();
    let logged = 0;
    const dma: DmaHandle = {
      read: (addr, dst) => {
        this.memory.dmaRead(addr, dst);
        this.stats.count(row, DMA_BYTES_READ, dst.length);
        return true;
      },
      write: (addr, src) => {
        this.memory.dmaWrite(addr, src);
        this.stats.count(row, DMA_BYTES_WRITTEN, src.length);
        return true;
      },
    };
    const ctx: DeviceContext = {
      clock: this.clock as Clock,
      mapPorts: (start, length, block) => this.io.map(row, start, length, block),
      mapMmio: (start, length, block) => this.memory.map(row, start, length, block),
      irq: (line) => {
        if (line < 0 || line >= IRQ_LINES) throw new RangeError(`${name}: no IRQ line ${line}`);
        let l = lines.get(line);
        if (!l) {
          l = this.irqLine(row, line);
          lines.set(line, l);
          // The device table shows which lines a device drives.
          const info = this.stats.devices[row];
          if (info) (info.irq ??= []).push(line);
        }
        return l;
      },
      dma,
      log: (message) => {
        // A guest hammering an unsupported feature must not flood the user's console.
        if (++logged <= 20) this.log(name, logged === 20 ? `${message} (further messages suppressed)` : message);
      },
    };
    return ctx;
  }

  private irqLine(row: number, line: number): IrqLine {
    let high = false;
    const set = (level: boolean) => {
      if (level === high) return;
      high = level;
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
