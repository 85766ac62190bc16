/**
 * The debug and diagnostic ports a QEMU PC has:
 *  - 0x402: SeaBIOS's debug log; reading it returns 0xE9 so SeaBIOS knows it exists.
 *  - 0xE9: the debug console (QEMU's -debugcon), also readable as 0xE9.
 *  - 0xF4: isa-debug-exit: a write of v ends the emulator with status (v << 1) | 1.
 *  - 0x80: the POST code port; its last value is shown with the statistics.
 * For the machine: the callbacks below.
 */
import type { Device, DeviceContext, DeviceState } from '../bus/device.ts';
import { u8, vmstate, type VmStateOf } from '../bus/vmstate.ts';

/** The last POST code written to port 0x80; the other ports hold nothing. */
export const DEBUG_PORTS_STATE = vmstate('debug-ports', 1, { postCode: u8 });

export class DebugPorts implements Device {
  readonly name = 'debug';
  state: VmStateOf<typeof DEBUG_PORTS_STATE> = { postCode: 0 };
  onBiosLog: (byte: number) => void = () => {};
  onDebugcon: (byte: number) => void = () => {};
  onExit: ((value: number) => void) | null = null;
  onPostCode: (code: number) => void = () => {};

  attach(ctx: DeviceContext): void {
    ctx.mapPorts(0x402, 1, { read: () => 0xe9, write: (_o, _s, v) => this.onBiosLog(v & 0xff) });
    ctx.mapPorts(0xe9, 1, { read: () => 0xe9, write: (_o, _s, v) => this.onDebugcon(v & 0xff) });
    ctx.mapPorts(0x80, 1, {
      read: () => this.state.postCode,
      write: (_o, _s, v) => {
        this.state.postCode = v & 0xff;
        this.onPostCode(v & 0xff);
      },
    });
    // isa-debug-exit answers only when asked for (--debug-exit), as in QEMU.
    if (this.onExit) {
      const exit = this.onExit;
      ctx.mapPorts(0xf4, 4, { read: () => 0xff, write: (_o, _s, v) => exit(v & 0xff) });
    }
  }

  reset(): void {
    this.state.postCode = 0;
  }

  saveState(): DeviceState {
    return DEBUG_PORTS_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state = DEBUG_PORTS_STATE.load(s, this.name);
  }
}
