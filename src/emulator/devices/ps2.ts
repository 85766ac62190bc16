/**
 * The Intel 8042 keyboard controller (ports 0x60 data, 0x64 status/command) with a PS/2
 * keyboard on its first port and a PS/2 mouse on its auxiliary port, IRQ1 and IRQ12.
 * References: IBM PS/2 Hardware Interface Technical Reference ("Keyboard/Auxiliary
 * Device Controller"), and the keyboard and mouse command sets of the same manual.
 *
 * For the machine: `onA20(enabled)` and `onReset()` from the output port (command 0xD1,
 * pulse command 0xFE). For whoever feeds input (the page's worker): `keyboard(bytes)`
 * takes the bytes a PS/2 keyboard sends in scan code set 2 (make codes, F0-prefixed
 * break codes, E0/E1 prefixes) and `mouse(dx, dy, buttons, wheel)` a movement, which the
 * mouse turns into a stream-mode packet when reporting is on.
 */
import type { Device, DeviceContext, DeviceState, IrqLine } from '../bus/device.ts';
import { array, bool, int, oneOf, record, since, u8, vmstate, type VmStateOf } from '../bus/vmstate.ts';

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

const CCB_XLAT = 0x40; // translate set 2 to set 1 (PC-compatible scan codes)

const ACK = 0xfa;
const RESEND = 0xfe;
const SELF_TEST_OK = 0xaa;

/**
 * The controller's scan code translation (IBM PS/2 Hardware Interface Technical Reference,
 * "Keyboard/Auxiliary Device Controller", scan code translation table): with command
 * byte bit 6 set, each set 2 byte from the keyboard leaves the controller as its set 1
 * equivalent; an F0 (break) prefix is swallowed and sets bit 7 of the next byte. Bytes
 * from 0x85 up (E0, E1, the keyboard's answers) pass unchanged.
 */
const SET2_TO_SET1 = Uint8Array.from([
  0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
  0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
  0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
  0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
  0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
  0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
  0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
  0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
  0x80, 0x81, 0x82, 0x41, 0x54,
]);

export function translateSet2(byte: number): number {
  return byte < SET2_TO_SET1.length ? SET2_TO_SET1[byte] : byte;
}

/** Bytes the controller holds at most before input from the devices is dropped (a guest not reading). */
const QUEUE_LIMIT = 256;

/**
 * The 8042's registers (command byte, output port, status), the keyboard's and the
 * mouse's own settings, and the bytes waiting for the output buffer. Version 1 is the
 * state from before the keyboard took input while its interface was disabled.
 */
export const I8042_STATE = vmstate('i8042', 2, {
  commandByte: u8,
  /** Bit 1 = A20 gate, bit 0 = not reset (output port, command 0xD0/0xD1). */
  outputPort: u8,
  status: u8,
  /** The controller command waiting for its parameter byte on port 0x60 (0 none). */
  pendingCommand: u8,
  /** Keyboard: command waiting for a parameter, scan code set, scanning enabled. */
  kbdPending: u8,
  kbdSet: int(1, 3),
  kbdEnabled: bool,
  /** Mouse: command waiting for a parameter, reporting, sample rate history, ID. */
  auxPending: u8,
  auxReporting: bool,
  auxRates: array(u8, 3),
  auxId: u8,
  auxSampleRate: u8,
  auxResolution: int(0, 3),
  auxScaling: oneOf(1, 2),
  /**
   * Bytes waiting in the controller: from the keyboard (aux = false) or the mouse. Input
   * stops at QUEUE_LIMIT; answers to the guest's own commands are never dropped, hence the wider bound.
   */
  queue: array(record({ byte: u8, aux: bool }), 0, 0x10000),
  /** Keyboard bytes held while the keyboard interface is disabled (its clock line inhibited). */
  kbdHeld: since(2, array(u8, 0, QUEUE_LIMIT), []),
  /** Translation saw an F0 break prefix: the next byte leaves with bit 7 set. */
  xlatBreak: since(2, bool, false),
  /** The byte in the output buffer now. */
  out: u8,
  outAux: bool,
});
export type I8042State = VmStateOf<typeof I8042_STATE>;

