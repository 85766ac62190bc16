/**
 * PIIX3 IDE (82371SB function 1, 8086:7010 at 00:01.1): two channels in compatibility
 * mode at the legacy addresses with ISA IRQ 14 and 15, and the SFF-8038i bus-master IDE
 * registers behind BAR4. The legacy decode follows the IDETIM registers' "IDE decode
 * enable" bit (82371SB datasheet §2.4.1, config 0x40 primary, 0x42 secondary), which
 * SeaBIOS sets and Linux's ata_piix reads to see which channels are on.
 *
 * Drives: the machine's hda as primary master, its CD-ROM as secondary master (as QEMU's
 * -hda and -cdrom place them).
 */
import type { AccessSize, Device, DeviceContext, DeviceState, Mapping } from '../../bus/device.ts';
import type { PciContext, PciDevice, PciFunctionSpec } from '../../pci/pci-function.ts';
import { readConfigBytes } from '../../pci/pci-function.ts';
import type { BlockDevice } from '../block-device.ts';
import { BM_CMD_START, BM_ST_ERROR, BM_ST_INTERRUPT, IDE_CHANNEL_STATE, IdeChannel } from './ide-channel.ts';
import { array, bytes, vmstate } from '../../bus/vmstate.ts';

/**
 * The function's device-specific configuration registers (0x40-0xFF: IDETIM, SIDETIM...;
 * the header below 0x40 is the PCI bus's) and both channels with their drives.
 */
export const PIIX3_IDE_STATE = vmstate('piix3-ide', 1, { config: bytes(0x100), channels: array(IDE_CHANNEL_STATE, 2) });

const IDETIM_DECODE = 0x8000;
/** Legacy command and control block addresses and IRQs of the two channels. */
const LEGACY = [
  { command: 0x1f0, control: 0x3f6, irq: 14 },
  { command: 0x170, control: 0x376, irq: 15 },
] as const;

export interface Piix3IdeOptions {
  hda?: BlockDevice;
  cdrom?: BlockDevice;
}

export class Piix3Ide implements PciDevice, Device {
  readonly name = 'ide';
  readonly channels: [IdeChannel, IdeChannel];
  readonly pci: PciFunctionSpec;
  state = { config: new Uint8Array(0x100) };
  private legacy: { command: Mapping; control: Mapping }[] = [];

  constructor(options: Piix3IdeOptions = {}) {
    this.channels = [
      new IdeChannel('ide0', [options.hda ? { kind: 'disk', medium: options.hda } : null, null]),
      new IdeChannel('ide1', [options.cdrom !== undefined ? { kind: 'cdrom', medium: options.cdrom } : null, null]),
    ];
    this.pci = {
      vendorId: 0x8086,
      deviceId: 0x7010,
      revision: 0x00,
      classCode: 0x010180, // IDE, bus-master capable, both channels in compatibility mode
      interruptPin: 0,
      bars: [{ index: 4, kind: 'io', size: 16, block: { read: (o, s) => this.bmRead(o, s), write: (o, s, v) => this.bmWrite(o, s, v) } }],
      configRead: (off, size) => (off >= 0x40 ? readConfigBytes(this.state.config, off, size) : undefined),
      configWrite: (off, size, value) => {
        if (off < 0x40) return false;
        for (let i = 0; i < size; i++) if (off + i < 0x100) this.state.config[off + i] = (value >>> (8 * i)) & 0xff;
        this.updateDecode();
        return true;
      },
    };
  }

  attach(ctx: DeviceContext): void {
    this.channels.forEach((ch, i) => {
      const l = LEGACY[i];
      ch.irq = ctx.irq(l.irq);
      ch.dma = ctx.dma;
      ch.log = (m) => ctx.log(m);
      const command = ctx.mapPorts(l.command, 8, { read: (o, s) => ch.read(o, s), write: (o, s, v) => ch.write(o, s, v) });
      // Only the first control-block port: 0x3F7/0x377 belong to the floppy controller.
      const control = ctx.mapPorts(l.control, 1, { read: () => ch.altStatus(), write: (_o, _s, v) => ch.writeControl(v) });
      this.legacy.push({ command, control });
    });
    this.updateDecode();
  }

