/**
 * PCI bus 0 behind configuration mechanism #1 (PCI Local Bus Specification 3.0 §3.2.2.3.2:
 * CONFIG_ADDRESS at 0xCF8, CONFIG_DATA at 0xCFC-0xCFF). The bus owns every function's
 * type-0 header (§6.1): identification, command/status, BARs (sizing, moving their
 * mappings), the expansion ROM BAR, interrupt line/pin; the device answers the rest.
 * INTx pins are routed as the PIIX3 does: slot swizzle to PIRQA-D, then the PIRQ route
 * registers of the ISA bridge (82371SB §4.1.10) pick the ISA IRQ.
 */
import { array, bool, bytes, record, reg32, u8, vmstate } from '../bus/vmstate.ts';
import type { AccessSize, DeviceContext, DeviceState, IrqLine, Mapping, RegisterBlock } from '../bus/device.ts';
import type { PlatformBus } from '../bus/platform-bus.ts';
import { readConfigBytes, type PciBarSpec, type PciDevice } from './pci-function.ts';
import { CONFIG_READS, CONFIG_WRITES } from '../bus/stats.ts';

const COMMAND_IO = 0x1;
const COMMAND_MEMORY = 0x2;
const COMMAND_MASTER = 0x4;
const COMMAND_INTX_DISABLE = 0x400;
/** Command bits a function implements here (I/O, memory, bus master, SERR, INTx disable). */
const COMMAND_WRITABLE = 0x0107 | COMMAND_INTX_DISABLE;
const STATUS_INTERRUPT = 0x08;

/** One PCI function as PciBus.describe() reports it. */
export interface PciFunctionInfo {
  bdf: string;
  name: string;
  vendorId: number;
  deviceId: number;
  /** Base class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  command: number;
  bars: { index: number; kind: 'io' | 'mem'; base: number; size: number; decoded: boolean }[];
  /** 0 none, 1-4 INTA#-INTD#. */
  interruptPin: number;
  /** What the BIOS wrote to the interrupt line register (config 0x3C). */
  interruptLine: number;
  /** PIRQ link the pin reaches through the slot swizzle ('A'-'D'). */
  link?: string;
  /** ISA IRQ that link is routed to (null: routing disabled or no pin). */
  irq: number | null;
}

interface Slot {
  devfn: number;
  /** The function's statistics row. */
  row: number;
  device: PciDevice;
  ctx: DeviceContext;
  config: Uint8Array;
  bars: (PciBarSpec | undefined)[];
  mappings: (Mapping | undefined)[];
  romMapping?: Mapping;
  /** INTx# as the function drives it, and as it reaches the link (the command register may disable it). */
  intxRequested: boolean;
  intxLevel: boolean;
}

/**
 * The configuration mechanism #1 address (0xCF8, PCI Local Bus spec 3.0 §3.2.2.3.2), the
 * reset control register (0xCF9), and each function's 256-byte configuration space as the
 * bus holds it (the header; functions keep their device-specific registers themselves)
 * with its INTx request.
 */
export const PCI_BUS_STATE = vmstate('pci-bus', 1, {
  address: reg32,
  resetControl: u8,
  functions: array(record({ devfn: u8, config: bytes(256), intx: bool }), 0, 256),
});

function devfnName(devfn: number): string {
  return `00:${(devfn >> 3).toString(16).padStart(2, '0')}.${devfn & 7}`;
}

export class PciBus {
  private readonly slots = new Map<number, Slot>();
  private address = 0;
  /** PIRQA-D route registers (config 0x60-0x63 of the ISA bridge): bit 7 disables, bits 3-0 the IRQ. */
  readonly pirq = Uint8Array.of(0x80, 0x80, 0x80, 0x80);
  /** How many functions assert each PIRQ link. */
  private readonly linkCount = new Uint8Array(4);
  /** ISA IRQ lines driven by the PCI links (through the bus's own context). */
  private readonly isaIrq: IrqLine[];
  /** 0xCF9 reset control (PIIX3 §4.1.17), handled by whoever owns reset. */
  onResetControl: (value: number) => void = () => {};