export class I8042 implements Device {
  readonly name = 'i8042';
  state: I8042State = {
    commandByte: CCB_KBD_INT | CCB_SYS | 0x40, outputPort: 0x03, status: STATUS_UNLOCKED, pendingCommand: 0,
    kbdPending: 0, kbdSet: 2, kbdEnabled: true,
    auxPending: 0, auxReporting: false, auxRates: [0, 0, 0], auxId: 0, auxSampleRate: 100, auxResolution: 2, auxScaling: 1,
    queue: [], kbdHeld: [], xlatBreak: false, out: 0, outAux: false,
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
    s.kbdHeld = [];
    s.xlatBreak = false;
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
    if (s.kbdHeld.length && !(s.commandByte & CCB_KBD_DISABLE)) {
      const held = s.kbdHeld;
      s.kbdHeld = [];
      for (const b of held) this.fromKeyboard(b);
    }
    if (!(s.status & STATUS_OBF) && s.queue.length) {
      const q = s.queue.shift()!;
      s.out = q.byte;
      s.outAux = q.aux;
      s.status |= STATUS_OBF;
      if (q.aux) s.status |= STATUS_AUXB;
      else s.status &= ~STATUS_AUXB;
    }
    s.status = (s.status & ~STATUS_SYS) | (s.commandByte & CCB_SYS);
    this.driveLines();
  }

  /** IRQ1 and IRQ12 from the output buffer and the command byte's interrupt enables. */
  private driveLines(): void {
    const s = this.state;
    const full = (s.status & STATUS_OBF) !== 0;
    this.irq1.set(full && !s.outAux && (s.commandByte & CCB_KBD_INT) !== 0);
    this.irq12.set(full && s.outAux && (s.commandByte & CCB_AUX_INT) !== 0);
  }

