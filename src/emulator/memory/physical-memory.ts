/**
 * The PC's physical address space (DESIGN.md "memory/"): RAM with the legacy holes, the
 * BIOS ROM at the top of 4 GiB with its low alias, the i440FX PAM shadow areas, MMIO
 * regions of devices, the A20 gate and a per-page dirty bitmap.
 *
 *   0x00000000-0x0009FFFF  RAM (640 KiB)
 *   0x000A0000-0x000BFFFF  VGA window (MMIO of the VGA; unclaimed reads 0xFF)
 *   0x000C0000-0x000FFFFF  13 PAM areas: RAM or the ROM side per read/write enable
 *                          (i440FX datasheet §3.2.18); the ROM side of 0xE0000-0xFFFFF
 *                          is the last 128 KiB of the BIOS, as QEMU maps it
 *   0x00100000-RAM top     RAM
 *   PCI/MMIO windows       device regions (BARs, I/O APIC 0xFEC00000, local APIC 0xFEE00000)
 *   4 GiB - BIOS size      BIOS ROM (read-only)
 *
 * The CPU reads `pageAccess` to know which pages it may touch directly in `ram`; every
 * change of the map calls the map listeners so it flushes its TLB.
 */
import type { AccessSize, DirtyLog, Mapping, MmioOptions, RegisterBlock } from '../bus/device.ts';
import { BYTES_READ, BYTES_WRITTEN, MMIO_READS, MMIO_WRITES, PATH_DIRECT, PATH_EMULATED, TRAPS, type DeviceStats } from '../bus/stats.ts';
import type { RemoteDispatch } from '../bus/io-bus.ts';
import { DirtyBitmap } from './dirty-bitmap.ts';
import { NO_WATCHED_PAGES, PAGE_COUNT, PAGE_DIRECT_READ, PAGE_DIRECT_WRITE, PAGE_SHIFT, type PhysicalBus } from './physical-bus.ts';

/** PAM field values (i440FX §3.2.18): which side reads and writes go to. */
export const PAM_OFF = 0; // both to the ROM/PCI side
export const PAM_READ = 1; // reads from RAM, writes to the ROM side
export const PAM_WRITE = 2; // writes to RAM, reads from the ROM side
export const PAM_RW = 3; // RAM both ways

const LOW_RAM_END = 0xa0000;
const PAM_START = 0xc0000;
const HIGH_START = 0x100000;
/** RAM above this stays out of the 32-bit space (QEMU's PC splits it at 3.5 GiB). */
export const MAX_LOW_RAM = 0xe0000000;

interface MmioRegion {
  start: number;
  length: number;
  block: RegisterBlock;
  device: number;
  mapped: boolean;
  /** Plain memory the bus answers itself (video memory), or null. */
  backing: Uint8Array | null;
  /** Bytes of the region served from `backing`. */
  backed: number;
  dirty: DirtyLog | null;
}

/** A WebAssembly page (Core spec §2.5.5): linear memories grow in these. */
const WASM_PAGE = 0x10000;

