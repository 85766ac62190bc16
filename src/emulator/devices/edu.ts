/**
 * QEMU's educational PCI device "edu" (QEMU docs/specs/edu.rst): PCI 1234:11e8, BAR0 a
 * 1 MiB memory window with an identification register, a liveness check (the value
 * written reads back inverted), a factorial unit, an interrupt raise/acknowledge pair and
 * a DMA engine that moves up to 4 KiB between guest memory and the device's own buffer,
 * which the engine addresses at 0x40000-0x40FFF. Guest test programs use it to start a
 * bus-master transfer to any address on demand; the transfer goes through the DMA handle
 * the bus gave the device, so the IOMMU (guest VT-d or the VMM's fence) sees it.
 *
 * As QEMU: registers below 0x80 take 4-byte accesses only; DMA addresses are clamped to
 * the device's 28-bit DMA mask; the factorial and the DMA complete a moment later (here
 * 10 µs of virtual time), with the busy bits (status bit 0, command bit 0) set until then.
 * Not modelled: the MSI capability (INTx only); a transfer whose device-side range falls
 * outside the buffer (QEMU aborts the emulator there) is refused, counted and logged.
 */
import type { AccessSize, DeviceContext, DeviceState, IrqLine, TimerId } from '../bus/device.ts';
import type { PciContext, PciDevice, PciFunctionSpec } from '../pci/pci-function.ts';
import { bytes, deadline, int, real, record, u32, vmstate, type VmStateOf } from '../bus/vmstate.ts';

export const EDU = {
  ID: 0x00, LIVENESS: 0x04, FACTORIAL: 0x08, STATUS: 0x20, IRQ_STATUS: 0x24, IRQ_RAISE: 0x60, IRQ_ACK: 0x64,
  DMA_SRC: 0x80, DMA_DST: 0x88, DMA_COUNT: 0x90, DMA_CMD: 0x98,
} as const;
/** Identification: 0xRRrr00ed, version 1.0. */
export const EDU_ID = 0x010000ed;
export const EDU_STATUS_COMPUTING = 0x01;
export const EDU_STATUS_IRQFACT = 0x80;
export const EDU_DMA_START = 0x01;
export const EDU_DMA_FROM_DEVICE = 0x02;
export const EDU_DMA_IRQ = 0x04;
/** The interrupt status bits the device itself raises: factorial done, DMA done. */
export const EDU_IRQ_FACTORIAL = 0x001;
export const EDU_IRQ_DMA = 0x100;
/** The device's buffer as the DMA engine addresses it. */
export const EDU_BUFFER = 0x40000;
export const EDU_BUFFER_SIZE = 4096;
const DMA_MASK = (1 << 28) - 1;
const DELAY_NS = 10_000;

const count = real(0);

/** The device's state (DESIGN.md seam 2); the pending factorial and DMA as deadlines, re-armed on load. */
export const EDU_STATE = vmstate('edu', 1, {
  liveness: u32,
  factorial: u32,
  status: int(0, 0xff),
  irqStatus: u32,
  /** DMA registers (64-bit in QEMU: the high halves are kept; a device-side high half refuses the transfer). */
  dmaSrc: u32,
  dmaSrcHi: u32,
  dmaDst: u32,
  dmaDstHi: u32,
  dmaCount: u32,
  dmaCmd: int(0, 7),
  buffer: bytes(EDU_BUFFER_SIZE),
  /** Virtual time the factorial / the DMA completes, null when idle. */
  factorialAt: deadline,
  dmaAt: deadline,
  counters: record({ dmaTransfers: count, dmaBytes: count, dmaFaults: count, dmaRefused: count, badAccesses: count }),
});
export type EduState = VmStateOf<typeof EDU_STATE>;

function initialState(): EduState {
  return {
    liveness: 0, factorial: 0, status: 0, irqStatus: 0, dmaSrc: 0, dmaSrcHi: 0, dmaDst: 0, dmaDstHi: 0,
    dmaCount: 0, dmaCmd: 0, buffer: new Uint8Array(EDU_BUFFER_SIZE), factorialAt: null, dmaAt: null,
    counters: { dmaTransfers: 0, dmaBytes: 0, dmaFaults: 0, dmaRefused: 0, badAccesses: 0 },
  };
}

