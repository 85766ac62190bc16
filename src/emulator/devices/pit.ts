/**
 * Intel 8254 programmable interval timer at 0x40-0x43 (1.193182 MHz), and the PC's
 * port 0x61 (timer 2 gate and output, speaker enable, DRAM refresh toggle).
 *
 * Counts are computed from virtual time when read, never ticked: a counter remembers
 * when it was loaded and derives its value and OUT from the clock (Intel 8254
 * datasheet, "Mode 0" .. "Mode 5"). Counter 0's OUT drives IRQ0: a timer is set only
 * for its next rising edge.
 *
 * For the machine: nothing beyond attach; IRQ0 goes through the bus.
 */
import type { Device, DeviceContext, DeviceState, IrqLine, TimerId } from '../bus/device.ts';
import { array, bool, int, real, record, u16, u8, vmstate, type TypeOf, type VmStateOf } from '../bus/vmstate.ts';

export const PIT_HZ = 1_193_182;
const NS_PER_TICK = 1e9 / PIT_HZ;
/** Port 0x61 bit 4 toggles with every DRAM refresh cycle, about every 15 µs; BIOS delay loops count them. */
const REFRESH_NS = 15_085;

/** One counter of the 8254 (datasheet, "Counter Description"). */
const COUNTER = record({
  /** Control word fields: RW (1 LSB, 2 MSB, 3 LSB then MSB), mode 0-5, BCD. */
  rw: int(1, 3),
  mode: int(0, 5),
  bcd: bool,
  /** The count register as loaded (0 means 65536, or 10000 in BCD). */
  reload: u16,
  /** Virtual time the count started (after the load or gate trigger); -1 while waiting for it. */
  start: real(-1),
  /** Count frozen while the gate is low (modes 0 and 4); up to 65536 after a load of 0. */
  frozen: int(0, 0x10000),
  gate: bool,
  /** Write state: the LSB has been written and the MSB is due. */
  writeMsb: bool,
  /** Partially written count (LSB; a BCD byte converts to 0..165). */
  pendingLsb: u8,
  /** Read state: next read returns the MSB. */
  readMsb: bool,
  /** Latched count (-1 none) and status (-1 none). */
  latch: int(-1, 0xffff),
  latchMsb: bool,
  status: int(-1, 0xff),
  /** A new count was written but not yet loaded into the counting element. */
  nullCount: bool,
});
type Counter = TypeOf<typeof COUNTER>;

/**
 * Timer state: three counters and port 0x61. IRQ0's timer is derived from counter 0
 * (its next rising OUT edge), so it is re-armed from these fields, not saved.
 */
export const PIT_STATE = vmstate('i8254', 1, {
  counters: array(COUNTER, 3),
  /** Port 0x61 bits 0-3 as written (timer 2 gate, speaker data, NMI check enables). */
  port61: int(0, 0x0f),
});
export type PitState = VmStateOf<typeof PIT_STATE>;

function newCounter(gate: boolean): Counter {
  return {
    rw: 3, mode: 0, bcd: false, reload: 0, start: -1, frozen: 0, gate, writeMsb: false, pendingLsb: 0,
    readMsb: false, latch: -1, latchMsb: false, status: -1, nullCount: true,
  };
}

export class Pit8254 implements Device {
  readonly name = 'pit';
  state: PitState = { counters: [newCounter(true), newCounter(true), newCounter(false)], port61: 0 };
  private ctx!: DeviceContext;
  private irq0!: IrqLine;
  private timer: TimerId = 0;

  attach(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.irq0 = ctx.irq(0);
    ctx.mapPorts(0x40, 4, {
      read: (off) => (off === 3 ? 0xff : this.readCounter(off)),
      write: (off, _s, v) => (off === 3 ? this.writeControl(v & 0xff) : this.writeCounter(off, v & 0xff)),
    });
    ctx.mapPorts(0x61, 1, { read: () => this.readPort61(), write: (_o, _s, v) => this.writePort61(v) });
  }

  reset(): void {
    this.state = { counters: [newCounter(true), newCounter(true), newCounter(false)], port61: 0 };
    this.schedule();
  }

  private period(c: Counter): number {
    return c.reload === 0 ? (c.bcd ? 10000 : 0x10000) : c.reload;
  }

