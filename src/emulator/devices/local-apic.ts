/**
 * The local APIC of a one-CPU P6 system (SDM vol.3 chapter 10, xAPIC mode): the register
 * page at IA32_APIC_BASE (0xFEE00000 after reset), interrupt acceptance into IRR, priority
 * through TPR/PPR, ISR and EOI (with the EOI broadcast that clears an I/O APIC's remote
 * IRR for level-triggered vectors), the LVT (timer, thermal, performance, LINT0, LINT1,
 * error), the timer in one-shot and periodic modes on virtual time, and self-directed
 * IPIs through the ICR.
 *
 * On the PC, LINT0 is wired to the 8259's INTR and LINT1 to NMI. While the APIC is
 * disabled (globally in the MSR or by SVR) or LINT0 is programmed as ExtINT, the 8259's
 * interrupts reach the CPU as they would without an APIC ("virtual wire", MP spec §3.6.2.2).
 *
 * For the machine: `picIntr(level)` is the 8259's INTR, `cpuIntr` drives the CPU's INTR,
 * `acknowledge()` is the CPU's INTA cycle, `deliver()` takes I/O APIC messages, `onEoi`
 * broadcasts EOIs, `onNmi` raises the CPU's NMI.
 */
import { bool, deadline, dwords, f64, int, reg32, u32, u8, vmstate, type VmStateOf } from '../bus/vmstate.ts';
import type { AccessSize, Device, DeviceContext, DeviceState, Mapping, TimerId } from '../bus/device.ts';

export const APIC_DEFAULT_BASE = 0xfee00000;
/** IA32_APIC_BASE bits: bootstrap processor, global enable. */
export const APIC_BASE_BSP = 1 << 8;
export const APIC_BASE_ENABLE = 1 << 11;

/** Register offsets (SDM vol.3 table 10-1). */
export const LAPIC = {
  ID: 0x20, VERSION: 0x30, TPR: 0x80, APR: 0x90, PPR: 0xa0, EOI: 0xb0, RRD: 0xc0, LDR: 0xd0, DFR: 0xe0, SVR: 0xf0,
  ISR: 0x100, TMR: 0x180, IRR: 0x200, ESR: 0x280, ICR_LO: 0x300, ICR_HI: 0x310,
  LVT_TIMER: 0x320, LVT_THERMAL: 0x330, LVT_PERF: 0x340, LVT_LINT0: 0x350, LVT_LINT1: 0x360, LVT_ERROR: 0x370,
  TIMER_INITIAL: 0x380, TIMER_CURRENT: 0x390, TIMER_DIVIDE: 0x3e0,
} as const;

const LVT_MASKED = 1 << 16;
const SVR_ENABLE = 1 << 8;
/** Delivery modes (bits 10:8). */
const DM_FIXED = 0;
const DM_LOWEST = 1;
const DM_NMI = 4;
const DM_INIT = 5;
const DM_STARTUP = 6;
const DM_EXTINT = 7;
/** Version register: version 0x14 (P6 era xAPIC), max LVT entry 5 (six entries). */
const VERSION = 0x00050014;
/** The timer counts the bus clock: 1 GHz here (1 tick per virtual ns before the divider). */
const BUS_NS = 1;

/** The local APIC's registers (SDM vol.3 §10.4-10.6, table 10-1) and its timer as virtual time. */
export const LAPIC_STATE = vmstate('lapic', 1, {
  /** IA32_APIC_BASE (MSR 0x1B). */
  base: u32,
  id: u8,
  tpr: u8,
  ldr: reg32,
  dfr: reg32,
  svr: int(0, 0x3ff),
  esr: u8,
  icrLo: reg32,
  icrHi: reg32,
  /** LVT timer, thermal, performance, LINT0, LINT1, error. */
  lvt: dwords(6),
  irr: dwords(8),
  isr: dwords(8),
  tmr: dwords(8),
  timerInitial: u32,
  timerDivide: int(0, 0xb),
  /** Virtual time the current count was last loaded (ns), for the running count (before 0 when restarted from a count). */
  timerStart: f64,
  /**
   * A one-shot count ran out: the current count stays 0 until the initial count is written
   * again, whatever the LVT's mode becomes meanwhile (SDM vol.3 §10.5.4).
   */
  timerDone: bool,
  /** When the armed timer fires (virtual ns), or null: re-armed there on load, even when it is already due. */
  timerDeadline: deadline,
  /** The 8259's INTR as last seen on LINT0. */
  picLevel: bool,
});
export type LocalApicState = VmStateOf<typeof LAPIC_STATE>;

