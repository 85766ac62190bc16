/**
 * Motorola MC146818 real-time clock with its 128 bytes of CMOS RAM (0x70 index with the
 * NMI mask in bit 7, 0x71 data), IRQ8. Time runs from a start date on the virtual clock,
 * so a deterministic machine always sees the same date (MC146818A datasheet: "Time,
 * Calendar and Alarm Locations", registers A-D, "Interrupts").
 *
 * For the machine: options `startMs` (epoch milliseconds the guest's clock starts at),
 * `fillCmos(layout)` with what SeaBIOS reads (memory sizes, boot order, drives), and
 * `nmiMasked` (port 0x70 bit 7).
 */
import type { Device, DeviceContext, DeviceState, IrqLine, TimerId } from '../bus/device.ts';
import { bool, bytes, deadline, int, ns, real, vmstate, type VmStateOf } from '../bus/vmstate.ts';

const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;
// Register B bits
const B_SET = 0x80;
const B_PIE = 0x40;
const B_AIE = 0x20;
const B_UIE = 0x10;
const B_DM = 0x04; // binary (not BCD)
const B_24H = 0x02;
// Register C bits
const C_IRQF = 0x80;
const C_PF = 0x40;
const C_AF = 0x20;
const C_UF = 0x10;
/** Update-in-progress precedes each update by 244 µs (datasheet, "UIP"). */
const UIP_NS = 244_000;

export interface CmosLayout {
  memoryBytes: number;
  /** QEMU-style boot order letters (a, c, d, n). */
  boot: string;
  floppy: boolean;
  /** Whether an IDE disk is attached (primary master). */
  hardDisk: boolean;
}

/**
 * The CMOS RAM (registers 0x00-0x0D are the clock's, the rest is battery-backed RAM), the
 * index port, and the guest clock as an offset from virtual time. Flags in register C
 * that set since the last read are derived from `lastC` and the clock; IRQ8's timer is
 * derived from registers A and B, so it is re-armed on load, not saved.
 */
export const RTC_STATE = vmstate('mc146818', 1, {
  cmos: bytes(128),
  index: int(0, 0x7f),
  nmiMasked: bool,
  /** Guest time (ms since the epoch) at virtual time 0; writes to the clock move it. */
  baseMs: real(),
  /** Virtual time of the last read of register C, for flags that set in between. */
  lastC: ns,
  /** The IRQ pin as driven: set when an enabled flag rises, cleared by reading register C (datasheet, "IRQF"). */
  irqOut: bool,
  /** When IRQ8 is next checked (the next periodic, update or alarm moment, virtual ns), or null. */
  timerAt: deadline,
});
export type RtcState = VmStateOf<typeof RTC_STATE>;

export class Mc146818Rtc implements Device {
  readonly name = 'rtc';
  state: RtcState = { cmos: new Uint8Array(128), index: 0, nmiMasked: true, baseMs: 0, lastC: 0, irqOut: false, timerAt: null };
  private ctx!: DeviceContext;
  private irq!: IrqLine;
  private timer: TimerId = 0;

