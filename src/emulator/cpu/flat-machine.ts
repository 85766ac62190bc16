/**
 * The smallest machine a CPU can run in: flat RAM from address 0, no ROM, no MMIO, no
 * A20 gate, and ports that read all-ones. The CPU's own tests, the SingleStepTests
 * runner and the CPU benchmark use it; the PC is src/emulator/machine.
 */
import { NO_WATCHED_PAGES, PAGE_DIRECT_READ, PAGE_DIRECT_WRITE, type PhysicalBus, type PortBus } from '../memory/physical-bus.ts';
import type { CpuHost } from './cpu.ts';

export class FlatTestMachine implements PhysicalBus, PortBus, CpuHost {
  readonly ram: Uint8Array;
  readonly pageAccess = new Uint8Array(1 << 20);
  readonly a20Mask = -1;
  readonly memory = this;
  readonly io = this;
  /** Bytes written to port 0xE9 (the debug console), for test programs to report with. */
  readonly debugcon: number[] = [];
  /** Value written to port 0xF4 (debug exit), -1 until then. */
  exitValue = -1;
  /** Virtual TSC: advanced by whoever runs the CPU. */
  tsc = 0;
  /** Set by the CPU on a triple fault. */
  shutdownReason = '';
  /** PhysicalBus.watchWrites: pages whose stores are reported first (the block cache's code pages). */
  private watched: Uint8Array = NO_WATCHED_PAGES;
  private onWatchedWrite: (page: number) => void = () => {};

  constructor(readonly mebibytes: number) {
    this.ram = new Uint8Array(mebibytes << 20);
    this.pageAccess.fill(PAGE_DIRECT_READ | PAGE_DIRECT_WRITE, 0, this.ram.length >>> 12);
  }

  /** Copy a program into RAM at `address`. */
  load(address: number, bytes: Uint8Array): void {
    for (let p = address >>> 12; p <= (address + bytes.length - 1) >>> 12; p++) {
      if (this.watched[p] !== 0) this.onWatchedWrite(p);
    }
    this.ram.set(bytes, address);
  }

  read8(a: number): number { return (a >>> 0) < this.ram.length ? this.ram[a >>> 0] : 0xff; }
  read16(a: number): number { return this.read8(a) | (this.read8(a + 1) << 8); }
  read32(a: number): number { return this.read16(a) | (this.read16(a + 2) << 16); }
  write8(a: number, v: number): void {
    if ((a >>> 0) >= this.ram.length) return;
    if (this.watched[a >>> 12] !== 0) this.onWatchedWrite(a >>> 12);
    this.ram[a >>> 0] = v;
  }
  watchWrites(pages: Uint8Array, onWrite: (page: number) => void): void {
    this.watched = pages;
    this.onWatchedWrite = onWrite;
  }
  write16(a: number, v: number): void { this.write8(a, v); this.write8(a + 1, v >> 8); }
  write32(a: number, v: number): void { this.write16(a, v); this.write16(a + 2, v >>> 16); }
  addMapListener(): void {}
  in8(): number { return 0xff; }
  in16(): number { return 0xffff; }
  in32(): number { return -1; }
  out8(port: number, v: number): void {
    if (port === 0xe9) this.debugcon.push(v & 0xff);
    else if (port === 0xf4) this.exitValue = v & 0xff;
  }
  out16(port: number, v: number): void { this.out8(port, v); }
  out32(port: number, v: number): void { this.out8(port, v); }
  intrAcknowledge(): number { return 0; }
  readTsc(): number { return this.tsc; }
  /** FERR# assertions (x87 errors with CR0.NE = 0). */
  ferrCount = 0;
  ferr(): void { this.ferrCount++; }
  shutdown(reason: string): void { this.shutdownReason = reason; }

  debugText(): string {
    return String.fromCharCode(...this.debugcon);
  }
}