  constructor(private readonly bus: PlatformBus) {
    const row = bus.stats.add({ name: 'pci' });
    const ctx = bus.context(row, 'pci');
    this.isaIrq = Array.from({ length: 16 }, (_, i) => ctx.irq(i));
    ctx.mapPorts(0xcf8, 4, {
      read: (off, size) => (off === 0 && size === 4 ? this.address : off === 1 && size === 1 ? this.resetControl : 0xff),
      write: (off, size, v) => {
        if (off === 0 && size === 4) this.address = v & 0x80fffffc;
        else if (off === 1 && size === 1) {
          this.resetControl = v & 0x0e;
          this.onResetControl(v & 0xff);
        }
      },
    });
    ctx.mapPorts(0xcfc, 4, {
      read: (off, size) => this.readData(off, size),
      write: (off, size, v) => this.writeData(off, size, v),
    });
  }

  private resetControl = 0;

  /** Plug `device` in at device number `slot`, function `fn`; returns its context. */
  plug(device: PciDevice, slot: number, fn = 0): DeviceContext {
    const devfn = (slot << 3) | fn;
    if (this.slots.has(devfn)) throw new Error(`PCI 00:${slot.toString(16).padStart(2, '0')}.${fn} is taken`);
    const spec = device.pci;
    const config = new Uint8Array(256);
    const v = new DataView(config.buffer);
    v.setUint16(0x00, spec.vendorId, true);
    v.setUint16(0x02, spec.deviceId, true);
    config[0x08] = spec.revision;
    config[0x09] = spec.classCode & 0xff;
    config[0x0a] = (spec.classCode >> 8) & 0xff;
    config[0x0b] = (spec.classCode >> 16) & 0xff;
    config[0x0e] = spec.headerType ?? 0;
    v.setUint16(0x2c, spec.subsystemVendorId ?? 0, true);
    v.setUint16(0x2e, spec.subsystemId ?? 0, true);
    config[0x3d] = spec.interruptPin;
    const bars: (PciBarSpec | undefined)[] = new Array(6).fill(undefined);
    for (const b of spec.bars) {
      bars[b.index] = b;
      v.setUint32(0x10 + b.index * 4, b.kind === 'io' ? 1 : b.prefetchable ? 0x8 : 0, true);
    }
    const ctx = this.bus.attach(device, { pci: `00:${slot.toString(16).padStart(2, '0')}.${fn}` });
    const row = this.bus.stats.devices.length - 1;
    const s: Slot = { devfn, row, device, ctx, config, bars, mappings: new Array(6).fill(undefined), intxRequested: false, intxLevel: false };
    // A function masters the bus only while its command register allows it (PCI 3.0 §6.2.2).
    this.bus.setDmaAllowed(this.bus.rowOf(device), () => (v.getUint16(0x04, true) & COMMAND_MASTER) !== 0);
    this.slots.set(devfn, s);
    device.attachPci({
      intx: {
        set: (level) => this.setIntx(s, level),
        raise: () => this.setIntx(s, true),
        lower: () => this.setIntx(s, false),
        pulse: () => { this.setIntx(s, true); this.setIntx(s, false); },
      },
      busMasterEnabled: () => (v.getUint16(0x04, true) & COMMAND_MASTER) !== 0,
    });
    return ctx;
  }

  // ---------------------------------------------------------------------------------------
  // Configuration space
  // ---------------------------------------------------------------------------------------

  private target(): { slot: Slot; reg: number } | undefined {
    if ((this.address & 0x80000000) === 0) return undefined;
    const busNo = (this.address >> 16) & 0xff;
    if (busNo !== 0) return undefined;
    const slot = this.slots.get((this.address >> 8) & 0xff);
    return slot ? { slot, reg: this.address & 0xfc } : undefined;
  }

  private readData(off: number, size: AccessSize): number {
    const t = this.target();
    if (!t) return size === 4 ? -1 : (1 << (size * 8)) - 1;
    this.bus.stats.count(t.slot.row, CONFIG_READS);
    return this.configRead(t.slot, t.reg + off, size);
  }