  constructor(opts: { startMs: number }) {
    this.state.baseMs = opts.startMs;
    const cmos = this.state.cmos;
    cmos[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
    cmos[REG_B] = B_24H;
    cmos[REG_D] = 0x80; // valid RAM and time
  }

  attach(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.irq = ctx.irq(8);
    ctx.mapPorts(0x70, 2, {
      read: (off) => (off === 0 ? 0xff : this.readData()),
      write: (off, _s, v) => {
        if (off === 0) {
          this.state.index = v & 0x7f;
          this.state.nmiMasked = (v & 0x80) !== 0;
        } else {
          this.writeData(v & 0xff);
        }
      },
    });
  }

  reset(): void {
    // The RTC is battery-backed: a reset only clears interrupt enables (datasheet, "RESET").
    this.state.cmos[REG_B] &= ~(B_PIE | B_AIE | B_UIE);
    this.state.cmos[REG_C] = 0;
    this.schedule();
  }

  get nmiMasked(): boolean {
    return this.state.nmiMasked;
  }

  /** CMOS bytes the BIOS reads (platform-facts.md; the IBM AT CMOS map). */
  fillCmos(l: CmosLayout): void {
    const c = this.state.cmos;
    c[0x0f] = 0x00; // shutdown status: normal POST
    c[0x10] = l.floppy ? 0x40 : 0x00; // drive A: 1.44 MB
    c[0x12] = l.hardDisk ? 0xf0 : 0x00;
    c[0x19] = l.hardDisk ? 47 : 0; // user-defined type
    // Equipment: floppy present, FPU present, VGA (00 in bits 5-4).
    c[0x14] = (l.floppy ? 0x01 : 0) | 0x02;
    c[0x15] = 640 & 0xff;
    c[0x16] = 640 >> 8;
    const extKiB = Math.min(0xffff, Math.max(0, (l.memoryBytes - 0x100000) >>> 10));
    c[0x17] = c[0x30] = extKiB & 0xff;
    c[0x18] = c[0x31] = extKiB >> 8;
    const above16M = Math.min(0xffff, Math.max(0, (l.memoryBytes - 0x1000000) >>> 16));
    c[0x34] = above16M & 0xff;
    c[0x35] = above16M >> 8;
    c[0x5b] = c[0x5c] = c[0x5d] = 0; // nothing above 4 GiB
    c[0x5f] = 0; // CPU count - 1
    c[0x32] = 0x20; // century (BCD)
    c[0x39] = l.hardDisk ? 0x01 : 0x00; // LBA translation for the first disk
    // Boot order nibbles (1 floppy, 2 disk, 3 CD, 4 network): 0x3D first two, 0x38 high nibble third.
    const code = (ch: string | undefined) => ({ a: 1, c: 2, d: 3, n: 4 })[ch as 'a'] ?? 0;
    const b = l.boot;
    c[0x3d] = code(b[0]) | (code(b[1]) << 4);
    // Bit 0 of 0x38: skip the floppy boot-signature check (QEMU sets it unless asked).
    c[0x38] = (code(b[2]) << 4) | 0x01;
    this.updateChecksum();
  }

  /** Bytes 0x10-0x2D are covered by the checksum at 0x2E/0x2F (IBM AT). */
  private updateChecksum(): void {
    const c = this.state.cmos;
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += c[i];
    c[0x2e] = (sum >> 8) & 0xff;
    c[0x2f] = sum & 0xff;
  }

  private nowMs(): number {
    return this.state.baseMs + this.ctx.clock.now() / 1e6;
  }

  private bcd(v: number): number {
    return this.state.cmos[REG_B] & B_DM ? v : ((Math.floor(v / 10) << 4) | (v % 10));
  }

  private unbcd(v: number): number {
    return this.state.cmos[REG_B] & B_DM ? v : (v >> 4) * 10 + (v & 0xf);
  }

  /** The time registers 0x00-0x09 for the current time. */
  private timeRegister(i: number): number {
    const d = new Date(Math.floor(this.nowMs()));
    switch (i) {
      case 0: return this.bcd(d.getUTCSeconds());
      case 2: return this.bcd(d.getUTCMinutes());
      case 4: {
        const h = d.getUTCHours();
        if (this.state.cmos[REG_B] & B_24H) return this.bcd(h);
        const h12 = h % 12 === 0 ? 12 : h % 12;
        return this.bcd(h12) | (h >= 12 ? 0x80 : 0);
      }
      case 6: return this.bcd(d.getUTCDay() + 1);
      case 7: return this.bcd(d.getUTCDate());
      case 8: return this.bcd(d.getUTCMonth() + 1);
      case 9: return this.bcd(d.getUTCFullYear() % 100);
      default: return this.state.cmos[i];
    }
  }

  private readData(): number {
    const s = this.state;
    const i = s.index;
    if (i <= 9 && i !== 1 && i !== 3 && i !== 5 && !(s.cmos[REG_B] & B_SET)) return this.timeRegister(i);
    if (i === REG_A) {
      const inSecond = this.nowMs() % 1000;
      return (s.cmos[REG_A] & 0x7f) | (inSecond * 1e6 >= 1e9 - UIP_NS ? 0x80 : 0);
    }
    if (i === REG_C) {
      const v = this.flags();
      s.cmos[REG_C] = 0;
      s.lastC = this.ctx.clock.now();
      this.setIrq(false);
      this.schedule();
      return v;
    }
    return s.cmos[i];
  }

  /** Register C as it reads now: flags that set since the last read, IRQF if any is enabled. */
  private flags(): number {
    const s = this.state;
    const now = this.ctx.clock.now();
    let f = s.cmos[REG_C] & (C_PF | C_AF | C_UF);
    const period = this.periodNs();
    if (period > 0 && Math.floor(now / period) > Math.floor(s.lastC / period)) f |= C_PF;
    if (Math.floor((s.baseMs + now / 1e6) / 1000) > Math.floor((s.baseMs + s.lastC / 1e6) / 1000)) {
      f |= C_UF;
      if (this.alarmMatches()) f |= C_AF;
    }
    const b = s.cmos[REG_B];
    if ((f & C_PF && b & B_PIE) || (f & C_AF && b & B_AIE) || (f & C_UF && b & B_UIE)) f |= C_IRQF;
    return f;
  }

  private alarmMatches(): boolean {
    const c = this.state.cmos;
    const dontCare = (v: number) => (v & 0xc0) === 0xc0;
    return [[1, 0], [3, 2], [5, 4]].every(([alarm, time]) => dontCare(c[alarm]) || c[alarm] === this.timeRegister(time));
  }

  /** Periodic interrupt period from register A's rate select (datasheet table 5). */
  private periodNs(): number {
    const rs = this.state.cmos[REG_A] & 0x0f;
    if (rs === 0) return 0;
    const hz = rs <= 2 ? 32768 >> (rs + 6) : 65536 >> rs;
    return 1e9 / hz;
  }

  private writeData(v: number): void {
    const s = this.state;
    const i = s.index;
    if (i <= 9 && i !== 1 && i !== 3 && i !== 5) {
      this.setTimeRegister(i, v);
      return;
    }
    switch (i) {
      case REG_A:
        s.cmos[REG_A] = v & 0x7f;
        this.schedule();
        return;
      case REG_B:
        // Setting SET also clears UIE (datasheet, register B).
        s.cmos[REG_B] = v & B_SET ? v & ~B_UIE : v;
        this.schedule();
        return;
      case REG_C:
      case REG_D:
        return; // read-only
      default:
        s.cmos[i] = v;
    }
  }

  /** Writing a time register moves the guest's clock; the other fields keep their values. */
  private setTimeRegister(i: number, raw: number): void {
    const d = new Date(Math.floor(this.nowMs()));
    let v: number;
    if (i === 4 && !(this.state.cmos[REG_B] & B_24H)) {
      const pm = (raw & 0x80) !== 0;
      v = this.unbcd(raw & 0x7f) % 12 + (pm ? 12 : 0);
    } else {
      v = this.unbcd(raw);
    }
    switch (i) {
      case 0: d.setUTCSeconds(v); break;
      case 2: d.setUTCMinutes(v); break;
      case 4: d.setUTCHours(v); break;
      case 7: d.setUTCDate(v); break;
      case 8: d.setUTCMonth(v - 1); break;
      case 9: d.setUTCFullYear(2000 + v); break;
      default: return; // day of week follows the date
    }
    this.state.baseMs += d.getTime() - Math.floor(this.nowMs());
  }

  /** Set a timer for the next moment IRQ8 should rise (periodic, update or alarm). */
  private schedule(): void {
    if (!this.ctx) return;
    this.state.timerAt = null;
    const b = this.state.cmos[REG_B];
    const now = this.ctx.clock.now();
    let at = Infinity;
    const period = this.periodNs();
    if (b & B_PIE && period > 0) at = (Math.floor(now / period) + 1) * period;
    if (b & (B_UIE | B_AIE)) {
      const ms = this.nowMs();
      at = Math.min(at, now + (1000 - (ms % 1000)) * 1e6);
    }
    if (at !== Infinity) this.state.timerAt = at;
    this.startTimer();
  }

  /** Set the clock's timer for `timerAt` (after scheduling, and after a load). */
  private startTimer(): void {
    this.ctx.clock.cancelTimer(this.timer);
    this.timer = 0;
    const at = this.state.timerAt;
    if (at === null) return;
    this.timer = this.ctx.clock.setTimer(at, () => {
      this.timer = 0;
      this.state.timerAt = null;
      if (this.flags() & C_IRQF) this.setIrq(true);
      else this.schedule();
    });
  }

  private setIrq(on: boolean): void {
    this.state.irqOut = on;
    this.irq.set(on);
  }

  saveState(): DeviceState {
    return RTC_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state = RTC_STATE.load(s, this.name);
    if (!this.ctx) return; // not attached yet: no clock to arm a timer on, no line to drive
    // The timer and the IRQ pin as they were, not re-derived: a pending interrupt stays pending.
    this.startTimer();
    this.irq.set(this.state.irqOut);
  }
}
