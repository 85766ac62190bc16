/**
 * Intel 82441FX PCI and memory controller (PMC), the i440FX host bridge at 00:00.0, as
 * QEMU's PC presents it: 8086:1237 with subsystem 1af4:1100, which is how SeaBIOS
 * recognises a QEMU machine (platform-facts.md). Its PAM registers (datasheet §3.2.18,
 * config 0x59-0x5F) decide whether 0xC0000-0xFFFFF read and write RAM or ROM.
 *
 * For the machine: `onPam(index, value)` applies a PAM field to the memory map
 * (index 0 = 0xF0000-0xFFFFF, 1-12 = the 16 KiB areas from 0xC0000).
 */
import { bytes, vmstate, type VmStateOf } from '../bus/vmstate.ts';
import type { Device, DeviceContext, DeviceState } from '../bus/device.ts';
import { readConfigBytes, type PciContext, type PciDevice, type PciFunctionSpec } from './pci-function.ts';

/** Configuration registers 0x00-0xBF (datasheet §3.2: PAM, SMRAM, DRB...); the header part is the PCI bus's own copy. */
export const I440FX_STATE = vmstate('i440fx', 1, { config: bytes(0xc0) });

export class I440fxHostBridge implements PciDevice, Device {
  readonly name = 'i440fx';
  state: VmStateOf<typeof I440FX_STATE> = { config: new Uint8Array(0xc0) };
  onPam: (index: number, value: number) => void = () => {};
  readonly pci: PciFunctionSpec;

  constructor() {
    this.pci = {
      vendorId: 0x8086,
      deviceId: 0x1237,
      revision: 0x02,
      classCode: 0x060000,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      interruptPin: 0,
      bars: [],
      configRead: (off, size) => readConfigBytes(this.state.config, off, size),
      configWrite: (off, size, value) => {
        for (let i = 0; i < size; i++) this.writeByte(off + i, (value >>> (8 * i)) & 0xff);
        return true;
      },
    };
    this.reset();
  }

  attach(_ctx: DeviceContext): void {}
  attachPci(_ctx: PciContext): void {}

  reset(): void {
    this.state.config.fill(0);
    this.state.config[0x72] = 0x02; // SMRAM: C_BASE_SEG = 010 (A0000), closed
    for (let i = 0; i < 13; i++) this.onPam(i, 0);
  }

  private writeByte(reg: number, v: number): void {
    if (reg >= 0xc0) return;
    this.state.config[reg] = v;
    if (reg === 0x59) this.onPam(0, (v >> 4) & 3);
    else if (reg >= 0x5a && reg <= 0x5f) {
      const first = 1 + (reg - 0x5a) * 2;
      this.onPam(first, v & 3);
      this.onPam(first + 1, (v >> 4) & 3);
    }
  }

  saveState(): DeviceState {
    return I440FX_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state.config.set(I440FX_STATE.load(s, this.name).config);
    const c = this.state.config;
    this.onPam(0, (c[0x59] >> 4) & 3);
    for (let r = 0x5a; r <= 0x5f; r++) {
      this.onPam(1 + (r - 0x5a) * 2, c[r] & 3);
      this.onPam(2 + (r - 0x5a) * 2, (c[r] >> 4) & 3);
    }
  }
}
