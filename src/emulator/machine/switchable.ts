/**
 * The devices that can change path (bus/device-paths.ts) and how the device model builds
 * its copy of each: the constructor's options as plain data, the machine's calls into the
 * device (forwarded while it is emulated) and the device's callbacks out of it.
 */
import type { SwitchableSpec } from '../bus/device-paths.ts';
import type { UartOptions } from '../devices/uart.ts';
import type { Ne2000 } from '../devices/ne2000.ts';
import type { StdVga } from '../devices/vga/std-vga.ts';
import { MemoryBlockDevice, type BlockDevice } from '../devices/block-device.ts';

/** UART register 7, the scratch register: a write changes nothing else (16550A datasheet, "Scratchpad Register"). */
const UART_SCR = 7;

export function uartSpec(opts: UartOptions): SwitchableSpec {
  return {
    kind: 'uart',
    config: { ...opts },
    inbound: ['receive'],
    outbound: ['onTransmit'],
    // Only the scratch register is safe to post without an answer: every other write can raise or clear the interrupt.
    buffered: (key, offset, size) => key === 0 && offset === UART_SCR && size === 1,
  };
}

export function ne2000Spec(nic: Ne2000): SwitchableSpec {
  return {
    kind: 'ne2000',
    // The option ROM stays with the PCI bus, which answers the ROM BAR itself.
    config: { name: nic.name, mac: nic.mac.slice(), model: nic.model, isa: { ...nic.isa } },
    inbound: ['receive'],
    outbound: ['onTransmit'],
    // The machine publishes these after every run (the devices card's frame counters).
    getters: ['counters', 'queuedFrames'],
  };
}

/** A drive's medium in shared memory, as the device model receives it. */
export interface SharedMedium {
  buffer: SharedArrayBuffer;
  readOnly: boolean;
}

/** The device model's view of a medium the vCPU shared: the same bytes, no copy. */
export function sharedMedium(m: SharedMedium): BlockDevice {
  return new MemoryBlockDevice(new Uint8Array(m.buffer), m.readOnly);
}

/**
 * A drive's medium that can move into shared memory when its controller first goes to the
 * device model (a worker cannot reach the vCPU's buffers): read whole into a
 * SharedArrayBuffer once, and from then on both copies of the controller read and write
 * those bytes, so a write made on one path is seen on the other.
 */
export class ShareableBlockDevice implements BlockDevice {
  readonly size: number;
  readonly readOnly: boolean;
  private shared: SharedMedium | null = null;
  private memory: BlockDevice | null = null;

  constructor(private readonly inner: BlockDevice) {
    this.size = inner.size;
    this.readOnly = inner.readOnly;
  }

  read(offset: number, dst: Uint8Array): void {
    (this.memory ?? this.inner).read(offset, dst);
  }

  write(offset: number, src: Uint8Array): void {
    (this.memory ?? this.inner).write(offset, src);
  }

  share(): SharedMedium {
    if (!this.shared) {
      const bytes = new Uint8Array(new SharedArrayBuffer(this.size));
      const CHUNK = 1 << 20;
      for (let at = 0; at < this.size; at += CHUNK) this.inner.read(at, bytes.subarray(at, Math.min(this.size, at + CHUNK)));
      this.shared = { buffer: bytes.buffer as SharedArrayBuffer, readOnly: this.readOnly };
      this.memory = sharedMedium(this.shared);
    }
    return this.shared;
  }
}

/** The PIIX3 IDE function with its drives: no outside interface but its media, shared at the switch. */
export function ideSpec(media: { hda?: ShareableBlockDevice; cdrom?: ShareableBlockDevice }): SwitchableSpec {
  return {
    kind: 'ide',
    config: () => ({ hda: media.hda?.share(), cdrom: media.cdrom?.share() }),
    inbound: [],
    outbound: [],
  };
}

/** QEMU's edu test device: MMIO registers, timers, DMA and INTx, and no outside interface. */
export function eduSpec(): SwitchableSpec {
  return { kind: 'edu', config: {}, inbound: [], outbound: [] };
}

/**
 * The std VGA: its registers (ports 0x3B0-0x3DF, the DISPI ports, BAR2's MMIO block) and the
 * legacy window 0xA0000-0xBFFFF take the path; its video memory and dirty log are shared by
 * both copies, as QEMU maps VRAM, so the LFB is plain memory on either path and a switch
 * moves only the registers. The renderer in the vCPU's thread reads the registers and the
 * change counters from the device model while the VGA is emulated.
 */
export function vgaSpec(vga: StdVga): SwitchableSpec {
  return {
    kind: 'vga',
    config: () => {
      const shared = vga.sharedVram();
      if (!shared) throw new Error('this host has no shared memory for the video memory: the VGA stays direct');
      return shared;
    },
    inbound: [],
    outbound: [],
    getters: ['state', 'registerVersion', 'fontVersion'],
    sharedMemory: true,
  };
}
