/**
 * The PC/AT's two cascaded Intel 8237A DMA controllers: channels 0-3 move bytes (ports
 * 0x00-0x0F), channels 4-7 move 16-bit words (ports 0xC0-0xDF, registers at even
 * addresses), channel 4 is the cascade. The page registers (0x81-0x8F) supply address
 * bits 16-23; 0x80 is the POST-code port (debug-ports.ts), as on every PC since the AT.
 *
 * ISA devices (the floppy controller on channel 2) do not hold this device: the machine
 * gives them an `IsaDmaChannel`, the DREQ/DACK pair of one channel. When the device has
 * data, it calls `transfer`; the controller moves it as its mode register says (write =
 * to memory, read = from memory, verify = nowhere), through the bus's DMA handle, until
 * the count runs out (terminal count). 8237A datasheet: "Register Description".
 */
import { bytes, vmstate, words, type VmStateOf } from '../bus/vmstate.ts';
import type { Device, DeviceContext, DeviceState, DmaHandle } from '../bus/device.ts';

/** One channel's DREQ/DACK as a device sees it. */
export interface IsaDmaChannel {
  /**
   * The device moves up to `buf.length` bytes: for a device-to-memory transfer `buf` holds
   * its data; for memory-to-device the controller fills `buf`. Returns the bytes moved
   * (fewer when the channel is masked or reaches terminal count) and whether TC was hit.
   */
  transfer(buf: Uint8Array, deviceToMemory: boolean): { moved: number; terminalCount: boolean };
  /** The channel is unmasked and programmed (a device may start its execution phase). */
  ready(): boolean;
}

/** Mode register transfer types (bits 3:2); 0 is verify (nothing moves), 3 is illegal. */
const WRITE = 1; // device -> memory
const READ = 2; // memory -> device

/** Page register port of each channel (0x80 + this). Channel 4 has none. */
const PAGE_PORT = [0x87, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a];

/** Intel 8237A registers of both controllers, named as in the datasheet's register table. */
export const DMA8237_STATE = vmstate('i8237', 1, {
  /** Per channel (0-7): base/current address and count, mode, page. */
  baseAddress: words(8),
  baseCount: words(8),
  currentAddress: words(8),
  currentCount: words(8),
  mode: bytes(8),
  page: bytes(8),
  /** Per controller (0 = channels 0-3, 1 = 4-7). */
  command: bytes(2),
  mask: bytes(2),
  status: bytes(2),
  request: bytes(2),
  flipFlop: bytes(2),
  temporary: bytes(2),
  /** Page registers 0x81-0x8F that no channel uses: plain storage, as on the AT. */
  extraPages: bytes(16),
});
export type Dma8237State = VmStateOf<typeof DMA8237_STATE>;

export class Dma8237 implements Device {
  readonly name = 'dma';
  state: Dma8237State = initialState();
  private dma: DmaHandle | null = null;

  attach(ctx: DeviceContext): void {
    this.dma = ctx.dma;
    ctx.mapPorts(0x00, 0x10, { read: (o) => this.readReg(0, o), write: (o, _s, v) => this.writeReg(0, o, v & 0xff) });
    ctx.mapPorts(0xc0, 0x20, {
      read: (o) => ((o & 1) === 0 ? this.readReg(1, o >> 1) : 0xff),
      write: (o, _s, v) => { if ((o & 1) === 0) this.writeReg(1, o >> 1, v & 0xff); },
    });
    ctx.mapPorts(0x81, 0x0f, {
      read: (o) => this.readPage(0x81 + o),
      write: (o, _s, v) => this.writePage(0x81 + o, v & 0xff),
    });
  }

  /** The handle a device on channel `n` is given. */
  channel(n: number): IsaDmaChannel {
    return {
      transfer: (buf, deviceToMemory) => this.transfer(n, buf, deviceToMemory),
      ready: () => (this.state.mask[n >> 2] & (1 << (n & 3))) === 0,
    };
  }

  reset(): void {
    this.state = initialState();
  }

  // -------------------------------------------------------------------------------------
  // Registers
  // -------------------------------------------------------------------------------------

  private readReg(ctl: number, reg: number): number {
    const s = this.state;
    if (reg < 8) {
      const ch = ctl * 4 + (reg >> 1);
      const v = (reg & 1) === 0 ? s.currentAddress[ch] : s.currentCount[ch];
      const byte = s.flipFlop[ctl] ? v >> 8 : v & 0xff;
      s.flipFlop[ctl] ^= 1;
      return byte;
    }
    switch (reg) {
      case 8: { // status: TC bits clear on read
        const v = s.status[ctl] | (s.request[ctl] << 4);
        s.status[ctl] = 0;
        return v;
      }
      case 0x0d: return s.temporary[ctl];
      case 0x0f: return 0xf0 | s.mask[ctl];
      default: return 0xff;
    }
  }