export class PhysicalMemory implements PhysicalBus {
  /**
   * Guest RAM: bytes 0..ramBytes of `wasmMemory`'s buffer, so translated WebAssembly code
   * (cpu/jit) can load and store guest RAM directly. The memory is exactly the RAM's size
   * when that is a multiple of 64 KiB (every machine configuration, sized in MiB), else
   * rounded up; its size is fixed (initial = maximum), so the buffer is never detached by
   * growth and every view of it stays valid.
   */
  readonly ram: Uint8Array;
  readonly wasmMemory: WebAssembly.Memory;
  readonly pageAccess = new Uint8Array(PAGE_COUNT);
  a20Mask = -1;
  private bios = new Uint8Array(0);
  private biosBase = 0;
  /** The 13 PAM fields: index 0 for 0xF0000-0xFFFFF, 1-12 for the 16 KiB areas from 0xC0000. */
  readonly pam = new Uint8Array(13);
  /** Option ROM bytes on the ROM side of 0xC0000-0xDFFFF (what the VGA BIOS was shadowed from). */
  private readonly isaRom = new Uint8Array(0x20000).fill(0xff);
  private readonly regions: MmioRegion[] = [];
  /** Per page: 0 no region, else index+1 of the only region on it, or -1 when several share it. */
  private readonly pageRegion = new Int16Array(PAGE_COUNT);
  private readonly listeners: (() => void)[] = [];
  /** Dirty mark per 4 KiB page of RAM (seam 5): see trackDirty. */
  readonly dirty: DirtyBitmap;
  /** Per RAM page: how many users track it (its writes then leave the CPU's direct path). */
  private readonly dirtyTracked: Uint8Array;
  /** Measure time spent in MMIO handlers, on DeviceStats.trap's sample (the devices panel shows it). */
  timing = true;
  /** The emulated path for MMIO (bus/device-paths.ts sets it with IoBus.remote). */
  remote: RemoteDispatch | null = null;

  constructor(ramBytes: number, private readonly stats: DeviceStats, shared = typeof SharedArrayBuffer === 'function') {
    if (ramBytes % (1 << PAGE_SHIFT) !== 0 || ramBytes < 1 << 20 || ramBytes > MAX_LOW_RAM) {
      throw new RangeError(`RAM size ${ramBytes} is not a multiple of 4 KiB between 1 MiB and 3.5 GiB`);
    }
    // Shared (its buffer a SharedArrayBuffer, as the device-model worker needs) whenever
    // the host has SharedArrayBuffer; a shared memory must declare its maximum.
    const pages = Math.ceil(ramBytes / WASM_PAGE);
    this.wasmMemory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    this.ram = new Uint8Array(this.wasmMemory.buffer, 0, ramBytes);
    this.dirty = new DirtyBitmap(ramBytes, shared);
    this.dirtyTracked = new Uint8Array(ramBytes >>> PAGE_SHIFT);
    this.rebuildAccess();
  }

  /** Map the system BIOS to end at 4 GiB (its last 128 KiB also show below 1 MiB through PAM). */
  setBios(image: Uint8Array): void {
    if (image.length === 0 || image.length % 0x10000 !== 0 || image.length > 16 << 20) {
      throw new RangeError(`a BIOS image must be a non-zero multiple of 64 KiB up to 16 MiB (got ${image.length} bytes)`);
    }
    this.bios = image.slice();
    this.biosBase = 0x1_0000_0000 - image.length;
    this.rebuildAccess();
  }

  /** Bytes on the ROM side of 0xC0000-0xDFFFF (an ISA option ROM; PCI ROMs are shadowed by the BIOS instead). */
  setIsaRom(offset: number, bytes: Uint8Array): void {
    this.isaRom.set(bytes, offset);
  }

  addMapListener(fn: () => void): void {
    this.listeners.push(fn);
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }

  setA20(enabled: boolean): void {
    const mask = enabled ? -1 : ~(1 << 20);
    if (mask === this.a20Mask) return;
    this.a20Mask = mask;
    this.notify();
  }

  get a20Enabled(): boolean {
    return this.a20Mask === -1;
  }

  /** i440FX PAM register write: field `index` (0-12) gets `value` (0-3). */
  setPam(index: number, value: number): void {
    if (this.pam[index] === (value & 3)) return;
    this.pam[index] = value & 3;
    this.rebuildAccess();
  }

  private pamOf(addr: number): number {
    return addr >= 0xf0000 ? this.pam[0] : this.pam[1 + ((addr - PAM_START) >>> 14)];
  }

