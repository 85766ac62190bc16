/**
 * Intel 82093AA I/O APIC at 0xFEC00000 (datasheet §3): 24 input pins, each with a 64-bit
 * redirection entry (vector, delivery mode, destination mode, polarity, trigger mode,
 * mask, destination), reached through the IOREGSEL (offset 0x00) / IOWIN (0x10) pair.
 *
 * Edge-triggered pins deliver on a rising edge; level-triggered pins deliver while
 * asserted and set Remote IRR until the local APIC's EOI for that vector comes back.
 * Pin levels are logical ("asserted"); the polarity bit is kept for software to read.
 *
 * On this PC (as on QEMU's and in SeaBIOS's MP table): ISA IRQ 0 (the PIT) is pin 2,
 * the other ISA IRQs are pins 1-15 one to one; PCI INTx arrive through the PIIX3 PIRQ
 * routing on their ISA IRQ numbers.
 */
import { bytes, dwords, int, u8, vmstate, type VmStateOf } from '../bus/vmstate.ts';
import type { AccessSize, Device, DeviceContext, DeviceState } from '../bus/device.ts';

export const IOAPIC_BASE = 0xfec00000;
const PINS = 24;
/** Version register: version 0x11, maximum redirection entry 23 (datasheet §3.2.2). */
const VERSION = 0x00170011;
const MASKED = 1 << 16;
const LEVEL = 1 << 15;
const REMOTE_IRR = 1 << 14;
const DELIVERY_STATUS = 1 << 12;

/** 82093AA registers (datasheet §3): IOREGSEL, IOAPICID, the redirection table, and the pin levels. */
export const IOAPIC_STATE = vmstate('ioapic82093', 1, {
  /** IOREGSEL. */
  select: u8,
  /** IOAPICID bits 27:24. */
  id: int(0, 0x0f),
  /** Redirection entries: low dwords then high dwords. */
  low: dwords(PINS),
  high: dwords(PINS),
  /** Pin levels as driven. */
  level: bytes(PINS),
});
export type IoApicState = VmStateOf<typeof IOAPIC_STATE>;

export class IoApic82093 implements Device {
  readonly name = 'ioapic';
  state: IoApicState = initialState();
  /** An interrupt message to the local APIC(s). */
  send: (vector: number, mode: number, level: boolean, dest: number, logical: boolean) => void = () => {};

  attach(ctx: DeviceContext): void {
    ctx.mapMmio(IOAPIC_BASE, 0x20, { read: (o, s) => this.read(o, s), write: (o, s, v) => this.write(o, s, v) });
  }

  reset(): void {
    this.state = initialState();
  }

  private read(offset: number, size: AccessSize): number {
    let v = 0;
    if (offset < 4) v = this.state.select;
    else if (offset >= 0x10 && offset < 0x14) v = this.readReg(this.state.select);
    const shift = (offset & 3) * 8;
    return size === 4 ? v | 0 : (v >>> shift) & (size === 1 ? 0xff : 0xffff);
  }

  private write(offset: number, size: AccessSize, value: number): void {
    if (offset === 0) this.state.select = value & 0xff;
    else if (offset === 0x10 && size === 4) this.writeReg(this.state.select, value >>> 0);
  }

  private readReg(r: number): number {
    const s = this.state;
    if (r === 0) return s.id << 24;
    if (r === 1) return VERSION;
    if (r === 2) return s.id << 24; // arbitration id
    if (r >= 0x10 && r < 0x10 + PINS * 2) {
      const pin = (r - 0x10) >> 1;
      return r & 1 ? s.high[pin] : s.low[pin];
    }
    return 0;
  }

  private writeReg(r: number, v: number): void {
    const s = this.state;
    if (r === 0) {
      s.id = (v >>> 24) & 0x0f;
      return;
    }
    if (r < 0x10 || r >= 0x10 + PINS * 2) return;
    const pin = (r - 0x10) >> 1;
    if (r & 1) {
      s.high[pin] = v & 0xff000000;
      return;
    }
    // Delivery status and remote IRR are read-only.
    s.low[pin] = (v & ~(DELIVERY_STATUS | REMOTE_IRR)) | (s.low[pin] & REMOTE_IRR);
    // An unmasked level-triggered pin that is asserted delivers now.
    if (s.level[pin]) this.service(pin);
  }

  /** The device side: pin `pin` is now at `level`. */
  setPin(pin: number, level: boolean): void {
    if (pin >= PINS) return;
    const was = this.state.level[pin] !== 0;
    this.state.level[pin] = level ? 1 : 0;
    const entry = this.state.low[pin];
    if (entry & LEVEL) {
      if (level) this.service(pin);
    } else if (level && !was) {
      this.service(pin);
    }
  }

  private service(pin: number): void {
    const s = this.state;
    const e = s.low[pin];
    if (e & MASKED) return;
    if (e & LEVEL) {
      if (e & REMOTE_IRR) return;
      s.low[pin] |= REMOTE_IRR;
    }
    this.send(e & 0xff, (e >> 8) & 7, (e & LEVEL) !== 0, s.high[pin] >>> 24, (e & (1 << 11)) !== 0);
  }

  /** The EOI broadcast for `vector`: level-triggered pins with that vector clear Remote IRR and re-deliver if still asserted. */
  eoi(vector: number): void {
    const s = this.state;
    for (let pin = 0; pin < PINS; pin++) {
      if ((s.low[pin] & 0xff) !== vector || (s.low[pin] & REMOTE_IRR) === 0) continue;
      s.low[pin] &= ~REMOTE_IRR;
      if (s.level[pin]) this.service(pin);
    }
  }

  saveState(): DeviceState {
    return IOAPIC_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    this.state = IOAPIC_STATE.load(saved, this.name);
  }
}

function initialState(): IoApicState {
  return { select: 0, id: 0, low: new Uint32Array(PINS).fill(MASKED), high: new Uint32Array(PINS), level: new Uint8Array(PINS) };
}