/** n! modulo 2^32, as QEMU's 32-bit register holds it. */
export function factorial32(n: number): number {
  let r = 1;
  for (let i = 2; i <= n; i++) r = Math.imul(r, i) >>> 0;
  return r >>> 0;
}

export class EduDevice implements PciDevice {
  readonly name = 'edu';
  state: EduState = initialState();
  readonly pci: PciFunctionSpec;
  private ctx: DeviceContext | null = null;
  private intx: IrqLine | null = null;
  private factorialTimer: TimerId = 0;
  private dmaTimer: TimerId = 0;

  constructor() {
    this.pci = {
      vendorId: 0x1234, deviceId: 0x11e8, revision: 0x10, classCode: 0xff0000, interruptPin: 1,
      bars: [{ index: 0, kind: 'mem', size: 1 << 20, block: { read: (o, s) => this.read(o, s), write: (o, s, v) => this.write(o, s, v) } }],
    };
  }

  attach(ctx: DeviceContext): void {
    this.ctx = ctx;
  }

  attachPci(ctx: PciContext): void {
    this.intx = ctx.intx;
    this.updateIrq();
  }

  reset(): void {
    this.cancelTimers();
    const counters = this.state.counters;
    this.state = initialState();
    this.state.counters = counters;
    this.updateIrq();
  }