export class LocalApic implements Device {
  readonly name = 'lapic';
  state: LocalApicState = initialState();
  cpuIntr: (level: boolean) => void = () => {};
  /** The 8259's INTA, for ExtINT deliveries. */
  picAcknowledge: () => number = () => 0;
  onEoi: (vector: number) => void = () => {};
  onNmi: () => void = () => {};
  private mapping: Mapping | null = null;
  private clock: DeviceContext['clock'] | null = null;
  private timer: TimerId | null = null;
  private log: (m: string) => void = () => {};

  attach(ctx: DeviceContext): void {
    this.clock = ctx.clock;
    this.log = (m) => ctx.log(m);
    this.mapping = ctx.mapMmio(APIC_DEFAULT_BASE, 0x1000, { read: (o, s) => this.read(o, s), write: (o, s, v) => this.write(o, s, v) });
  }

  reset(): void {
    this.cancelTimer();
    this.state = initialState();
    this.mapping?.move(APIC_DEFAULT_BASE);
    this.update();
  }

  // -------------------------------------------------------------------------------------
  // IA32_APIC_BASE (MSR 0x1B)
  // -------------------------------------------------------------------------------------

  get baseMsr(): number {
    return this.state.base;
  }

  /**
   * The CPU checked the reserved bits (WRMSR raises #GP for them). The BSP flag is read-only.
   * Clearing EN takes the APIC off the bus; setting it again brings it back in its power-up
   * state (SDM vol.3 §10.4.3, §10.4.7.1), as APICs on the system bus and QEMU's do; only the
   * P6's three-wire APIC bus needed a reset for that, and guests (kvm-unit-tests' start-up
   * among them) disable and re-enable it.
   */
  set baseMsr(v: number) {
    const wasEnabled = (this.state.base & APIC_BASE_ENABLE) !== 0;
    const next = ((v & 0xfffff000) | (this.state.base & APIC_BASE_BSP) | (v & APIC_BASE_ENABLE)) >>> 0;
    if ((next & APIC_BASE_ENABLE) === 0) {
      this.state.base = next;
      this.mapping?.unmap();
      this.softReset();
    } else {
      if (!wasEnabled) {
        this.cancelTimer();
        this.state = { ...initialState(), id: this.state.id };
      }
      this.state.base = next;
      this.mapping?.move(next & 0xfffff000);
    }
    this.update();
  }

  private get globallyEnabled(): boolean {
    return (this.state.base & APIC_BASE_ENABLE) !== 0;
  }

  private get softwareEnabled(): boolean {
    return this.globallyEnabled && (this.state.svr & SVR_ENABLE) !== 0;
  }

  /** Software disable (SVR bit 8 clear) masks every LVT entry (§10.4.7.2). */
  private softReset(): void {
    for (let i = 0; i < 6; i++) this.state.lvt[i] |= LVT_MASKED;
  }

  // -------------------------------------------------------------------------------------
  // Registers
  // -------------------------------------------------------------------------------------

  read(offset: number, size: AccessSize): number {
    // Registers are 32 bits wide at 16-byte alignment; narrower reads take their bytes.
    const reg = offset & 0xff0;
    const v = this.readReg(reg);
    const shift = (offset & 3) * 8;
    return size === 4 ? v | 0 : (v >>> shift) & (size === 1 ? 0xff : 0xffff);
  }