  private writeData(off: number, size: AccessSize, value: number): void {
    const t = this.target();
    if (!t) return;
    this.bus.stats.count(t.slot.row, CONFIG_WRITES);
    this.configWrite(t.slot, t.reg + off, size, value);
  }

  /** Read config space of 00:slot.fn directly (tests, the machine view). */
  read(slot: number, fn: number, reg: number, size: AccessSize): number {
    const s = this.slots.get((slot << 3) | fn);
    return s ? this.configRead(s, reg, size) : size === 4 ? -1 : (1 << (size * 8)) - 1;
  }

  write(slot: number, fn: number, reg: number, size: AccessSize, value: number): void {
    const s = this.slots.get((slot << 3) | fn);
    if (s) this.configWrite(s, reg, size, value);
  }

  private configRead(s: Slot, reg: number, size: AccessSize): number {
    if (reg >= 0x40 || (reg >= 0x28 && reg < 0x2c) || (reg >= 0x34 && reg < 0x3c)) {
      const v = s.device.pci.configRead?.(reg, size);
      if (v !== undefined) return v;
    }
    return readConfigBytes(s.config, reg, size);
  }

  private configWrite(s: Slot, reg: number, size: AccessSize, value: number): void {
    if (reg >= 0x40) {
      if (s.device.pci.configWrite?.(reg, size, value)) return;
      for (let i = 0; i < size; i++) s.config[reg + i] = (value >>> (8 * i)) & 0xff;
      return;
    }
    // Header registers, byte by byte, with their write rules.
    const v = new DataView(s.config.buffer);
    let barsTouched = false;
    for (let i = 0; i < size; i++) {
      const r = reg + i;
      const b = (value >>> (8 * i)) & 0xff;
      if (r === 0x04 || r === 0x05) {
        const cmd = v.getUint16(0x04, true);
        const shift = (r - 0x04) * 8;
        const next = ((cmd & ~(0xff << shift)) | (b << shift)) & COMMAND_WRITABLE;
        v.setUint16(0x04, next, true);
        barsTouched = true;
      } else if (r === 0x06 || r === 0x07) {
        // Status: write 1 to clear the error bits (§6.2.3).
        s.config[r] &= ~(b & (r === 0x07 ? 0xf9 : 0x00));
      } else if (r === 0x0c || r === 0x0d || r === 0x3c) {
        s.config[r] = b; // cache line size, latency timer, interrupt line
      } else if (r >= 0x10 && r < 0x28) {
        s.config[r] = b;
        barsTouched = true;
      } else if (r >= 0x30 && r < 0x34) {
        s.config[r] = b;
        barsTouched = true;
      }
      // Everything else in the header is read-only.
    }
    if (barsTouched) {
      this.updateBars(s);
      this.applyIntx(s);
    }
  }