  /** Input clock ticks since the counter started. */
  private ticks(c: Counter): number {
    if (c.start < 0) return 0;
    // Modes 0 and 4 count only while the gate is high (datasheet, "GATE").
    if (!c.gate && (c.mode === 0 || c.mode === 4)) return 0;
    return Math.floor((this.ctx.clock.now() - c.start) / NS_PER_TICK);
  }

  /** The counting element's current value (what a latch would capture). */
  count(i: number): number {
    const c = this.state.counters[i];
    if (c.start < 0) return c.frozen;
    const n = this.period(c);
    const t = this.ticks(c);
    switch (c.mode) {
      case 2:
        return n - (t % n);
      case 3: {
        // Decrements by two each clock; an odd count spends one clock more in the high half.
        const half = (t * 2) % n;
        return (n - half) & 0xfffe || n;
      }
      default:
        // Modes 0, 1, 4, 5 count down once and wrap past zero (the datasheet's "continues counting").
        return (((c.frozen - t) % 0x10000) + 0x10000) % 0x10000;
    }
  }

  /** Counter output level now (Intel 8254 figures for each mode). */
  out(i: number): boolean {
    const c = this.state.counters[i];
    if (c.start < 0) return c.mode !== 0; // mode 0 OUT starts low after the control word
    const n = this.period(c);
    const t = this.ticks(c);
    switch (c.mode) {
      case 0: return t >= c.frozen;
      case 1: return t >= c.frozen;
      case 2: return !c.gate || t % n !== n - 1;
      case 3: return !c.gate || (t % n) < Math.ceil(n / 2);
      case 4:
      case 5: return t !== c.frozen;
      default: return true;
    }
  }

  private load(i: number, value: number): void {
    const c = this.state.counters[i];
    c.reload = value;
    c.nullCount = false;
    c.frozen = value === 0 ? (c.bcd ? 10000 : 0x10000) : value;
    // Modes 1 and 5 wait for a gate trigger; the others start on the next clock.
    if (c.mode === 1 || c.mode === 5) {
      c.start = -1;
    } else {
      c.start = this.ctx.clock.now();
    }
    if (i === 0) this.schedule();
  }

  /** Set the timer for counter 0's next rising OUT edge (IRQ0). */
  private schedule(): void {
    if (!this.ctx) return;
    this.ctx.clock.cancelTimer(this.timer);
    this.timer = 0;
    const c = this.state.counters[0];
    if (c.start < 0) return;
    const now = this.ctx.clock.now();
    const t = this.ticks(c);
    let nextTick: number;
    if (c.mode === 2 || c.mode === 3) {
      const n = this.period(c);
      nextTick = (Math.floor(t / n) + 1) * n;
    } else if (c.mode === 0 || c.mode === 4) {
      if (t >= c.frozen) {
        // Already at terminal count: OUT is high (mode 0); no further edge.
        this.irq0.set(c.mode === 0);
        return;
      }
      this.irq0.lower();
      nextTick = c.frozen;
    } else {
      return;
    }
    const at = Math.max(now, c.start + Math.ceil(nextTick * NS_PER_TICK));
    this.timer = this.ctx.clock.setTimer(at, () => this.fire());
  }

  private fire(): void {
    const c = this.state.counters[0];
    this.timer = 0;
    if (c.mode === 0) this.irq0.raise();
    else this.irq0.pulse(); // a rising edge each period (modes 2, 3) or the strobe (4)
    if (c.mode === 2 || c.mode === 3) this.schedule();
  }

  private writeControl(v: number): void {
    const sc = v >> 6;
    if (sc === 3) {
      // Read-back command: latch count (bit 5 = 0) and/or status (bit 4 = 0) of the selected counters.
      for (let i = 0; i < 3; i++) {
        if (!(v & (2 << i))) continue;
        const c = this.state.counters[i];
        if (!(v & 0x20) && c.latch < 0) this.latchCount(i);
        if (!(v & 0x10) && c.status < 0) {
          c.status = (this.out(i) ? 0x80 : 0) | (c.nullCount ? 0x40 : 0) | (c.rw << 4) | (c.mode << 1) | (c.bcd ? 1 : 0);
        }
      }
      return;
    }
    const c = this.state.counters[sc];
    const rw = (v >> 4) & 3;
    if (rw === 0) {
      // Counter latch command.
      if (c.latch < 0) this.latchCount(sc);
      return;
    }
    c.rw = rw;
    c.mode = (v >> 1) & 7;
    if (c.mode > 5) c.mode -= 4; // 6 and 7 are modes 2 and 3
    c.bcd = (v & 1) !== 0;
    c.writeMsb = false;
    c.readMsb = false;
    c.latch = -1;
    c.status = -1;
    c.nullCount = true;
    // Writing the control word stops the count until a new one is loaded.
    c.frozen = this.count(sc);
    c.start = -1;
    if (sc === 0) this.schedule();
    if (sc === 0 && c.mode === 0) this.irq0.lower();
  }

