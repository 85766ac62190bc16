/**
 * Intel 82371SB (PIIX3) PCI-to-ISA bridge, function 0 at 00:01.0 (8086:7000). Its PIRQ
 * route control registers (datasheet §4.1.10, config 0x60-0x63) steer PCI INTA-D to
 * ISA IRQs; the other functions (IDE at 00:01.1, PIIX4-style power management at
 * 00:01.3) are devices of their own.
 *
 * For the machine: `onPirq(link, value)` goes to the PCI bus's INTx routing.
 */
import { bytes, vmstate, type VmStateOf } from '../bus/vmstate.ts';
import type { Device, DeviceContext, DeviceState } from '../bus/device.ts';
import { readConfigBytes, type PciContext, type PciDevice, type PciFunctionSpec } from './pci-function.ts';

/** Configuration registers 0x00-0xBF (82371SB §4.1: PIRQ route control, top of memory...). */
export const PIIX3_STATE = vmstate('piix3', 1, { config: bytes(0xc0) });

export class Piix3IsaBridge implements PciDevice, Device {
  readonly name = 'piix3';
  state: VmStateOf<typeof PIIX3_STATE> = { config: new Uint8Array(0xc0) };
  onPirq: (link: number, value: number) => void = () => {};
  readonly pci: PciFunctionSpec;

  constructor() {
    this.pci = {
      vendorId: 0x8086,
      deviceId: 0x7000,
      revision: 0x00,
      classCode: 0x060100,
      headerType: 0x80, // multi-function: IDE and PM follow at functions 1 and 3
      interruptPin: 0,
      bars: [],
      configRead: (off, size) => readConfigBytes(this.state.config, off, size),
      configWrite: (off, size, value) => {
        for (let i = 0; i < size; i++) {
          const reg = off + i;
          const b = (value >>> (8 * i)) & 0xff;
          if (reg >= 0xc0) continue;
          this.state.config[reg] = b;
          if (reg >= 0x60 && reg <= 0x63) this.onPirq(reg - 0x60, b);
        }
        return true;
      },
    };
    this.reset();
  }

  attach(_ctx: DeviceContext): void {}
  attachPci(_ctx: PciContext): void {}

  reset(): void {
    const c = this.state.config;
    c.fill(0);
    // PIRQ routing disabled until the BIOS programs it (82371SB §4.1.10 default 80h).
    for (let link = 0; link < 4; link++) {
      c[0x60 + link] = 0x80;
      this.onPirq(link, 0x80);
    }
    c[0x4c] = 0x4d; // ISA I/O recovery timer default
    c[0x69] = 0x02; // top of memory default
    c[0x6a] = 0x04; // misc status
  }

  saveState(): DeviceState {
    return PIIX3_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state.config.set(PIIX3_STATE.load(s, this.name).config);
    for (let link = 0; link < 4; link++) this.onPirq(link, this.state.config[0x60 + link]);
  }
}
