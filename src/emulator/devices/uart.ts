/**
 * National Semiconductor 16550A UART: COM1 (0x3F8, IRQ4) and COM2 (0x2F8, IRQ3) are two
 * instances. 16-byte FIFOs with trigger levels, the interrupt identification priorities,
 * the character timeout, loopback, and OUT2 gating the IRQ as the PC wires it.
 * References: NS16550A datasheet (register table, "FIFO Interrupt Mode Operation").
 *
 * For the machine: `onTransmit(byte)` receives what the guest sends; `receive(bytes)`
 * queues input and returns how many bytes fitted (the caller retries the rest).
 * Transmission is immediate (no bit timing): THRE is set again as soon as a byte is sent.
 */
import type { Device, DeviceContext, DeviceState, IrqLine, TimerId } from '../bus/device.ts';
import { array, bool, deadline, u8, vmstate, type VmStateOf } from '../bus/vmstate.ts';

const FIFO_SIZE = 16;
/** The UART's reference clock / 16: divisor 1 is 115200 baud. */
const BASE_BAUD = 115200;

// IIR interrupt identification (bits 3-1 with bit 0 = 0: pending), highest priority first.
const IIR_NONE = 0x01;
const IIR_LINE_STATUS = 0x06;
const IIR_RX_DATA = 0x04;
const IIR_CHAR_TIMEOUT = 0x0c;
const IIR_THR_EMPTY = 0x02;
const IIR_MODEM_STATUS = 0x00;

// LSR bits
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

// MCR bits
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

export interface UartOptions {
  name: string;
  /** Base port: 0x3F8 for COM1, 0x2F8 for COM2. */
  port: number;
  irq: number;
}

/**
 * The 16550A's registers as the datasheet names them (DLL/DLM are the divisor latch),
 * plus what the chip holds but does not show as a register: the receive FIFO, the
 * pending THRE interrupt, the character-timeout condition and its deadline.
 */
export const UART_STATE = vmstate('uart16550a', 1, {
  ier: u8, lcr: u8, mcr: u8, lsr: u8, msr: u8, scr: u8, dll: u8, dlm: u8, fcr: u8,
  /** Receive FIFO (or the single holding register when FIFOs are off). */
  rx: array(u8, 0, FIFO_SIZE),
  /** THR empty interrupt pending (cleared by reading IIR when it is the reason, or writing THR). */
  thrInterrupt: bool,
  /** The character timeout condition of FIFO mode ("FIFO Interrupt Mode Operation"). */
  timeout: bool,
  /** When the character timeout fires if the FIFO is not read before (virtual ns), or null. */
  timeoutAt: deadline,
  /** Modem status changed since MSR was read (its delta bits). */
  msrDelta: u8,
});
export type UartState = VmStateOf<typeof UART_STATE>;

function initialState(): UartState {
  return {
    ier: 0, lcr: 0, mcr: 0, lsr: LSR_THRE | LSR_TEMT, msr: 0, scr: 0, dll: 12, dlm: 0, fcr: 0,
    rx: [], thrInterrupt: false, timeout: false, timeoutAt: null, msrDelta: 0,
  };
}

export class Uart16550A implements Device {
  readonly name: string;
  state: UartState = initialState();
  /** Bytes the guest transmits. */
  onTransmit: (byte: number) => void = () => {};
  private ctx!: DeviceContext;
  private irq!: IrqLine;
  private timer: TimerId = 0;

  constructor(private readonly opts: UartOptions) {
    this.name = opts.name;
  }

  attach(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.irq = ctx.irq(this.opts.irq);
    ctx.mapPorts(this.opts.port, 8, {
      read: (off) => this.read(off),
      write: (off, _s, v) => this.write(off, v & 0xff),
    });
  }

  reset(): void {
    this.ctx.clock.cancelTimer(this.timer);
    this.timer = 0;
    this.state = initialState();
    this.update();
  }

  private get fifoEnabled(): boolean {
    return (this.state.fcr & 1) !== 0;
  }

  private get rxTrigger(): number {
    return this.fifoEnabled ? [1, 4, 8, 14][this.state.fcr >> 6] : 1;
  }

  /** Time of one character at the programmed baud rate (start, 8 data, stop bits). */
  private charTimeNs(): number {
    const divisor = this.state.dll | (this.state.dlm << 8) || 1;
    return (10 * 1e9 * divisor) / BASE_BAUD;
  }

  /** Queue received bytes; returns how many fitted in the FIFO. */
  receive(bytes: ArrayLike<number>): number {
    const room = (this.fifoEnabled ? FIFO_SIZE : 1) - this.state.rx.length;
    const n = Math.max(0, Math.min(room, bytes.length));
    for (let i = 0; i < n; i++) this.state.rx.push(bytes[i] & 0xff);
    if (n > 0) {
      this.state.lsr |= LSR_DR;
      this.armTimeout();
    }
    this.update();
    return n;
  }

  /** Room left for input. */
  get rxSpace(): number {
    return (this.fifoEnabled ? FIFO_SIZE : 1) - this.state.rx.length;
  }

  private armTimeout(): void {
    this.ctx.clock.cancelTimer(this.timer);
    this.timer = 0;
    this.state.timeout = false;
    this.state.timeoutAt = null;
    if (!this.fifoEnabled || this.state.rx.length === 0) return;
    // Character timeout: data sits in the FIFO for four character times without a read.
    this.state.timeoutAt = this.ctx.clock.now() + 4 * this.charTimeNs();
    this.startTimer();
  }