  /** Recompute which pages the CPU may access directly, then tell the listeners. */
  private rebuildAccess(): void {
    const pa = this.pageAccess;
    pa.fill(0);
    const ramPages = this.ram.length >>> PAGE_SHIFT;
    for (let p = 0; p < ramPages; p++) {
      const addr = p << PAGE_SHIFT;
      if (addr >= LOW_RAM_END && addr < HIGH_START) {
        if (addr < PAM_START) continue; // the VGA window
        const f = this.pamOf(addr);
        pa[p] = (f & PAM_READ ? PAGE_DIRECT_READ : 0) | (f & PAM_WRITE ? PAGE_DIRECT_WRITE : 0);
      } else {
        pa[p] = PAGE_DIRECT_READ | PAGE_DIRECT_WRITE;
      }
      if (this.dirtyTracked[p]) pa[p] &= ~PAGE_DIRECT_WRITE;
      if (this.pageRegion[p] !== 0) pa[p] = 0;
    }
    this.notify();
  }

  // -------------------------------------------------------------------------------------
  // MMIO regions
  // -------------------------------------------------------------------------------------

  map(device: number, start: number, length: number, block: RegisterBlock, options: MmioOptions = {}): Mapping {
    const backing = options.backing ?? null;
    const r: MmioRegion = {
      start: start >>> 0, length, block, device, mapped: false,
      backing, backed: backing ? Math.min(backing.length, length) : 0, dirty: options.dirty ?? null,
    };
    this.regions.push(r);
    const place = () => {
      r.mapped = true;
      this.reindex();
    };
    place();
    return {
      get start() { return r.start; },
      get length() { return r.length; },
      get mapped() { return r.mapped; },
      move: (s: number) => {
        r.start = s >>> 0;
        place();
      },
      unmap: () => {
        r.mapped = false;
        this.reindex();
      },
    };
  }

  private reindex(): void {
    this.pageRegion.fill(0);
    this.regions.forEach((r, i) => {
      if (!r.mapped) return;
      const first = r.start >>> PAGE_SHIFT;
      const last = (r.start + r.length - 1) >>> PAGE_SHIFT;
      for (let p = first; p <= last && p < PAGE_COUNT; p++) this.pageRegion[p] = this.pageRegion[p] === 0 ? i + 1 : -1;
    });
    this.rebuildAccess();
  }

  private regionAt(addr: number): MmioRegion | undefined {
    const entry = this.pageRegion[addr >>> PAGE_SHIFT];
    if (entry === 0) return undefined;
    if (entry > 0) {
      const r = this.regions[entry - 1];
      return addr - r.start < r.length && addr >= r.start ? r : undefined;
    }
    for (const r of this.regions) if (r.mapped && addr >= r.start && addr - r.start < r.length) return r;
    return undefined;
  }