  private readData(): number {
    const s = this.state;
    const v = s.out;
    s.status &= ~(STATUS_OBF | STATUS_AUXB);
    // Reading the output buffer drops IRQ1/IRQ12; a byte still queued raises it again, a
    // new edge for the edge-triggered 8259. (On the real part the next byte arrives a
    // millisecond later over the wire; without the drop a keyboard's multi-byte answer,
    // such as FA AB 83 to Get ID, would interrupt once and Linux's atkbd would time out.)
    this.irq1.set(false);
    this.irq12.set(false);
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

  /**
   * The keyboard's answers travel the same wire as its scan codes, so translation applies
   * to them too (the ID AB 83 reads AB 41 with XLAT on, as Linux's atkbd expects).
   */
  private keyboardCommand(v: number): void {
    const s = this.state;
    const param = s.kbdPending;
    if (param) {
      s.kbdPending = 0;
      if (param === 0xf0) {
        if (v === 0) {
          this.fromKeyboard(ACK);
          this.fromKeyboard(s.kbdSet);
        } else if (v >= 1 && v <= 3) {
          s.kbdSet = v;
          this.fromKeyboard(ACK);
        } else this.fromKeyboard(RESEND);
      } else {
        this.fromKeyboard(ACK); // LED state (0xED) or typematic rate (0xF3)
      }
      return;
    }
    switch (v) {
      case 0xed: case 0xf0: case 0xf3:
        s.kbdPending = v;
        this.fromKeyboard(ACK);
        break;
      case 0xee: this.fromKeyboard(0xee); break; // echo
      case 0xf2: this.fromKeyboard(ACK); this.fromKeyboard(0xab); this.fromKeyboard(0x83); break; // MF2 keyboard ID
      case 0xf4: s.kbdEnabled = true; this.fromKeyboard(ACK); break;
      case 0xf5: s.kbdEnabled = false; this.fromKeyboard(ACK); break;
      case 0xf6: s.kbdEnabled = true; s.kbdSet = 2; this.fromKeyboard(ACK); break;
      case 0xff:
        s.kbdSet = 2;
        s.kbdEnabled = true;
        this.fromKeyboard(ACK);
        this.fromKeyboard(SELF_TEST_OK);
        break;
      default:
        this.fromKeyboard(RESEND);
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

  // ---------------------------------------------------------------------------------------
  // Input from the host
  // ---------------------------------------------------------------------------------------

  /**
   * Key events as a PS/2 keyboard reports them in scan code set 2 (e.g. 1C for A down,
   * F0 1C for A up, E0 75 for cursor up). A keyboard switched to set 1 (command F0 01)
   * sends set 1 codes itself; set 3 is sent as set 2. Dropped while the keyboard has
   * scanning disabled (command F5); held while the controller inhibits the keyboard.
   */
  keyboard(set2: ArrayLike<number>): void {
    const s = this.state;
    if (!s.kbdEnabled) return;
    let bytes: number[] = Array.from(set2, (b) => b & 0xff);
    if (s.kbdSet === 1) bytes = set2ToSet1(bytes);
    if (s.commandByte & CCB_KBD_DISABLE) {
      if (s.kbdHeld.length + bytes.length <= QUEUE_LIMIT) s.kbdHeld.push(...bytes);
      return;
    }
    for (const b of bytes) this.fromKeyboard(b);
    this.update();
  }

  /** One byte on the keyboard's wire into the controller, through translation when XLAT is on. */
  private fromKeyboard(byte: number): void {
    const s = this.state;
    if (s.queue.length >= QUEUE_LIMIT) return;
    if (!(s.commandByte & CCB_XLAT)) {
      s.queue.push({ byte, aux: false });
      return;
    }
    if (byte === 0xf0) {
      s.xlatBreak = true;
      return;
    }
    const t = translateSet2(byte) | (s.xlatBreak ? 0x80 : 0);
    s.xlatBreak = false;
    s.queue.push({ byte: t, aux: false });
  }

  /**
   * A pointer movement: dx right, dy up (PS/2 convention), buttons bit 0 left, 1 right,
   * 2 middle, wheel clicks (positive: towards the user) for an IntelliMouse (ID 3). Sent
   * as one stream-mode packet (PS/2 reference, "Data report") when reporting is enabled
   * and the auxiliary interface is not disabled; movements beyond ±255 set the overflow
   * bits and are clamped. Resolution and 2:1 scaling are not applied.
   */
  mouse(dx: number, dy: number, buttons: number, wheel = 0): void {
    const s = this.state;
    if (!s.auxReporting || s.commandByte & CCB_AUX_DISABLE) return;
    if (s.queue.length + 4 > QUEUE_LIMIT) return;
    const clamp = (v: number) => Math.max(-255, Math.min(255, Math.trunc(v)));
    const x = clamp(dx), y = clamp(dy);
    const head = (buttons & 7) | 0x08 | (x < 0 ? 0x10 : 0) | (y < 0 ? 0x20 : 0) | (x !== Math.trunc(dx) ? 0x40 : 0) | (y !== Math.trunc(dy) ? 0x80 : 0);
    s.queue.push({ byte: head, aux: true }, { byte: x & 0xff, aux: true }, { byte: y & 0xff, aux: true });
    if (s.auxId === 3) s.queue.push({ byte: Math.max(-8, Math.min(7, Math.trunc(wheel))) & 0xff, aux: true });
    this.update();
  }

  saveState(): DeviceState {
    return I8042_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    // Version-1 states (before the keyboard took input) load with no held bytes.
    this.state = I8042_STATE.load(s, this.name);
    // The registers as saved (a power-on status has not taken SYS from the command byte yet); only the lines are driven again.
    this.driveLines();
  }
}

/** What a keyboard in set 1 sends for a set 2 sequence: each code translated, F0 x as x | 0x80. */
function set2ToSet1(bytes: number[]): number[] {
  const out: number[] = [];
  let brk = false;
  for (const b of bytes) {
    if (b === 0xf0) {
      brk = true;
      continue;
    }
    out.push(translateSet2(b) | (brk ? 0x80 : 0));
    brk = false;
  }
  return out;
}
