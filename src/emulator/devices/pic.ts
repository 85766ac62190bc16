/**
 * The PC's two Intel 8259A programmable interrupt controllers, cascaded on IRQ2
 * (master at 0x20/0x21, slave at 0xA0/0xA1), with the PIIX3's edge/level control
 * registers (ELCR, 0x4D0/0x4D1) that make PCI interrupts level-triggered.
 *
 * For the machine: `setIrq(line, level)` from the IRQ lines, `onIntr` gets the INTR
 * output, `acknowledge()` is the INTA cycle returning the vector.
 * References: Intel 8259A datasheet (ICW1-4, OCW1-3, "Priority" and "EOI" sections);
 * Intel 82371SB (PIIX3) datasheet §4.1.13 ELCR.
 */
import type { AccessSize, Device, DeviceContext, DeviceState } from '../bus/device.ts';
import { bool, int, oneOf, record, u8, vmstate, type TypeOf, type VmStateOf } from '../bus/vmstate.ts';

/** One 8259A. Field names follow the datasheet. */
const CHIP = record({
  /** Interrupt request, in-service and mask registers. */
  irr: u8,
  isr: u8,
  imr: u8,
  /** Input levels last seen, for edge detection. */
  lastLevel: u8,
  /** ICW2: vector of IR0 (bits 7-3). */
  vectorBase: u8,
  /** Which ICW comes next: 0 none (ready), 2, 3 or 4. */
  icwStep: oneOf(0, 2, 3, 4),
  /** ICW1 bits: IC4 (an ICW4 follows) and SNGL (no cascade). */
  needIcw4: bool,
  single: bool,
  /** ICW4 bits: AEOI and SFNM. */
  autoEoi: bool,
  specialFullyNested: bool,
  /** OCW2 rotate-in-automatic-EOI mode. */
  rotateOnAutoEoi: bool,
  /** IR number with the lowest priority is (priorityBase - 1): rotation (OCW2). */
  priorityBase: int(0, 7),
  /** OCW3: read ISR instead of IRR; poll on next read; special mask mode. */
  readIsr: bool,
  poll: bool,
  specialMask: bool,
  /** ELCR: 1 = level-triggered input (PIIX3). */
  elcr: u8,
  /** Bits of ELCR that may be set (IRQ0-2, 8 and 13 are always edge on the PC). */
  elcrMask: u8,
});
type Chip = TypeOf<typeof CHIP>;

/** Both 8259As; INTR is derived from them on load. */
export const PIC_STATE = vmstate('i8259', 1, { master: CHIP, slave: CHIP });
export type PicState = VmStateOf<typeof PIC_STATE>;

function newChip(elcrMask: number): Chip {
  return {
    irr: 0, isr: 0, imr: 0, lastLevel: 0, vectorBase: 0, icwStep: 0, needIcw4: false, single: false,
    autoEoi: false, specialFullyNested: false, rotateOnAutoEoi: false, priorityBase: 0, readIsr: false,
    poll: false, specialMask: false, elcr: 0, elcrMask,
  };
}

/** Highest-priority set bit of `bits` given the rotation, as an IR number; 8 when none. */
function highest(c: Chip, bits: number): number {
  if (bits === 0) return 8;
  for (let p = 0; p < 8; p++) {
    const ir = (p + c.priorityBase) & 7;
    if (bits & (1 << ir)) return ir;
  }
  return 8;
}

/** IR that should interrupt now, or -1: pending, unmasked, and above everything in service. */
function pendingIr(c: Chip, cascadeIr: number): number {
  const ir = highest(c, c.irr & ~c.imr);
  if (ir === 8) return -1;
  // Special mask mode: masked in-service levels do not block lower ones.
  let inService = c.specialMask ? c.isr & ~c.imr : c.isr;
  // Special fully nested mode: an in-service cascade input does not block the slave.
  if (c.specialFullyNested && cascadeIr >= 0) inService &= ~(1 << cascadeIr);
  const cur = highest(c, inService);
  // Priorities compare as positions after rotation.
  const pos = (x: number) => (x - c.priorityBase) & 7;
  return cur === 8 || pos(ir) < pos(cur) ? ir : -1;
}

export class I8259Pic implements Device {
  readonly name = 'pic';
  state: PicState = { master: newChip(0xf8), slave: newChip(0xde) };
  /** INTR output to the CPU (or the local APIC's LINT0). */
  onIntr: (level: boolean) => void = () => {};
  private intr = false;

  attach(ctx: DeviceContext): void {
    ctx.mapPorts(0x20, 2, this.block(() => this.state.master));
    ctx.mapPorts(0xa0, 2, this.block(() => this.state.slave));
    ctx.mapPorts(0x4d0, 2, {
      read: (off) => (off === 0 ? this.state.master.elcr : this.state.slave.elcr),
      write: (off, _size, v) => {
        const c = off === 0 ? this.state.master : this.state.slave;
        c.elcr = v & c.elcrMask;
        this.update();
      },
    });
  }

  reset(): void {
    const { master, slave } = this.state;
    const elcr = [master.elcr, slave.elcr];
    this.state = { master: newChip(0xf8), slave: newChip(0xde) };
    // ELCR belongs to the PIIX3 and survives a reset of the 8259s' programming.
    this.state.master.elcr = elcr[0];
    this.state.slave.elcr = elcr[1];
    this.update();
  }