  /** Apply the BAR size masks and (re)map each BAR per the command register (§6.2.5.1). */
  private updateBars(s: Slot): void {
    const v = new DataView(s.config.buffer);
    const cmd = v.getUint16(0x04, true);
    for (let i = 0; i < 6; i++) {
      const bar = s.bars[i];
      const at = 0x10 + i * 4;
      if (!bar) {
        v.setUint32(at, 0, true);
        continue;
      }
      const size = bar.kind === 'mem' ? Math.max(bar.size, 16) : Math.max(bar.size, 4);
      const low = bar.kind === 'io' ? 1 : bar.prefetchable ? 0x8 : 0;
      const base = (v.getUint32(at, true) & ~(size - 1) & (bar.kind === 'io' ? 0xfffffffc : 0xfffffff0)) >>> 0;
      v.setUint32(at, (base | low) >>> 0, true);
      const enabled = (cmd & (bar.kind === 'io' ? COMMAND_IO : COMMAND_MEMORY)) !== 0;
      // A BAR at 0 or with its size mask (being sized) is not decoded.
      const valid = enabled && base !== 0 && base !== ((bar.kind === 'io' ? 0xfffffffc : 0xfffffff0) & ~(size - 1)) >>> 0;
      this.placeMapping(s, i, bar, valid ? base : -1);
    }
    const rom = s.device.pci.rom;
    if (rom) {
      const size = 1 << Math.ceil(Math.log2(Math.max(rom.length, 2048)));
      const raw = v.getUint32(0x30, true);
      const base = (raw & ~(size - 1) & 0xfffff800) >>> 0;
      v.setUint32(0x30, (base | (raw & 1)) >>> 0, true);
      const on = (raw & 1) !== 0 && (cmd & COMMAND_MEMORY) !== 0 && base !== 0 && base !== (0xfffff800 & ~(size - 1)) >>> 0;
      if (on) {
        const block: RegisterBlock = {
          read: (off, sz) => {
            let x = 0;
            for (let k = 0; k < sz; k++) x |= (off + k < rom.length ? rom[off + k] : 0xff) << (8 * k);
            return sz === 4 ? x | 0 : x;
          },
          write: () => {},
        };
        if (s.romMapping) s.romMapping.move(base);
        else s.romMapping = s.ctx.mapMmio(base, size, block);
      } else {
        s.romMapping?.unmap();
      }
    } else {
      v.setUint32(0x30, 0, true);
    }
  }

  private placeMapping(s: Slot, i: number, bar: PciBarSpec, base: number): void {
    const m = s.mappings[i];
    if (base < 0) {
      m?.unmap();
      return;
    }
    if (m) {
      if (!m.mapped || m.start !== base) m.move(base);
      return;
    }
    s.mappings[i] = bar.kind === 'io' ? s.ctx.mapPorts(base, bar.size, bar.block) : s.ctx.mapMmio(base, bar.size, bar.block, bar.mmio);
  }

  // ---------------------------------------------------------------------------------------
  // INTx routing
  // ---------------------------------------------------------------------------------------

  /** PIRQ link of a function's pin: the PIIX3 slot swizzle, (pin - 1 + slot - 1) mod 4. */
  link(devfn: number, pin: number): number {
    return (pin - 1 + (devfn >> 3) - 1) & 3;
  }

  private setIntx(s: Slot, level: boolean): void {
    s.intxRequested = level;
    this.applyIntx(s);
  }

  /** Pass the function's INTx# on unless the command register's Interrupt Disable masks it (PCI 3.0 §6.2.2). */
  private applyIntx(s: Slot): void {
    const v = new DataView(s.config.buffer);
    // The status bit shows the function's own request even while it is masked (§6.2.3).
    s.config[0x06] = s.intxRequested ? s.config[0x06] | STATUS_INTERRUPT : s.config[0x06] & ~STATUS_INTERRUPT;
    const level = s.intxRequested && (v.getUint16(0x04, true) & COMMAND_INTX_DISABLE) === 0;
    if (level === s.intxLevel) return;
    s.intxLevel = level;
    const link = this.link(s.devfn, s.config[0x3d]);
    const before = this.linkCount[link] > 0;
    this.linkCount[link] += level ? 1 : -1;
    const after = this.linkCount[link] > 0;
    if (before !== after) this.refreshIrqs();
  }

  /** Each ISA IRQ is the OR of the asserted links routed to it (links may share an IRQ). */
  private refreshIrqs(): void {
    const want = new Array<boolean>(16).fill(false);
    for (let link = 0; link < 4; link++) {
      const route = this.pirq[link];
      const irq = route & 0x0f;
      // Disabled routes and the reserved IRQs 0-2, 8, 13 (82371SB table 14) go nowhere.
      if (route & 0x80 || irq < 3 || irq === 8 || irq === 13) continue;
      if (this.linkCount[link] > 0) want[irq] = true;
    }
    for (let irq = 0; irq < 16; irq++) this.isaIrq[irq].set(want[irq]);
  }

  /** A write to PIRQ route register `link` (ISA bridge config 0x60 + link). */
  setPirq(link: number, value: number): void {
    this.pirq[link] = value & 0x8f;
    this.refreshIrqs();
  }