  read(offset: number, size: AccessSize): number {
    const s = this.state;
    if (size !== 4 || (offset & 3) !== 0) return this.bad(offset, size, 'read');
    switch (offset) {
      case EDU.ID: return EDU_ID;
      case EDU.LIVENESS: return s.liveness | 0;
      case EDU.FACTORIAL: return s.factorial | 0;
      case EDU.STATUS: return s.status;
      case EDU.IRQ_STATUS: return s.irqStatus | 0;
      case EDU.DMA_SRC: return s.dmaSrc | 0;
      case EDU.DMA_SRC + 4: return s.dmaSrcHi | 0;
      case EDU.DMA_DST: return s.dmaDst | 0;
      case EDU.DMA_DST + 4: return s.dmaDstHi | 0;
      case EDU.DMA_COUNT: return s.dmaCount | 0;
      case EDU.DMA_CMD: return s.dmaCmd;
      default: return offset < 0x80 ? -1 : 0;
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    const s = this.state;
    const v = value >>> 0;
    if (size !== 4 || (offset & 3) !== 0) {
      this.bad(offset, size, 'write');
      return;
    }
    switch (offset) {
      case EDU.LIVENESS: s.liveness = ~v >>> 0; break;
      case EDU.FACTORIAL:
        // A new operand only while idle (edu.rst: "only after factorial bit ... is cleared").
        if (s.status & EDU_STATUS_COMPUTING) break;
        s.factorial = v;
        s.status |= EDU_STATUS_COMPUTING;
        s.factorialAt = this.now() + DELAY_NS;
        this.armFactorial();
        break;
      case EDU.STATUS: s.status = (s.status & ~EDU_STATUS_IRQFACT) | (v & EDU_STATUS_IRQFACT); break;
      case EDU.IRQ_RAISE: this.raise(v); break;
      case EDU.IRQ_ACK:
        s.irqStatus = (s.irqStatus & ~v) >>> 0;
        this.updateIrq();
        break;
      case EDU.DMA_SRC: s.dmaSrc = v; break;
      case EDU.DMA_SRC + 4: s.dmaSrcHi = v; break;
      case EDU.DMA_DST: s.dmaDst = v; break;
      case EDU.DMA_DST + 4: s.dmaDstHi = v; break;
      case EDU.DMA_COUNT: s.dmaCount = v; break;
      case EDU.DMA_CMD:
        // A command while a transfer runs is ignored, as in QEMU.
        if (s.dmaCmd & EDU_DMA_START) break;
        s.dmaCmd = v & (EDU_DMA_START | EDU_DMA_FROM_DEVICE | EDU_DMA_IRQ);
        if (s.dmaCmd & EDU_DMA_START) {
          s.dmaAt = this.now() + DELAY_NS;
          this.armDma();
        }
        break;
      default:
        if (offset < 0x80 && offset !== EDU.ID && offset !== EDU.IRQ_STATUS) this.bad(offset, size, 'write');
    }
  }

  private bad(offset: number, size: number, what: string): number {
    this.state.counters.badAccesses++;
    this.ctx?.log(`${size}-byte ${what} at 0x${offset.toString(16)} ignored (edu takes aligned 4-byte accesses)`);
    return size === 4 ? -1 : (1 << (size * 8)) - 1;
  }

  private now(): number {
    return this.ctx?.clock.now() ?? 0;
  }

  private raise(bits: number): void {
    this.state.irqStatus = (this.state.irqStatus | bits) >>> 0;
    this.updateIrq();
  }

  private updateIrq(): void {
    this.intx?.set(this.state.irqStatus !== 0);
  }

  private armFactorial(): void {
    if (!this.ctx || this.state.factorialAt === null) return;
    this.ctx.clock.cancelTimer(this.factorialTimer);
    this.factorialTimer = this.ctx.clock.setTimer(this.state.factorialAt, () => this.factorialDone());
  }

  private armDma(): void {
    if (!this.ctx || this.state.dmaAt === null) return;
    this.ctx.clock.cancelTimer(this.dmaTimer);
    this.dmaTimer = this.ctx.clock.setTimer(this.state.dmaAt, () => this.dmaDone());
  }

  private cancelTimers(): void {
    this.ctx?.clock.cancelTimer(this.factorialTimer);
    this.ctx?.clock.cancelTimer(this.dmaTimer);
    this.factorialTimer = this.dmaTimer = 0;
  }

  private factorialDone(): void {
    const s = this.state;
    s.factorialAt = null;
    s.factorial = factorial32(s.factorial);
    s.status &= ~EDU_STATUS_COMPUTING;
    if (s.status & EDU_STATUS_IRQFACT) this.raise(EDU_IRQ_FACTORIAL);
  }

  /** The transfer: guest memory (clamped to the DMA mask) to or from the buffer, through the bus's DMA handle. */
  private dmaDone(): void {
    const s = this.state;
    s.dmaAt = null;
    const toMemory = (s.dmaCmd & EDU_DMA_FROM_DEVICE) !== 0;
    const device = toMemory ? s.dmaSrc : s.dmaDst;
    const memory = (toMemory ? s.dmaDst : s.dmaSrc) & DMA_MASK;
    const highHalf = toMemory ? s.dmaSrcHi : s.dmaDstHi;
    const count = s.dmaCount;
    if (highHalf !== 0 || device < EDU_BUFFER || count > EDU_BUFFER_SIZE || device + count > EDU_BUFFER + EDU_BUFFER_SIZE) {
      s.counters.dmaRefused++;
      this.ctx?.log(`DMA of ${count} bytes at device address 0x${device.toString(16)} is outside the 4 KiB buffer at 0x40000; refused`);
    } else if (count > 0) {
      const at = device - EDU_BUFFER;
      const window = s.buffer.subarray(at, at + count);
      const dma = this.ctx?.dma;
      const ok = dma ? (toMemory ? dma.write(memory, window) : dma.read(memory, window)) : false;
      s.counters.dmaTransfers++;
      if (ok) s.counters.dmaBytes += count;
      else s.counters.dmaFaults++;
    }
    s.dmaCmd &= ~EDU_DMA_START;
    if (s.dmaCmd & EDU_DMA_IRQ) this.raise(EDU_IRQ_DMA);
  }

  saveState(): DeviceState {
    return EDU_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    const state = EDU_STATE.load(saved, this.name);
    this.cancelTimers();
    this.state = state;
    this.updateIrq();
    this.armFactorial();
    this.armDma();
  }
}