  /** Set the clock's timer for `timeoutAt` (after arming, and after a load). */
  private startTimer(): void {
    this.ctx.clock.cancelTimer(this.timer);
    this.timer = 0;
    const at = this.state.timeoutAt;
    if (at === null) return;
    this.timer = this.ctx.clock.setTimer(at, () => {
      this.timer = 0;
      this.state.timeoutAt = null;
      if (this.state.rx.length > 0) {
        this.state.timeout = true;
        this.update();
      }
    });
  }

  /** The highest-priority pending interrupt (IIR value). */
  private identify(): number {
    const s = this.state;
    if (s.ier & 0x04 && s.lsr & LSR_OE) return IIR_LINE_STATUS;
    if (s.ier & 0x01 && s.rx.length >= this.rxTrigger) return IIR_RX_DATA;
    if (s.ier & 0x01 && s.timeout) return IIR_CHAR_TIMEOUT;
    if (s.ier & 0x02 && s.thrInterrupt) return IIR_THR_EMPTY;
    if (s.ier & 0x08 && s.msrDelta) return IIR_MODEM_STATUS;
    return IIR_NONE;
  }

  private update(): void {
    // On the PC the IRQ line passes through OUT2 (MCR bit 3).
    const pending = this.identify() !== IIR_NONE;
    this.irq.set(pending && (this.state.mcr & MCR_OUT2) !== 0 && (this.state.mcr & MCR_LOOP) === 0);
  }

  private read(off: number): number {
    const s = this.state;
    const dlab = (s.lcr & 0x80) !== 0;
    switch (off) {
      case 0: {
        if (dlab) return s.dll;
        const v = s.rx.length ? s.rx.shift()! : 0;
        if (s.rx.length === 0) s.lsr &= ~LSR_DR;
        s.timeout = false;
        this.armTimeout();
        this.update();
        return v;
      }
      case 1:
        return dlab ? s.dlm : s.ier;
      case 2: {
        const id = this.identify();
        // Reading IIR acknowledges a THR-empty interrupt when that is what it reports.
        if (id === IIR_THR_EMPTY) s.thrInterrupt = false;
        this.update();
        return id | (this.fifoEnabled ? 0xc0 : 0);
      }
      case 3:
        return s.lcr;
      case 4:
        return s.mcr;
      case 5: {
        const v = s.lsr;
        s.lsr &= ~LSR_OE; // overrun clears on read
        this.update();
        return v;
      }
      case 6: {
        const v = this.modemStatus() | s.msrDelta;
        s.msrDelta = 0;
        this.update();
        return v;
      }
      default:
        return s.scr;
    }
  }

  /** MSR status bits: in loopback they reflect MCR (datasheet, "Loopback"); else a connected, idle line. */
  private modemStatus(): number {
    const m = this.state.mcr;
    if (m & MCR_LOOP) {
      return (m & MCR_RTS ? 0x10 : 0) | (m & MCR_DTR ? 0x20 : 0) | (m & MCR_OUT1 ? 0x40 : 0) | (m & MCR_OUT2 ? 0x80 : 0);
    }
    return 0x10 | 0x20 | 0x80; // CTS, DSR, DCD
  }

  private write(off: number, v: number): void {
    const s = this.state;
    const dlab = (s.lcr & 0x80) !== 0;
    switch (off) {
      case 0:
        if (dlab) {
          s.dll = v;
          return;
        }
        if (s.mcr & MCR_LOOP) {
          this.receive([v]);
        } else {
          this.onTransmit(v);
        }
        // Sent at once: the holding register is empty again and may interrupt.
        s.lsr |= LSR_THRE | LSR_TEMT;
        s.thrInterrupt = true;
        this.update();
        return;
      case 1:
        if (dlab) {
          s.dlm = v;
          return;
        }
        // Enabling ETBEI with the THR empty raises the interrupt (Linux's 8250 probes this).
        if (v & 0x02 && !(s.ier & 0x02) && s.lsr & LSR_THRE) s.thrInterrupt = true;
        s.ier = v & 0x0f;
        this.update();
        return;
      case 2:
        if ((v & 1) !== (s.fcr & 1)) s.rx = []; // switching FIFO mode clears both FIFOs
        if (v & 0x02) s.rx = [];
        s.fcr = v & 0xc1;
        if (s.rx.length === 0) s.lsr &= ~LSR_DR;
        this.armTimeout();
        this.update();
        return;
      case 3:
        s.lcr = v;
        return;
      case 4: {
        const before = this.modemStatus();
        s.mcr = v & 0x1f;
        const after = this.modemStatus();
        // Delta bits: CTS, DSR changed; RI trailing edge; DCD changed.
        const changed = before ^ after;
        s.msrDelta |= (changed & 0x10 ? 1 : 0) | (changed & 0x20 ? 2 : 0) | (before & 0x40 && !(after & 0x40) ? 4 : 0) | (changed & 0x80 ? 8 : 0);
        this.update();
        return;
      }
      case 7:
        s.scr = v;
        return;
      default:
        return; // LSR and MSR are read-only
    }
  }

  saveState(): DeviceState {
    return UART_STATE.save(this.state);
  }

  /**
   * Take the state as saved, pending timeout included: the timer is re-armed at its saved
   * deadline and the IRQ line driven again, never re-derived (issue 22: re-arming by
   * clearing lost a pending character-timeout interrupt, IIR 0xCC loaded as 0xC1).
   */
  loadState(s: DeviceState): void {
    this.state = UART_STATE.load(s, this.name);
    this.startTimer();
    this.update();
  }
}