  private block(chip: () => Chip) {
    return {
      read: (off: number, _size: AccessSize) => (off === 0 ? this.readCommand(chip()) : chip().imr),
      write: (off: number, _size: AccessSize, v: number) => (off === 0 ? this.writeCommand(chip(), v & 0xff) : this.writeData(chip(), v & 0xff)),
    };
  }

  /** An interrupt line changed (ISA IRQ 0-15). */
  setIrq(line: number, level: boolean): void {
    const c = line < 8 ? this.state.master : this.state.slave;
    const bit = 1 << (line & 7);
    if (c.elcr & bit) {
      // Level-triggered: IRR follows the line.
      if (level) c.irr |= bit;
      else c.irr &= ~bit;
    } else if (level && !(c.lastLevel & bit)) {
      c.irr |= bit; // rising edge
    }
    if (level) c.lastLevel |= bit;
    else c.lastLevel &= ~bit;
    this.update();
  }

  /** The INTR line: does the master want the CPU's attention? */
  get output(): boolean {
    return this.intr;
  }

  /** Recompute the slave's request on IR2 of the master, then INTR. */
  private update(): void {
    const { master, slave } = this.state;
    const slaveIr = pendingIr(slave, -1);
    if (slaveIr >= 0) master.irr |= 1 << 2;
    else if (!(master.elcr & 4)) master.irr &= ~(1 << 2);
    const level = pendingIr(master, 2) >= 0;
    if (level !== this.intr) {
      this.intr = level;
      this.onIntr(level);
    }
  }

  /** INTA: the vector of the highest-priority request (a spurious IR7 when it vanished). */
  acknowledge(): number {
    const { master, slave } = this.state;
    let ir = pendingIr(master, 2);
    let vector: number;
    if (ir < 0) {
      vector = master.vectorBase | 7; // spurious IRQ7: no ISR bit
    } else {
      this.inService(master, ir);
      if (ir === 2 && !master.single) {
        ir = pendingIr(slave, -1);
        if (ir < 0) vector = slave.vectorBase | 7; // spurious IRQ15
        else {
          this.inService(slave, ir);
          vector = slave.vectorBase | ir;
        }
      } else {
        vector = master.vectorBase | ir;
      }
    }
    this.update();
    return vector;
  }

  private inService(c: Chip, ir: number): void {
    const bit = 1 << ir;
    if (!(c.elcr & bit)) c.irr &= ~bit;
    if (c.autoEoi) {
      if (c.rotateOnAutoEoi) c.priorityBase = (ir + 1) & 7;
    } else {
      c.isr |= bit;
    }
  }

  private writeCommand(c: Chip, v: number): void {
    if (v & 0x10) {
      // ICW1: start initialisation. The mask, ISR, IRR edge memory and modes are cleared.
      const elcr = c.elcr;
      const elcrMask = c.elcrMask;
      Object.assign(c, newChip(elcrMask));
      c.elcr = elcr;
      c.needIcw4 = (v & 1) !== 0;
      c.single = (v & 2) !== 0;
      c.icwStep = 2;
    } else if (v & 0x08) {
      // OCW3
      if (v & 0x04) c.poll = true;
      if (v & 0x02) c.readIsr = (v & 1) !== 0;
      if (v & 0x40) c.specialMask = (v & 0x20) !== 0;
    } else {
      // OCW2: R, SL, EOI bits
      const cmd = v >> 5;
      switch (cmd) {
        case 0: c.rotateOnAutoEoi = false; break;
        case 4: c.rotateOnAutoEoi = true; break;
        case 1: // non-specific EOI
        case 5: { // rotate on non-specific EOI
          const ir = highest(c, c.isr);
          if (ir !== 8) {
            c.isr &= ~(1 << ir);
            if (cmd === 5) c.priorityBase = (ir + 1) & 7;
          }
          break;
        }
        case 3: c.isr &= ~(1 << (v & 7)); break; // specific EOI
        case 7: // rotate on specific EOI
          c.isr &= ~(1 << (v & 7));
          c.priorityBase = ((v & 7) + 1) & 7;
          break;
        case 6: c.priorityBase = ((v & 7) + 1) & 7; break; // set priority
        default: break;
      }
    }
    this.update();
  }

  private writeData(c: Chip, v: number): void {
    switch (c.icwStep) {
      case 2:
        c.vectorBase = v & 0xf8;
        c.icwStep = c.single ? (c.needIcw4 ? 4 : 0) : 3;
        break;
      case 3:
        // ICW3: cascade wiring, fixed on the PC (slave on IR2, slave ID 2).
        c.icwStep = c.needIcw4 ? 4 : 0;
        break;
      case 4:
        c.autoEoi = (v & 2) !== 0;
        c.specialFullyNested = (v & 0x10) !== 0;
        c.icwStep = 0;
        break;
      default:
        c.imr = v; // OCW1
    }
    this.update();
  }

  private readCommand(c: Chip): number {
    if (c.poll) {
      // Poll command: acknowledge the highest request like INTA, returned as 0x80 | IR.
      c.poll = false;
      const ir = pendingIr(c, c === this.state.master ? 2 : -1);
      if (ir < 0) return 0;
      this.inService(c, ir);
      this.update();
      return 0x80 | ir;
    }
    return c.readIsr ? c.isr : c.irr;
  }

  saveState(): DeviceState {
    return PIC_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state = PIC_STATE.load(s, this.name);
    this.intr = false;
    this.update();
  }
}
