/**
 * Port I/O dispatch (the CPU's IN/OUT/INS/OUTS) by a 64 Ki-entry table of mapping
 * indices, counted per device as it is dispatched (DESIGN.md seam 3). Every access
 * here is a trap into a device model: the emulated path of seam 4.
 *
 * A 16- or 32-bit access that one mapping covers entirely is one call with that size;
 * one that straddles mappings (or unclaimed ports) is split into bytes, as the ISA bus
 * splits it. Unclaimed ports read all-ones and ignore writes.
 */
import type { AccessSize, Mapping, RegisterBlock } from './device.ts';
import type { PortBus } from '../memory/physical-bus.ts';
import { loadElement, storeElement } from './ioreq.ts';
import { BYTES_READ, BYTES_WRITTEN, DIRECT_ACCESSES, PATH_DIRECT, PATH_EMULATED, PORT_READS, PORT_WRITES, TRAPS, type DeviceStats } from './stats.ts';

/**
 * Where accesses to a device on the emulated path go (bus/device-paths.ts): `block` is
 * the RegisterBlock the access hit in this thread, which names the device model's copy.
 */
export interface RemoteDispatch {
  read(row: number, block: RegisterBlock, offset: number, size: AccessSize, mmio: boolean): number;
  write(row: number, block: RegisterBlock, offset: number, size: AccessSize, value: number, mmio: boolean): void;
  /** String I/O (REP INS/OUTS) at one port: `count` elements between the port and `bytes`, one ioreq. */
  readString(row: number, block: RegisterBlock, offset: number, size: AccessSize, bytes: Uint8Array, count: number): void;
  writeString(row: number, block: RegisterBlock, offset: number, size: AccessSize, bytes: Uint8Array, count: number): void;
}

interface PortMapping {
  start: number;
  length: number;
  block: RegisterBlock;
  device: number;
  mapped: boolean;
}

const NONE = 0;

export class IoBus implements PortBus {
  /** Port -> index into `mappings` (+1); 0 when nothing answers. */
  private readonly table = new Uint16Array(0x10000);
  private readonly mappings: PortMapping[] = [];
  /** Measure time spent in handlers, on DeviceStats.trap's sample (the devices panel shows it). */
  timing = true;
  /** The emulated path (set by DevicePaths); rows on it are never dispatched without one. */
  remote: RemoteDispatch | null = null;

  constructor(private readonly stats: DeviceStats) {}

  /** Claim `length` ports from `start` for `device` (a DeviceStats row). */
  map(device: number, start: number, length: number, block: RegisterBlock): Mapping {
    const m: PortMapping = { start, length, block, device, mapped: false };
    this.mappings.push(m);
    const index = this.mappings.length;
    const table = this.table;
    const mappings = this.mappings;
    const place = () => {
      for (let p = m.start; p < m.start + m.length && p < 0x10000; p++) {
        if (table[p] !== NONE && table[p] !== index) {
          const other = mappings[table[p] - 1];
          throw new Error(`port ${hex(p)} claimed twice (mappings at ${hex(other.start)} and ${hex(m.start)})`);
        }
        table[p] = index;
      }
      m.mapped = true;
    };
    const remove = () => {
      for (let p = m.start; p < m.start + m.length && p < 0x10000; p++) if (table[p] === index) table[p] = NONE;
      m.mapped = false;
    };
    place();
    return {
      get start() { return m.start; },
      get length() { return m.length; },
      get mapped() { return m.mapped; },
      move(start: number) {
        if (m.mapped) remove();
        m.start = start;
        place();
      },
      unmap() {
        if (m.mapped) remove();
      },
    };
  }

  /** Is any device answering at `port`? */
  claimed(port: number): boolean {
    return this.table[port & 0xffff] !== NONE;
  }

  private read(port: number, size: AccessSize): number {
    port &= 0xffff;
    const index = this.table[port];
    if (index !== NONE) {
      const m = this.mappings[index - 1];
      const off = port - m.start;
      if (off + size <= m.length) {
        const stats = this.stats;
        stats.count(m.device, PORT_READS);
        stats.count(m.device, BYTES_READ, size);
        const path = stats.paths[m.device];
        if (path === PATH_EMULATED && this.remote) {
          stats.count(m.device, TRAPS);
          return this.remote.read(m.device, m.block, off, size, false);
        }
        const weight = path === PATH_DIRECT ? stats.direct(m.device) : stats.trap(m.device);
        if (weight === 0 || !this.timing) return m.block.read(off, size);
        const t0 = performance.now();
        const v = m.block.read(off, size);
        stats.addTime(m.device, (performance.now() - t0) * 1e6, weight);
        return v;
      }
    } else if (size === 1) {
      return 0xff;
    }
    // Straddles mappings: byte by byte, little-endian.
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.read((port + i) & 0xffff, 1) << (i * 8);
    return size === 4 ? v | 0 : v;
  }

