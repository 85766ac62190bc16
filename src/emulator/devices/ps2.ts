/**
 * The Intel 8042 keyboard controller (ports 0x60 data, 0x64 status/command) with a PS/2
 * keyboard on its first port and a PS/2 mouse on its auxiliary port, IRQ1 and IRQ12.
 * References: IBM PS/2 Hardware Interface Technical Reference ("Keyboard/Auxiliary
 * Device Controller"), and the keyboard and mouse command sets of the same manual.
 *
 * For the machine: `onA20(enabled)` and `onReset()` from the output port (command 0xD1,
 * pulse command 0xFE). Key and pointer input from the page arrive in a later change,
 * together with the set 2 to set 1 translation table.
 */
import type { Device, DeviceContext, DeviceState, IrqLine } from '../bus/device.ts';

// Status register bits
const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08; // last write was to 0x64
const STATUS_UNLOCKED = 0x10; // keyboard not inhibited by the key lock
const STATUS_AUXB = 0x20; // output buffer holds mouse data
// Command byte bits
const CCB_KBD_INT = 0x01;
const CCB_AUX_INT = 0x02;
const CCB_SYS = 0x04;
const CCB_KBD_DISABLE = 0x10;
const CCB_AUX_DISABLE = 0x20;

const ACK = 0xfa;
const RESEND = 0xfe;
const SELF_TEST_OK = 0xaa;

/** A byte waiting in the controller: from the keyboard (aux = false) or the mouse. */
interface Queued {
  byte: number;
  aux: boolean;
}

export class I8042 implements Device {
  readonly name = 'i8042';
  state = {
    commandByte: CCB_KBD_INT | CCB_SYS | 0x40,
    /** Bit 1 = A20 gate, bit 0 = not reset (output port, command 0xD0/0xD1). */
    outputPort: 0x03,
    status: STATUS_UNLOCKED,
    /** The controller command waiting for its parameter byte on port 0x60 (0 none). */
    pendingCommand: 0,
    /** Keyboard: command waiting for a parameter, scan code set, scanning enabled. */
    kbdPending: 0,
    kbdSet: 2,
    kbdEnabled: true,
    /** Mouse: command waiting for a parameter, reporting, sample rate history, ID. */
    auxPending: 0,
    auxReporting: false,
    auxRates: [0, 0, 0],
    auxId: 0,
    auxSampleRate: 100,
    auxResolution: 2,
    auxScaling: 1,
    queue: [] as Queued[],
    /** The byte in the output buffer now. */
    out: 0,
    outAux: false,
  };
  onA20: (enabled: boolean) => void = () => {};
  onReset: () => void = () => {};
  private irq1!: IrqLine;
  private irq12!: IrqLine;

  attach(ctx: DeviceContext): void {
    this.irq1 = ctx.irq(1);
    this.irq12 = ctx.irq(12);
    ctx.mapPorts(0x60, 1, { read: () => this.readData(), write: (_o, _s, v) => this.writeData(v & 0xff) });
    ctx.mapPorts(0x64, 1, { read: () => this.state.status, write: (_o, _s, v) => this.writeCommand(v & 0xff) });
  }

  reset(): void {
    const s = this.state;
    s.commandByte = CCB_KBD_INT | CCB_SYS | 0x40;
    s.status = STATUS_UNLOCKED;
    s.pendingCommand = 0;
    s.kbdPending = 0;
    s.auxPending = 0;
    s.queue = [];
    s.outputPort = 0x03;
    this.update();
  }

  private push(byte: number, aux: boolean): void {
    this.state.queue.push({ byte, aux });
    this.update();
  }

  /** Move the next byte into the output buffer when it is empty, and drive the IRQs. */
  private update(): void {
    const s = this.state;
    if (!(s.status & STATUS_OBF) && s.queue.length) {
      const q = s.queue.shift()!;
      s.out = q.byte;
      s.outAux = q.aux;
      s.status |= STATUS_OBF;
      if (q.aux) s.status |= STATUS_AUXB;
      else s.status &= ~STATUS_AUXB;
    }
    s.status = (s.status & ~STATUS_SYS) | (s.commandByte & CCB_SYS);
    const full = (s.status & STATUS_OBF) !== 0;
    this.irq1.set(full && !s.outAux && (s.commandByte & CCB_KBD_INT) !== 0);
    this.irq12.set(full && s.outAux && (s.commandByte & CCB_AUX_INT) !== 0);
  }

  private readData(): number {
    const s = this.state;
    const v = s.out;
    s.status &= ~(STATUS_OBF | STATUS_AUXB);
    this.update();
    return v;
  }

  private writeCommand(cmd: number): void {
    const s = this.state;
    s.status |= STATUS_CMD;
    s.pendingCommand = 0;
    switch (cmd) {
      case 0x20: this.push(s.commandByte, false); break; // read command byte
      case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4: s.pendingCommand = cmd; break;
      case 0xa7: s.commandByte |= CCB_AUX_DISABLE; break;
      case 0xa8: s.commandByte &= ~CCB_AUX_DISABLE; break;
      case 0xa9: this.push(0x00, false); break; // auxiliary interface test: no error
      case 0xaa: // controller self-test
        s.commandByte |= CCB_KBD_DISABLE | CCB_AUX_DISABLE;
        this.push(0x55, false);
        break;
      case 0xab: this.push(0x00, false); break; // keyboard interface test: no error
      case 0xad: s.commandByte |= CCB_KBD_DISABLE; break;
      case 0xae: s.commandByte &= ~CCB_KBD_DISABLE; break;
      case 0xc0: this.push(0x80, false); break; // input port: keyboard not locked
      case 0xd0: this.push(s.outputPort | (s.status & STATUS_OBF ? 0x10 : 0) | (s.status & STATUS_AUXB ? 0x20 : 0), false); break;
      case 0xdd: this.setOutputPort(s.outputPort & ~0x02); break; // A20 off (common extension)
      case 0xdf: this.setOutputPort(s.outputPort | 0x02); break; // A20 on
      default:
        // 0xF0-0xFF pulse output port lines low; bit 0 is the CPU reset line.
        if (cmd >= 0xf0 && !(cmd & 1)) this.onReset();
        break;
    }
    this.update();
  }