  attachPci(ctx: PciContext): void {
    for (const ch of this.channels) ch.busMasterEnabled = () => ctx.busMasterEnabled();
  }

  private idetim(channel: number): number {
    const c = this.state.config;
    return c[0x40 + channel * 2] | (c[0x41 + channel * 2] << 8);
  }

  /** Map or unmap each channel's legacy ports by its IDETIM decode-enable bit. */
  private updateDecode(): void {
    this.legacy.forEach((m, i) => {
      const on = (this.idetim(i) & IDETIM_DECODE) !== 0;
      if (on && !m.command.mapped) {
        m.command.move(LEGACY[i].command);
        m.control.move(LEGACY[i].control);
      } else if (!on && m.command.mapped) {
        m.command.unmap();
        m.control.unmap();
      }
    });
  }

  reset(): void {
    this.state.config.fill(0);
    for (const ch of this.channels) {
      ch.reset();
      // Drive 0 DMA capable (status bit 5) where a drive is attached, as a BIOS would set it.
      ch.bm.status = ch.drives[0] ? 0x20 : 0;
    }
    this.updateDecode();
  }

  // -------------------------------------------------------------------------------------
  // Bus-master IDE registers (SFF-8038i §2.1): per channel, command (+0), status (+2), PRD table (+4)
  // -------------------------------------------------------------------------------------

  private bmRead(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.bmRead8(offset + i) << (8 * i);
    return size === 4 ? v | 0 : v;
  }

  private bmRead8(o: number): number {
    const ch = this.channels[o >> 3];
    const bm = ch.bm;
    switch (o & 7) {
      case 0: return bm.command & 0x09;
      case 2: return bm.status & 0x67;
      case 4: case 5: case 6: case 7: return (bm.prd >>> (8 * ((o & 7) - 4))) & 0xff;
      default: return 0;
    }
  }

  private bmWrite(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.bmWrite8(offset + i, (value >>> (8 * i)) & 0xff);
  }

  private bmWrite8(o: number, v: number): void {
    const ch = this.channels[o >> 3];
    const bm = ch.bm;
    switch (o & 7) {
      case 0: {
        const was = bm.command;
        bm.command = v & 0x09;
        // Starting the engine with a DMA command pending runs the transfer.
        if ((v & BM_CMD_START) !== 0 && (was & BM_CMD_START) === 0) ch.tryDma();
        break;
      }
      case 2:
        // Interrupt and error are write-1-to-clear; the drive DMA-capable bits are plain bits.
        bm.status = (bm.status & ~(v & (BM_ST_INTERRUPT | BM_ST_ERROR)) & ~0x60) | (v & 0x60);
        break;
      case 4: case 5: case 6: case 7: {
        const shift = 8 * ((o & 7) - 4);
        bm.prd = ((bm.prd & ~(0xff << shift)) | (v << shift)) >>> 0;
        bm.prd = (bm.prd & ~3) >>> 0;
        break;
      }
      default:
        break;
    }
  }

  saveState(): DeviceState {
    return PIIX3_IDE_STATE.save({ config: this.state.config, channels: this.channels.map((c) => c.saveState()) });
  }

  loadState(s: DeviceState): void {
    const st = PIIX3_IDE_STATE.load(s, this.name);
    for (const [i, c] of this.channels.entries()) {
      const e = c.mismatch(st.channels[i]);
      if (e) throw new Error(`${PIIX3_IDE_STATE.name} ${this.name}: ${e}`);
    }
    this.state.config.set(st.config);
    this.channels.forEach((c, i) => c.loadState(st.channels[i]));
    this.updateDecode();
  }
}