  private writeReg(ctl: number, reg: number, v: number): void {
    const s = this.state;
    if (reg < 8) {
      const ch = ctl * 4 + (reg >> 1);
      const hi = s.flipFlop[ctl] !== 0;
      s.flipFlop[ctl] ^= 1;
      // Writing base also writes current (8237A: "Base and Current Address/Count").
      if ((reg & 1) === 0) {
        s.baseAddress[ch] = hi ? (s.baseAddress[ch] & 0xff) | (v << 8) : (s.baseAddress[ch] & 0xff00) | v;
        s.currentAddress[ch] = s.baseAddress[ch];
      } else {
        s.baseCount[ch] = hi ? (s.baseCount[ch] & 0xff) | (v << 8) : (s.baseCount[ch] & 0xff00) | v;
        s.currentCount[ch] = s.baseCount[ch];
      }
      return;
    }
    switch (reg) {
      case 0x08: s.command[ctl] = v; break;
      case 0x09: // software request
        if (v & 4) s.request[ctl] |= 1 << (v & 3);
        else s.request[ctl] &= ~(1 << (v & 3));
        break;
      case 0x0a: // single mask bit
        if (v & 4) s.mask[ctl] |= 1 << (v & 3);
        else s.mask[ctl] &= ~(1 << (v & 3));
        break;
      case 0x0b: s.mode[ctl * 4 + (v & 3)] = v; break;
      case 0x0c: s.flipFlop[ctl] = 0; break;
      case 0x0d: // master clear: as a hardware reset of this controller
        s.command[ctl] = 0;
        s.status[ctl] = 0;
        s.request[ctl] = 0;
        s.temporary[ctl] = 0;
        s.flipFlop[ctl] = 0;
        s.mask[ctl] = 0x0f;
        break;
      case 0x0e: s.mask[ctl] = 0; break;
      case 0x0f: s.mask[ctl] = v & 0x0f; break;
      default: break;
    }
  }

  private readPage(port: number): number {
    const ch = PAGE_PORT.indexOf(port);
    return ch >= 0 ? this.state.page[ch] : this.state.extraPages[port - 0x81];
  }

  private writePage(port: number, v: number): void {
    const ch = PAGE_PORT.indexOf(port);
    if (ch >= 0) this.state.page[ch] = v;
    else this.state.extraPages[port - 0x81] = v;
  }

  // -------------------------------------------------------------------------------------
  // Transfers
  // -------------------------------------------------------------------------------------

  private transfer(ch: number, buf: Uint8Array, deviceToMemory: boolean): { moved: number; terminalCount: boolean } {
    const s = this.state;
    const ctl = ch >> 2;
    const bit = 1 << (ch & 3);
    // Masked, or the whole controller disabled by its command register (bit 2).
    if ((s.mask[ctl] & bit) !== 0 || (s.command[ctl] & 0x04) !== 0) return { moved: 0, terminalCount: false };
    const mode = s.mode[ch];
    const type = (mode >> 2) & 3;
    const autoInit = (mode & 0x10) !== 0;
    const down = (mode & 0x20) !== 0;
    const wide = ch >= 4;
    const unit = wide ? 2 : 1;
    void deviceToMemory; // the mode register, not the device, decides the direction
    let moved = 0;
    let tc = false;
    while (moved + unit <= buf.length) {
      // Units left in this programming: count + 1 (the count register holds N - 1).
      const left = s.currentCount[ch] + 1;
      const n = Math.min(left, Math.floor((buf.length - moved) / unit));
      // Contiguous run within the 64 Ki-unit window the address register covers.
      const addr = s.currentAddress[ch];
      const run = down ? Math.min(n, addr + 1) : Math.min(n, 0x10000 - addr);
      const base = wide ? ((s.page[ch] & 0xfe) << 16) : (s.page[ch] << 16);
      if (type === WRITE || type === READ) {
        if (!down) {
          // Incrementing: one contiguous block of memory.
          const phys = base + (wide ? addr << 1 : addr);
          const slice = buf.subarray(moved, moved + run * unit);
          if (type === WRITE) this.dma?.write(phys, slice);
          else this.dma?.read(phys, slice);
        } else {
          for (let i = 0; i < run; i++) {
            const a = (addr - i) & 0xffff;
            const slice = buf.subarray(moved + i * unit, moved + (i + 1) * unit);
            const phys = base + (wide ? a << 1 : a);
            if (type === WRITE) this.dma?.write(phys, slice);
            else this.dma?.read(phys, slice);
          }
        }
      }
      moved += run * unit;
      s.currentAddress[ch] = down ? (addr - run) & 0xffff : (addr + run) & 0xffff;
      const count = (s.currentCount[ch] - run) & 0xffff;
      s.currentCount[ch] = count;
      if (run === left) {
        // Terminal count: the count wrapped to 0xFFFF (8237A "TC").
        tc = true;
        s.status[ctl] |= bit;
        s.request[ctl] &= ~bit;
        if (autoInit) {
          s.currentAddress[ch] = s.baseAddress[ch];
          s.currentCount[ch] = s.baseCount[ch];
        } else {
          s.mask[ctl] |= bit;
          break;
        }
      }
      if (run === 0) break;
    }
    return { moved, terminalCount: tc };
  }

  saveState(): DeviceState {
    return DMA8237_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    this.state = DMA8237_STATE.load(saved, this.name);
  }
}

function initialState(): Dma8237State {
  return {
    baseAddress: new Uint16Array(8), baseCount: new Uint16Array(8), currentAddress: new Uint16Array(8), currentCount: new Uint16Array(8),
    mode: new Uint8Array(8), page: new Uint8Array(8),
    command: new Uint8Array(2), mask: new Uint8Array([0x0f, 0x0f]), status: new Uint8Array(2), request: new Uint8Array(2),
    flipFlop: new Uint8Array(2), temporary: new Uint8Array(2), extraPages: new Uint8Array(16),
  };
}