  // ---------------------------------------------------------------------------------------
  // The machine view
  // ---------------------------------------------------------------------------------------

  /**
   * Every function as the guest has programmed it (for the page's machine view): IDs,
   * class, BARs with their current base and whether they decode, the INTx pin with its
   * PIRQ link and the ISA IRQ the link is routed to.
   */
  describe(): { functions: PciFunctionInfo[]; pirq: { link: string; irq: number | null }[] } {
    const route = (link: number): number | null => {
      const r = this.pirq[link];
      return r & 0x80 ? null : r & 0x0f;
    };
    const functions = [...this.slots.values()].sort((a, b) => a.devfn - b.devfn).map((s): PciFunctionInfo => {
      const v = new DataView(s.config.buffer);
      const cmd = v.getUint16(0x04, true);
      const bars = s.bars.flatMap((bar, i) => {
        if (!bar) return [];
        const raw = v.getUint32(0x10 + i * 4, true);
        const base = (bar.kind === 'io' ? raw & 0xfffffffc : raw & 0xfffffff0) >>> 0;
        return [{ index: i, kind: bar.kind, base, size: bar.size, decoded: s.mappings[i]?.mapped ?? false }];
      });
      const pin = s.config[0x3d];
      const link = pin ? this.link(s.devfn, pin) : undefined;
      return {
        bdf: `00:${(s.devfn >> 3).toString(16).padStart(2, '0')}.${s.devfn & 7}`,
        name: s.device.name,
        vendorId: v.getUint16(0x00, true),
        deviceId: v.getUint16(0x02, true),
        classCode: s.config[0x09] | (s.config[0x0a] << 8) | (s.config[0x0b] << 16),
        command: cmd,
        bars,
        interruptPin: pin,
        interruptLine: s.config[0x3c],
        link: link === undefined ? undefined : 'ABCD'[link],
        irq: link === undefined ? null : route(link),
      };
    });
    return { functions, pirq: [0, 1, 2, 3].map((l) => ({ link: 'ABCD'[l], irq: route(l) })) };
  }

  // ---------------------------------------------------------------------------------------
  // Reset and state
  // ---------------------------------------------------------------------------------------

  /**
   * PCIRST#: every function's header to its power-on values (command 0, so nothing is
   * decoded; BARs back to their type bits; interrupt line 0). The functions' own
   * registers are reset by their devices.
   */
  reset(): void {
    this.address = 0;
    this.resetControl = 0;
    for (const s of this.slots.values()) {
      const v = new DataView(s.config.buffer);
      v.setUint16(0x04, 0, true);
      s.config[0x06] &= STATUS_INTERRUPT;
      s.config[0x07] = 0;
      s.config[0x0c] = 0;
      s.config[0x0d] = 0;
      for (let i = 0; i < 6; i++) v.setUint32(0x10 + i * 4, 0, true);
      v.setUint32(0x30, 0, true);
      s.config[0x3c] = 0;
      this.updateBars(s);
      this.applyIntx(s);
    }
  }

  /** The header and the bus's own registers; the functions save their own registers. */
  saveState(): DeviceState {
    return PCI_BUS_STATE.save({
      address: this.address,
      resetControl: this.resetControl,
      functions: [...this.slots.values()].map((s) => ({ devfn: s.devfn, config: s.config, intx: s.intxRequested })),
    });
  }

  /** Load what saveState() returned; a function this bus lacks is refused before anything changes. */
  loadState(saved: DeviceState): void {
    const state = PCI_BUS_STATE.load(saved, 'pci');
    for (const f of state.functions) {
      if (!this.slots.has(f.devfn)) throw new Error(`pci-bus: the state has a PCI function at ${devfnName(f.devfn)} this bus lacks`);
    }
    this.address = state.address;
    this.resetControl = state.resetControl;
    for (const f of state.functions) {
      const s = this.slots.get(f.devfn)!;
      s.config.set(f.config);
      this.updateBars(s);
      s.intxRequested = f.intx;
      this.applyIntx(s);
    }
  }
}