  private readReg(reg: number): number {
    const s = this.state;
    if (reg >= LAPIC.ISR && reg < LAPIC.ISR + 0x80) return s.isr[(reg - LAPIC.ISR) >> 4];
    if (reg >= LAPIC.TMR && reg < LAPIC.TMR + 0x80) return s.tmr[(reg - LAPIC.TMR) >> 4];
    if (reg >= LAPIC.IRR && reg < LAPIC.IRR + 0x80) return s.irr[(reg - LAPIC.IRR) >> 4];
    switch (reg) {
      case LAPIC.ID: return s.id << 24;
      case LAPIC.VERSION: return VERSION;
      case LAPIC.TPR: return s.tpr;
      case LAPIC.APR: return 0;
      case LAPIC.PPR: return this.ppr();
      case LAPIC.LDR: return s.ldr;
      case LAPIC.DFR: return s.dfr;
      case LAPIC.SVR: return s.svr;
      case LAPIC.ESR: return s.esr;
      case LAPIC.ICR_LO: return s.icrLo & ~(1 << 12); // delivery status: always idle
      case LAPIC.ICR_HI: return s.icrHi;
      case LAPIC.LVT_TIMER: case LAPIC.LVT_THERMAL: case LAPIC.LVT_PERF:
      case LAPIC.LVT_LINT0: case LAPIC.LVT_LINT1: case LAPIC.LVT_ERROR:
        return s.lvt[(reg - LAPIC.LVT_TIMER) >> 4];
      case LAPIC.TIMER_INITIAL: return s.timerInitial;
      case LAPIC.TIMER_CURRENT: return this.currentCount();
      case LAPIC.TIMER_DIVIDE: return s.timerDivide;
      default: return 0;
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (size !== 4 || (offset & 3) !== 0) {
      // Only aligned 32-bit accesses are defined (§10.4.1); others are ignored.
      this.log(`local APIC: ${size}-byte write at offset ${offset.toString(16)} ignored`);
      return;
    }
    const s = this.state;
    const v = value >>> 0;
    switch (offset & 0xff0) {
      case LAPIC.ID: s.id = v >>> 24; break;
      case LAPIC.TPR: s.tpr = v & 0xff; break;
      case LAPIC.EOI: this.eoi(); break;
      case LAPIC.LDR: s.ldr = v & 0xff000000; break;
      case LAPIC.DFR: s.dfr = (v & 0xf0000000) | 0x0fffffff; break;
      case LAPIC.SVR:
        s.svr = v & 0x3ff;
        if ((v & SVR_ENABLE) === 0) this.softReset();
        break;
      case LAPIC.ESR: s.esr = 0; break; // a write latches and clears the errors
      case LAPIC.ICR_HI: s.icrHi = v & 0xff000000; break;
      case LAPIC.ICR_LO:
        s.icrLo = v & 0x000ccfff;
        this.sendIpi();
        break;
      case LAPIC.LVT_TIMER: case LAPIC.LVT_THERMAL: case LAPIC.LVT_PERF:
      case LAPIC.LVT_LINT0: case LAPIC.LVT_LINT1: case LAPIC.LVT_ERROR: {
        const i = ((offset & 0xff0) - LAPIC.LVT_TIMER) >> 4;
        if (i === 0) this.noteOneShotDone();
        // While software-disabled the mask bits cannot be cleared (§10.4.7.2).
        s.lvt[i] = this.softwareEnabled ? v : v | LVT_MASKED;
        if (i === 0) this.armTimer();
        break;
      }
      case LAPIC.TIMER_INITIAL:
        s.timerInitial = v;
        s.timerStart = this.now();
        s.timerDone = false;
        this.armTimer();
        break;
      case LAPIC.TIMER_DIVIDE: {
        const current = this.currentCount();
        s.timerDivide = v & 0xb;
        // Keep the count where it was, at the new rate.
        this.restartFrom(current);
        break;
      }
      default:
        break;
    }
    this.update();
  }

  // -------------------------------------------------------------------------------------
  // Interrupts
  // -------------------------------------------------------------------------------------

  private static has(bits: Uint32Array, v: number): boolean {
    return ((bits[v >> 5] >>> (v & 31)) & 1) !== 0;
  }

  private static setBit(bits: Uint32Array, v: number, on: boolean): void {
    if (on) bits[v >> 5] |= 1 << (v & 31);
    else bits[v >> 5] &= ~(1 << (v & 31));
  }

  private static highest(bits: Uint32Array): number {
    for (let i = 7; i >= 0; i--) if (bits[i]) return i * 32 + 31 - Math.clz32(bits[i]);
    return -1;
  }

  /** Processor priority: the higher class of TPR and the highest in-service vector (§10.8.3.1). */
  private ppr(): number {
    const isrv = LocalApic.highest(this.state.isr);
    const tpr = this.state.tpr;
    return (tpr >> 4) >= ((isrv < 0 ? 0 : isrv) >> 4) ? tpr : (isrv & 0xf0);
  }

  /** Accept a fixed interrupt (from the I/O APIC, an LVT entry or an IPI) into IRR. */
  accept(vector: number, level: boolean): void {
    if (!this.softwareEnabled) return;
    if (vector < 16) {
      this.state.esr |= 0x40; // received illegal vector
      return;
    }
    LocalApic.setBit(this.state.irr, vector, true);
    LocalApic.setBit(this.state.tmr, vector, level);
    this.update();
  }

  /** An I/O APIC message: `mode` is the delivery mode, `dest`/`logical` its destination. */
  deliver(vector: number, mode: number, level: boolean, dest: number, logical: boolean): void {
    if (!this.matches(dest, logical)) return;
    switch (mode) {
      case DM_FIXED: case DM_LOWEST: this.accept(vector, level); break;
      case DM_NMI: this.onNmi(); break;
      case DM_EXTINT: this.update(); break; // the 8259 supplies the vector at INTA
      default: break; // SMI, INIT: nothing on this machine
    }
  }

  private matches(dest: number, logical: boolean): boolean {
    const s = this.state;
    if (!logical) return dest === 0xff || dest === s.id;
    if (dest === 0xff) return true;
    // Flat model: the LDR's high byte is a bit mask; cluster model: cluster id and member bits.
    const ldr = s.ldr >>> 24;
    if ((s.dfr >>> 28) === 0xf) return (ldr & dest) !== 0;
    return (ldr >> 4) === (dest >> 4) && (ldr & dest & 0xf) !== 0;
  }

  /** The 8259's INTR changed (LINT0). */
  picIntr(level: boolean): void {
    this.state.picLevel = level;
    this.update();
  }

  /** LINT0 takes the 8259's interrupts: APIC disabled (virtual wire through), or LINT0 = ExtINT unmasked. */
  private extIntPending(): boolean {
    if (!this.state.picLevel) return false;
    if (!this.softwareEnabled) return true;
    const lint0 = this.state.lvt[3];
    return (lint0 & LVT_MASKED) === 0 && ((lint0 >> 8) & 7) === DM_EXTINT;
  }

  /** Recompute the CPU's INTR line. */
  private update(): void {
    let pending = this.extIntPending();
    if (!pending && this.softwareEnabled) {
      const v = LocalApic.highest(this.state.irr);
      pending = v >= 0 && (v & 0xf0) > (this.ppr() & 0xf0);
    }
    this.cpuIntr(pending);
  }

  /** INTA: the vector the CPU takes now (the highest deliverable IRR, or the 8259's for ExtINT). */
  acknowledge(): number {
    if (this.extIntPending()) {
      const v = this.picAcknowledge();
      this.update();
      return v;
    }
    const s = this.state;
    const v = LocalApic.highest(s.irr);
    if (v < 0 || (v & 0xf0) <= (this.ppr() & 0xf0)) {
      // Nothing deliverable any more: the spurious vector (SVR bits 7:0).
      this.update();
      return s.svr & 0xff;
    }
    LocalApic.setBit(s.irr, v, false);
    LocalApic.setBit(s.isr, v, true);
    this.update();
    return v;
  }

  private eoi(): void {
    const s = this.state;
    const v = LocalApic.highest(s.isr);
    if (v < 0) return;
    LocalApic.setBit(s.isr, v, false);
    // Level-triggered: the EOI goes on to the I/O APICs (§10.8.5).
    if (LocalApic.has(s.tmr, v)) this.onEoi(v);
  }

  /** ICR: with one CPU only self-directed fixed IPIs and NMIs do anything; INIT/SIPI to others find no one. */
  private sendIpi(): void {
    const s = this.state;
    const lo = s.icrLo;
    const vector = lo & 0xff;
    const mode = (lo >> 8) & 7;
    const shorthand = (lo >> 18) & 3;
    const dest = s.icrHi >>> 24;
    const logical = (lo & (1 << 11)) !== 0;
    const toSelf = shorthand === 1 || shorthand === 2 || (shorthand === 0 && this.matches(dest, logical));
    if (!toSelf || mode === DM_INIT || mode === DM_STARTUP) return;
    if (mode === DM_NMI) this.onNmi();
    else if (mode === DM_FIXED || mode === DM_LOWEST) this.accept(vector, false);
  }

  // -------------------------------------------------------------------------------------
  // Timer (§10.5.4)
  // -------------------------------------------------------------------------------------

  private now(): number {
    return this.clock ? this.clock.now() : 0;
  }

  /** Divide configuration bits 3,1,0 -> divisor 2, 4, ... 128, 1. */
  private divisor(): number {
    const d = this.state.timerDivide;
    const code = ((d & 8) >> 1) | (d & 3);
    return code === 7 ? 1 : 2 << code;
  }

  private tickNs(): number {
    return this.divisor() * BUS_NS;
  }

  private periodic(): boolean {
    return ((this.state.lvt[0] >> 17) & 3) === 1;
  }

  currentCount(): number {
    const s = this.state;
    if (s.timerInitial === 0 || s.timerDone) return 0;
    const ticks = Math.floor((this.now() - s.timerStart) / this.tickNs());
    if (this.periodic()) return s.timerInitial - (ticks % s.timerInitial);
    return ticks >= s.timerInitial ? 0 : s.timerInitial - ticks;
  }

  /** Before the timer's mode changes: a one-shot count that has run out stays run out. */
  private noteOneShotDone(): void {
    const s = this.state;
    if (s.timerInitial !== 0 && !this.periodic() && this.now() - s.timerStart >= s.timerInitial * this.tickNs()) s.timerDone = true;
  }

  private restartFrom(count: number): void {
    const s = this.state;
    s.timerStart = this.now() - (s.timerInitial - count) * this.tickNs();
    this.armTimer();
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clock?.cancelTimer(this.timer);
    this.timer = null;
    this.state.timerDeadline = null;
  }

  /** Schedule the next expiry from the count's start (one-shot: once; periodic: every period). */
  private armTimer(): void {
    // A one-shot count that has run out but whose expiry has not been delivered yet (in
    // wall-clock mode time within a run slice can pass a deadline that only fires at the
    // slice's end) must still interrupt when the LVT or divider is rewritten meanwhile.
    const undelivered = this.timer !== null;
    this.cancelTimer();
    const s = this.state;
    if (!this.clock || s.timerInitial === 0 || (s.timerDone && !undelivered)) return;
    const period = s.timerInitial * this.tickNs();
    const now = this.now();
    const elapsed = now - s.timerStart;
    let at: number;
    if (this.periodic() && !s.timerDone) {
      at = s.timerStart + (Math.floor(elapsed / period) + 1) * period;
      // Wall-clock time is fractional: now - start can fall a hair short of the whole
      // periods it spans, which would re-arm at the instant that just fired, forever.
      if (at <= now) at += period;
    } else if (elapsed < period || undelivered) at = s.timerStart + period;
    else return;
    s.timerDeadline = at;
    this.timer = this.clock.setTimer(at, () => this.expire());
  }

  private expire(): void {
    this.timer = null;
    this.state.timerDeadline = null;
    const lvt = this.state.lvt[0];
    if ((lvt & LVT_MASKED) === 0) this.accept(lvt & 0xff, false);
    if (this.periodic() && !this.state.timerDone) this.armTimer();
    else this.state.timerDone = true;
  }

  // -------------------------------------------------------------------------------------
  // State
  // -------------------------------------------------------------------------------------

  saveState(): DeviceState {
    return LAPIC_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    const s = LAPIC_STATE.load(saved, this.name);
    if (this.timer !== null) this.clock?.cancelTimer(this.timer);
    this.timer = null;
    this.state = s;
    if (this.globallyEnabled) this.mapping?.move(s.base & 0xfffff000);
    else this.mapping?.unmap();
    // The timer as it was armed: an expiry that was due but not yet delivered still comes.
    if (s.timerDeadline !== null && this.clock) this.timer = this.clock.setTimer(s.timerDeadline, () => this.expire());
    this.update();
  }
}

function initialState(): LocalApicState {
  return {
    base: (APIC_DEFAULT_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE) >>> 0,
    id: 0, tpr: 0, ldr: 0, dfr: 0xffffffff, svr: 0xff, esr: 0, icrLo: 0, icrHi: 0,
    lvt: new Uint32Array(6).fill(LVT_MASKED), irr: new Uint32Array(8), isr: new Uint32Array(8), tmr: new Uint32Array(8),
    timerInitial: 0, timerDivide: 0, timerStart: 0, timerDone: false, timerDeadline: null, picLevel: false,
  };
}