  private mmioRead(r: MmioRegion, addr: number, size: AccessSize): number {
    const s = this.stats;
    const off = addr - r.start;
    s.count(r.device, MMIO_READS);
    s.count(r.device, BYTES_READ, size);
    if (off + size <= r.backed) {
      // Plain memory behind the region: answered here, no trap into the device model.
      const b = r.backing!;
      if (size === 1) return b[off];
      if (size === 2) return b[off] | (b[off + 1] << 8);
      return b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24);
    }
    const path = s.paths[r.device];
    if (path === PATH_EMULATED && this.remote) {
      s.count(r.device, TRAPS);
      return this.remote.read(r.device, r.block, off, size, true);
    }
    const weight = path === PATH_DIRECT ? s.direct(r.device) : s.trap(r.device);
    if (weight === 0 || !this.timing) return r.block.read(off, size);
    const t0 = performance.now();
    const v = r.block.read(off, size);
    s.addTime(r.device, (performance.now() - t0) * 1e6, weight);
    return v;
  }

  private mmioWrite(r: MmioRegion, addr: number, size: AccessSize, value: number): void {
    const s = this.stats;
    const off = addr - r.start;
    s.count(r.device, MMIO_WRITES);
    s.count(r.device, BYTES_WRITTEN, size);
    if (r.dirty !== null) {
      r.dirty.mark(off);
      if (((off + size - 1) ^ off) >>> PAGE_SHIFT) r.dirty.mark(off + size - 1);
    }
    if (off + size <= r.backed) {
      const b = r.backing!;
      b[off] = value;
      if (size > 1) b[off + 1] = value >>> 8;
      if (size === 4) {
        b[off + 2] = value >>> 16;
        b[off + 3] = value >>> 24;
      }
      return;
    }
    const path = s.paths[r.device];
    if (path === PATH_EMULATED && this.remote) {
      s.count(r.device, TRAPS);
      this.remote.write(r.device, r.block, off, size, value, true);
      return;
    }
    const weight = path === PATH_DIRECT ? s.direct(r.device) : s.trap(r.device);
    if (weight === 0 || !this.timing) {
      r.block.write(off, size, value);
      return;
    }
    const t0 = performance.now();
    r.block.write(off, size, value);
    s.addTime(r.device, (performance.now() - t0) * 1e6, weight);
  }

  /** PhysicalBus.backedSpan: video memory for a run of string accesses at once. */
  backedSpan(addr: number, bytes: number): Uint8Array | null {
    addr = (addr & this.a20Mask) >>> 0;
    if (this.pageRegion[addr >>> PAGE_SHIFT] === 0) return null;
    const r = this.regionAt(addr);
    if (r === undefined) return null;
    const off = addr - r.start;
    if (off + bytes > r.backed) return null;
    return r.backing!.subarray(off, off + bytes);
  }

  /** PhysicalBus.spanDone: the run counted as its single accesses (mmioRead/mmioWrite) would be. */
  spanDone(addr: number, elements: number, size: number, write: boolean): void {
    addr = (addr & this.a20Mask) >>> 0;
    const r = this.regionAt(addr);
    if (r === undefined) return;
    const s = this.stats;
    const off = addr - r.start;
    if (write) {
      s.count(r.device, MMIO_WRITES, elements);
      s.count(r.device, BYTES_WRITTEN, elements * size);
      r.dirty?.markRange(off, elements * size);
    } else {
      s.count(r.device, MMIO_READS, elements);
      s.count(r.device, BYTES_READ, elements * size);
    }
  }

  // -------------------------------------------------------------------------------------
  // Slow path: full decode. The CPU's accesses pass the A20 gate (an input of the CPU,
  // A20M#); bus masters' DMA does not, so `phys*` below take addresses as they are.
  // -------------------------------------------------------------------------------------

  read8(addr: number): number {
    return this.phys8((addr & this.a20Mask) >>> 0);
  }

  private phys8(addr: number): number {
    const r = this.pageRegion[addr >>> PAGE_SHIFT] !== 0 ? this.regionAt(addr) : undefined;
    if (r) return this.mmioRead(r, addr, 1) & 0xff;
    if (addr < this.ram.length) {
      if (addr >= LOW_RAM_END && addr < HIGH_START) return this.legacyRead(addr);
      return this.ram[addr];
    }
    if (addr >= this.biosBase && this.bios.length > 0) return this.bios[addr - this.biosBase];
    return 0xff;
  }

  private legacyRead(addr: number): number {
    if (addr < PAM_START) return 0xff; // the VGA window without a VGA
    if (this.pamOf(addr) & PAM_READ) return this.ram[addr];
    return this.romSide(addr);
  }

  /** The ROM side of a PAM area: the BIOS alias for 0xE0000-0xFFFFF, ISA ROM space below. */
  private romSide(addr: number): number {
    if (addr >= 0xe0000) {
      const off = this.bios.length - (HIGH_START - addr);
      return off >= 0 ? this.bios[off] : 0xff;
    }
    return this.isaRom[addr - PAM_START];
  }

  read16(addr: number): number {
    if ((addr & 0xfff) <= 0xffe) {
      const a = (addr & this.a20Mask) >>> 0;
      const r = this.pageRegion[a >>> PAGE_SHIFT] !== 0 ? this.regionAt(a) : undefined;
      if (r && a + 1 - r.start < r.length) return this.mmioRead(r, a, 2) & 0xffff;
    }
    return this.read8(addr) | (this.read8(addr + 1) << 8);
  }

  read32(addr: number): number {
    if ((addr & 0xfff) <= 0xffc) {
      const a = (addr & this.a20Mask) >>> 0;
      const r = this.pageRegion[a >>> PAGE_SHIFT] !== 0 ? this.regionAt(a) : undefined;
      if (r && a + 3 - r.start < r.length) return this.mmioRead(r, a, 4) | 0;
      if (!r && a < this.ram.length && (a < LOW_RAM_END || a >= HIGH_START)) {
        const ram = this.ram;
        return ram[a] | (ram[a + 1] << 8) | (ram[a + 2] << 16) | (ram[a + 3] << 24);
      }
    }
    return this.read16(addr) | (this.read16(addr + 2) << 16);
  }

  write8(addr: number, value: number): void {
    this.physWrite8((addr & this.a20Mask) >>> 0, value);
  }

  private physWrite8(addr: number, value: number): void {
    const r = this.pageRegion[addr >>> PAGE_SHIFT] !== 0 ? this.regionAt(addr) : undefined;
    if (r) {
      this.mmioWrite(r, addr, 1, value & 0xff);
      return;
    }
    if (addr < this.ram.length) {
      if (addr >= LOW_RAM_END && addr < HIGH_START) {
        // The VGA window without a VGA, or a PAM area whose writes go to the ROM side: dropped.
        if (addr < PAM_START || (this.pamOf(addr) & PAM_WRITE) === 0) return;
      }
      if (this.codeWatch[addr >>> PAGE_SHIFT] !== 0) this.onCodeWrite(addr >>> PAGE_SHIFT);
      this.ram[addr] = value;
      this.dirty.pages[addr >>> PAGE_SHIFT] = 1;
    }
    // Writes to the BIOS ROM and to unassigned space are ignored.
  }

  write16(addr: number, value: number): void {
    if ((addr & 0xfff) <= 0xffe) {
      const a = (addr & this.a20Mask) >>> 0;
      const r = this.pageRegion[a >>> PAGE_SHIFT] !== 0 ? this.regionAt(a) : undefined;
      if (r && a + 1 - r.start < r.length) {
        this.mmioWrite(r, a, 2, value & 0xffff);
        return;
      }
    }
    this.write8(addr, value & 0xff);
    this.write8(addr + 1, (value >>> 8) & 0xff);
  }

  write32(addr: number, value: number): void {
    if ((addr & 0xfff) <= 0xffc) {
      const a = (addr & this.a20Mask) >>> 0;
      const r = this.pageRegion[a >>> PAGE_SHIFT] !== 0 ? this.regionAt(a) : undefined;
      if (r && a + 3 - r.start < r.length) {
        this.mmioWrite(r, a, 4, value | 0);
        return;
      }
    }
    this.write16(addr, value & 0xffff);
    this.write16(addr + 2, (value >>> 16) & 0xffff);
  }

  // -------------------------------------------------------------------------------------
  // Write watch for translated code (PhysicalBus.watchWrites)
  // -------------------------------------------------------------------------------------

  private codeWatch: Uint8Array = NO_WATCHED_PAGES;
  private onCodeWrite: (page: number) => void = () => {};

  watchWrites(pages: Uint8Array, onWrite: (page: number) => void): void {
    this.codeWatch = pages;
    this.onCodeWrite = onWrite;
  }

  // -------------------------------------------------------------------------------------
  // Dirty log of RAM (DESIGN.md seam 5)
  // -------------------------------------------------------------------------------------

  /**
   * Every slow-path write, DMA write and write to a tracked page marks `dirty`; pages
   * tracked here also leave the CPU's direct write path, so no write escapes the log.
   * Tracking counts per page, so two users (a snapshot and the code cache) can overlap.
   */
  trackDirty(start: number, length: number): void {
    this.forPages(start, length, (p) => {
      if (this.dirtyTracked[p]++ === 0) this.dirty.pages[p] = 0;
    });
    this.rebuildAccess();
  }

  /** Stop what one trackDirty(start, length) started. */
  untrackDirty(start: number, length: number): void {
    this.forPages(start, length, (p) => {
      if (this.dirtyTracked[p] > 0) this.dirtyTracked[p]--;
    });
    this.rebuildAccess();
  }

  /** Copy the dirty marks of the pages of [start, start+length) into `into` (one byte a page) and clear them; returns how many. */
  collectDirty(start: number, length: number, into: Uint8Array): number {
    const first = start >>> PAGE_SHIFT;
    const n = Math.min((length + 0xfff) >>> PAGE_SHIFT, into.length);
    return this.dirty.collect(n === into.length ? into : into.subarray(0, n), first);
  }

  private forPages(start: number, length: number, fn: (page: number) => void): void {
    const last = Math.min(Math.ceil((start + length) / (1 << PAGE_SHIFT)), this.dirtyTracked.length);
    for (let p = start >>> PAGE_SHIFT; p < last; p++) fn(p);
  }

  // -------------------------------------------------------------------------------------
  // Bus-master access (the bus's DMA handles call these after any IOMMU translation)
  // -------------------------------------------------------------------------------------

  /** Is physical page `page` plain RAM (no hole, no PAM area, no MMIO region)? */
  private plainRamPage(page: number): boolean {
    const addr = page << PAGE_SHIFT;
    return addr >= 0 && addr < this.ram.length && (addr < LOW_RAM_END || addr >= HIGH_START) && this.pageRegion[page] === 0;
  }

  /**
   * Write `src` at guest-physical `addr` as a bus master: RAM pages in one copy (marked
   * dirty), anything else (PAM areas, MMIO of another device, unassigned) byte by byte
   * through the full decode, as a PCI master's write would be claimed.
   */
  dmaWrite(addr: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) {
      const a = (addr + done) >>> 0;
      const n = Math.min(src.length - done, (1 << PAGE_SHIFT) - (a & 0xfff));
      const page = a >>> PAGE_SHIFT;
      if (this.plainRamPage(page)) {
        if (this.codeWatch[page] !== 0) this.onCodeWrite(page);
        this.ram.set(n === src.length ? src : src.subarray(done, done + n), a);
        this.dirty.pages[page] = 1;
      } else {
        for (let i = 0; i < n; i++) this.physWrite8((a + i) >>> 0, src[done + i]);
      }
      done += n;
    }
  }

  dmaRead(addr: number, dst: Uint8Array): void {
    let done = 0;
    while (done < dst.length) {
      const a = (addr + done) >>> 0;
      const n = Math.min(dst.length - done, (1 << PAGE_SHIFT) - (a & 0xfff));
      if (this.plainRamPage(a >>> PAGE_SHIFT)) {
        dst.set(this.ram.subarray(a, a + n), done);
      } else {
        for (let i = 0; i < n; i++) dst[done + i] = this.phys8((a + i) >>> 0);
      }
      done += n;
    }
  }

  // -------------------------------------------------------------------------------------
  // State (DESIGN.md seam 2): RAM, PAM, A20. The BIOS and the regions are configuration.
  // -------------------------------------------------------------------------------------

  saveState(): { ram: Uint8Array; pam: Uint8Array; a20: boolean } {
    return { ram: this.ram.slice(), pam: this.pam.slice(), a20: this.a20Enabled };
  }

  loadState(s: { ram: Uint8Array; pam: Uint8Array; a20: boolean }): void {
    if (s.ram.length !== this.ram.length) throw new RangeError(`saved RAM is ${s.ram.length} bytes, this machine has ${this.ram.length}`);
    this.ram.set(s.ram);
    this.pam.set(s.pam);
    this.a20Mask = s.a20 ? -1 : ~(1 << 20);
    this.dirty.markAll();
    this.rebuildAccess();
  }
}