  private latchCount(i: number): void {
    const c = this.state.counters[i];
    let v = this.count(i) & 0xffff;
    if (c.bcd) v = toBcd(v);
    c.latch = v;
    c.latchMsb = false;
  }

  private writeCounter(i: number, v: number): void {
    const c = this.state.counters[i];
    const byte = c.bcd ? fromBcd(v) : v;
    switch (c.rw) {
      case 1:
        this.load(i, byte);
        break;
      case 2:
        this.load(i, byte * (c.bcd ? 100 : 256));
        break;
      default:
        if (!c.writeMsb) {
          c.pendingLsb = byte;
          c.writeMsb = true;
          // Mode 0: writing the first byte stops the count (datasheet, mode 0).
          if (c.mode === 0) {
            c.frozen = this.count(i);
            c.start = -1;
          }
        } else {
          c.writeMsb = false;
          this.load(i, c.pendingLsb + byte * (c.bcd ? 100 : 256));
        }
    }
  }

  private readCounter(i: number): number {
    const c = this.state.counters[i];
    if (c.status >= 0) {
      const s = c.status;
      c.status = -1;
      return s;
    }
    let value: number;
    let msb: boolean;
    if (c.latch >= 0) {
      value = c.latch;
      msb = c.rw === 2 || (c.rw === 3 && c.latchMsb);
      if (c.rw === 3 && !c.latchMsb) c.latchMsb = true;
      else c.latch = -1;
    } else {
      value = this.count(i) & 0xffff;
      if (c.bcd) value = toBcd(value);
      msb = c.rw === 2 || (c.rw === 3 && c.readMsb);
      if (c.rw === 3) c.readMsb = !c.readMsb;
    }
    return msb ? (value >> 8) & 0xff : value & 0xff;
  }

  private readPort61(): number {
    const refresh = Math.floor(this.ctx.clock.now() / REFRESH_NS) & 1;
    return (this.state.port61 & 0x0f) | (refresh ? 0x10 : 0) | (this.out(2) ? 0x20 : 0);
  }

  private writePort61(v: number): void {
    this.state.port61 = v & 0x0f;
    this.setGate(2, (v & 1) !== 0);
  }

  /** Gate input of a counter (only counter 2's is wired on the PC, to port 0x61 bit 0). */
  setGate(i: number, level: boolean): void {
    const c = this.state.counters[i];
    if (c.gate === level) return;
    const now = this.ctx.clock.now();
    if (!level) {
      if ((c.mode === 0 || c.mode === 4) && c.start >= 0) {
        c.frozen = this.count(i);
        c.start = now;
      }
      c.gate = false;
      return;
    }
    c.gate = true;
    if (c.nullCount && c.start < 0 && c.reload === 0 && c.mode !== 1 && c.mode !== 5) return;
    if (c.mode === 0 || c.mode === 4) {
      // Counting resumes from where it stopped.
      if (c.start >= 0) c.start = now;
    } else {
      // Modes 1, 2, 3, 5: a rising gate (re)starts the count from the reload value.
      c.frozen = this.period(c);
      c.start = now;
    }
    if (i === 0) this.schedule();
  }

  saveState(): DeviceState {
    return PIT_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state = PIT_STATE.load(s, this.name);
    this.schedule();
  }
}

function toBcd(v: number): number {
  v %= 10000;
  return (Math.floor(v / 1000) << 12) | (Math.floor(v / 100) % 10 << 8) | (Math.floor(v / 10) % 10 << 4) | (v % 10);
}

function fromBcd(v: number): number {
  return (v >> 4) * 10 + (v & 0xf);
}