  private setOutputPort(v: number): void {
    const s = this.state;
    const old = s.outputPort;
    s.outputPort = v;
    if ((old ^ v) & 0x02) this.onA20((v & 0x02) !== 0);
    if (!(v & 0x01)) this.onReset();
  }

  private writeData(v: number): void {
    const s = this.state;
    s.status &= ~STATUS_CMD;
    const pending = s.pendingCommand;
    s.pendingCommand = 0;
    switch (pending) {
      case 0x60:
        s.commandByte = v;
        break;
      case 0xd1:
        this.setOutputPort(v);
        break;
      case 0xd2:
        this.push(v, false);
        break;
      case 0xd3:
        this.push(v, true);
        break;
      case 0xd4:
        this.mouseCommand(v);
        break;
      default:
        // Writing data to the keyboard enables its interface (PS/2 reference).
        s.commandByte &= ~CCB_KBD_DISABLE;
        this.keyboardCommand(v);
    }
    this.update();
  }

  private keyboardCommand(v: number): void {
    const s = this.state;
    const param = s.kbdPending;
    if (param) {
      s.kbdPending = 0;
      if (param === 0xf0) {
        if (v === 0) {
          this.push(ACK, false);
          this.push(s.kbdSet, false);
        } else if (v >= 1 && v <= 3) {
          s.kbdSet = v;
          this.push(ACK, false);
        } else this.push(RESEND, false);
      } else {
        this.push(ACK, false); // LED state (0xED) or typematic rate (0xF3)
      }
      return;
    }
    switch (v) {
      case 0xed: case 0xf0: case 0xf3:
        s.kbdPending = v;
        this.push(ACK, false);
        break;
      case 0xee: this.push(0xee, false); break; // echo
      case 0xf2: this.push(ACK, false); this.push(0xab, false); this.push(0x83, false); break; // MF2 keyboard ID
      case 0xf4: s.kbdEnabled = true; this.push(ACK, false); break;
      case 0xf5: s.kbdEnabled = false; this.push(ACK, false); break;
      case 0xf6: s.kbdEnabled = true; s.kbdSet = 2; this.push(ACK, false); break;
      case 0xff:
        s.kbdSet = 2;
        s.kbdEnabled = true;
        this.push(ACK, false);
        this.push(SELF_TEST_OK, false);
        break;
      default:
        this.push(RESEND, false);
    }
  }

  private mouseCommand(v: number): void {
    const s = this.state;
    const param = s.auxPending;
    if (param) {
      s.auxPending = 0;
      if (param === 0xf3) {
        s.auxSampleRate = v;
        // IntelliMouse: sample rates 200, 100, 80 in a row switch the ID to 3.
        s.auxRates = [s.auxRates[1], s.auxRates[2], v];
        if (s.auxRates[0] === 200 && s.auxRates[1] === 100 && s.auxRates[2] === 80) s.auxId = 3;
      } else if (param === 0xe8) {
        s.auxResolution = v & 3;
      }
      this.push(ACK, true);
      return;
    }
    switch (v) {
      case 0xe6: s.auxScaling = 1; this.push(ACK, true); break;
      case 0xe7: s.auxScaling = 2; this.push(ACK, true); break;
      case 0xe8: case 0xf3: s.auxPending = v; this.push(ACK, true); break;
      case 0xe9: // status request
        this.push(ACK, true);
        this.push((s.auxReporting ? 0x20 : 0) | (s.auxScaling === 2 ? 0x10 : 0), true);
        this.push(s.auxResolution, true);
        this.push(s.auxSampleRate, true);
        break;
      case 0xea: case 0xf0: this.push(ACK, true); break; // stream / remote mode
      case 0xf2: this.push(ACK, true); this.push(s.auxId, true); break;
      case 0xf4: s.auxReporting = true; this.push(ACK, true); break;
      case 0xf5: s.auxReporting = false; this.push(ACK, true); break;
      case 0xf6:
        s.auxSampleRate = 100; s.auxResolution = 2; s.auxScaling = 1; s.auxReporting = false;
        this.push(ACK, true);
        break;
      case 0xff:
        s.auxSampleRate = 100; s.auxResolution = 2; s.auxScaling = 1; s.auxReporting = false; s.auxId = 0;
        this.push(ACK, true);
        this.push(SELF_TEST_OK, true);
        this.push(0x00, true); // device ID
        break;
      default:
        this.push(RESEND, true);
    }
  }

  saveState(): DeviceState {
    return structuredClone(this.state);
  }

  loadState(s: DeviceState): void {
    this.state = structuredClone(s) as typeof this.state;
    this.update();
  }
}