  private write(port: number, size: AccessSize, value: number): void {
    port &= 0xffff;
    const index = this.table[port];
    if (index !== NONE) {
      const m = this.mappings[index - 1];
      const off = port - m.start;
      if (off + size <= m.length) {
        const stats = this.stats;
        stats.count(m.device, PORT_WRITES);
        stats.count(m.device, BYTES_WRITTEN, size);
        const path = stats.paths[m.device];
        if (path === PATH_EMULATED && this.remote) {
          stats.count(m.device, TRAPS);
          this.remote.write(m.device, m.block, off, size, value, false);
          return;
        }
        const weight = path === PATH_DIRECT ? stats.direct(m.device) : stats.trap(m.device);
        if (weight === 0 || !this.timing) {
          m.block.write(off, size, value);
          return;
        }
        const t0 = performance.now();
        m.block.write(off, size, value);
        stats.addTime(m.device, (performance.now() - t0) * 1e6, weight);
        return;
      }
    } else if (size === 1) {
      return;
    }
    for (let i = 0; i < size; i++) this.write((port + i) & 0xffff, 1, (value >>> (i * 8)) & 0xff);
  }

  /**
   * REP INS as one access (PortBus.insString): the elements are read from the device in
   * order, as one at a time would read them. On the emulated path the run is one ioreq
   * with a repeat count, one trap, as Xen carries a string instruction (data_is_ptr) in
   * one exit; on the direct path it counts as `count` direct accesses. False when no
   * single mapping covers the port (unclaimed, or straddling): the CPU goes element by element.
   */
  insString(port: number, size: AccessSize, bytes: Uint8Array, count: number): boolean {
    return this.string(port, size, bytes, count, false);
  }

  /** REP OUTS as one access: insString's counterpart, the elements written in order. */
  outsString(port: number, size: AccessSize, bytes: Uint8Array, count: number): boolean {
    return this.string(port, size, bytes, count, true);
  }

  private string(port: number, size: AccessSize, bytes: Uint8Array, count: number, write: boolean): boolean {
    const m = this.covering(port, size);
    if (m === null) return false;
    const off = port - m.start;
    const stats = this.stats;
    stats.count(m.device, write ? PORT_WRITES : PORT_READS, count);
    stats.count(m.device, write ? BYTES_WRITTEN : BYTES_READ, count * size);
    const path = stats.paths[m.device];
    if (path === PATH_EMULATED && this.remote) {
      stats.count(m.device, TRAPS);
      if (write) this.remote.writeString(m.device, m.block, off, size, bytes, count);
      else this.remote.readString(m.device, m.block, off, size, bytes, count);
      return true;
    }
    // In this thread: `count` direct accesses on the direct path, one trap on the core path
    // (a hypervisor's in-kernel device takes a string instruction in one exit).
    let weight: number;
    if (path === PATH_DIRECT) {
      stats.count(m.device, DIRECT_ACCESSES, count - 1);
      weight = stats.direct(m.device);
    } else {
      weight = stats.trap(m.device);
    }
    const timed = weight !== 0 && this.timing;
    const t0 = timed ? performance.now() : 0;
    const block = m.block;
    if (write) for (let o = 0; o < count * size; o += size) block.write(off, size, loadElement(bytes, o, size));
    else for (let o = 0; o < count * size; o += size) storeElement(bytes, o, size, block.read(off, size));
    if (timed) stats.addTime(m.device, (performance.now() - t0) * 1e6, weight);
    return true;
  }

  /** The mapping that answers `size` bytes at `port` whole, or null. */
  private covering(port: number, size: AccessSize): PortMapping | null {
    port &= 0xffff;
    const index = this.table[port];
    if (index === NONE) return null;
    const m = this.mappings[index - 1];
    return port - m.start + size <= m.length ? m : null;
  }

  in8(port: number): number {
    return this.read(port, 1) & 0xff;
  }

  in16(port: number): number {
    return this.read(port, 2) & 0xffff;
  }

  in32(port: number): number {
    return this.read(port, 4) | 0;
  }

  out8(port: number, value: number): void {
    this.write(port, 1, value & 0xff);
  }

  out16(port: number, value: number): void {
    this.write(port, 2, value & 0xffff);
  }

  out32(port: number, value: number): void {
    this.write(port, 4, value | 0);
  }
}

function hex(v: number): string {
  return '0x' + v.toString(16);
}
