/**
 * System control port A at 0x92 (PS/2 "fast A20"): bit 1 gates A20, writing bit 0 as 1
 * resets the CPU (IBM PS/2 technical reference; the PIIX3 implements it, §4.2.1).
 * For the machine: `onA20(enabled)` and `onReset()`.
 */
import type { Device, DeviceContext, DeviceState } from '../bus/device.ts';
import { int, vmstate, type VmStateOf } from '../bus/vmstate.ts';

/** Bits 1 (A20) and 0 (reset, reads back as written) of port 0x92. */
export const PORT92_STATE = vmstate('port92', 1, { value: int(0, 3) });

export class Port92 implements Device {
  readonly name = 'port92';
  state: VmStateOf<typeof PORT92_STATE> = { value: 0x02 };
  onA20: (enabled: boolean) => void = () => {};
  onReset: () => void = () => {};

  attach(ctx: DeviceContext): void {
    ctx.mapPorts(0x92, 1, {
      read: () => this.state.value,
      write: (_o, _s, v) => {
        const old = this.state.value;
        this.state.value = v & 0x03;
        if ((v ^ old) & 2) this.onA20((v & 2) !== 0);
        if (v & 1 && !(old & 1)) this.onReset();
      },
    });
  }

  reset(): void {
    // A20 stays as the machine left it; QEMU starts with A20 enabled.
    this.state.value = 0x02;
  }

  saveState(): DeviceState {
    return PORT92_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state = PORT92_STATE.load(s, this.name);
  }
}
