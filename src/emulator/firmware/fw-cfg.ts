/**
 * QEMU's firmware configuration device (docs/specs/fw_cfg.rst in QEMU): the channel
 * through which SeaBIOS learns the machine (RAM map, CPU count, files such as
 * etc/e820 and option ROMs, the kernel to boot). Selector at 0x510 (16-bit), data at
 * 0x511 (byte stream), DMA address at 0x514 (high) / 0x518 (low, big-endian; writing
 * the low half starts the transfer).
 *
 * For the machine: `addItem(key, bytes)`, `addFile(name, bytes)`; directory and the
 * signature/ID items are built here. The DMA descriptors are read and written through
 * the device's DmaHandle, so fw_cfg DMA is counted like any bus master.
 */
import type { Device, DeviceContext, DeviceState, DmaHandle } from '../bus/device.ts';
import { u16, u32, vmstate, type VmStateOf } from '../bus/vmstate.ts';

/**
 * The selected item, the read position in it, and the high half of the DMA address
 * (fw_cfg.rst: "Selector Register", "Data Register", "DMA Address"). The items themselves
 * are the machine's configuration, built again by the machine, not state.
 */
export const FW_CFG_STATE = vmstate('fw_cfg', 1, { selector: u16, offset: u32, dmaHigh: u32 });

export const FW_CFG = {
  SIGNATURE: 0x00, ID: 0x01, UUID: 0x02, RAM_SIZE: 0x03, NOGRAPHIC: 0x04, NB_CPUS: 0x05, MACHINE_ID: 0x06,
  KERNEL_ADDR: 0x07, KERNEL_SIZE: 0x08, KERNEL_CMDLINE: 0x09, INITRD_ADDR: 0x0a, INITRD_SIZE: 0x0b,
  BOOT_DEVICE: 0x0c, NUMA: 0x0d, BOOT_MENU: 0x0e, MAX_CPUS: 0x0f, KERNEL_ENTRY: 0x10, KERNEL_DATA: 0x11,
  INITRD_DATA: 0x12, CMDLINE_ADDR: 0x13, CMDLINE_SIZE: 0x14, CMDLINE_DATA: 0x15, SETUP_ADDR: 0x16,
  SETUP_SIZE: 0x17, SETUP_DATA: 0x18, FILE_DIR: 0x19, FILE_FIRST: 0x20,
  /** x86-specific keys. */
  ACPI_TABLES: 0x8000, SMBIOS_ENTRIES: 0x8001, IRQ0_OVERRIDE: 0x8002, E820_TABLE: 0x8003, HPET: 0x8004,
} as const;

// DMA control bits
const DMA_ERROR = 0x01;
const DMA_READ = 0x02;
const DMA_SKIP = 0x04;
const DMA_SELECT = 0x08;
const DMA_WRITE = 0x10;
/** ID bits: traditional interface, DMA interface. */
const ID_TRADITIONAL = 1;
const ID_DMA = 2;
const FILE_NAME_BYTES = 56;

export function le16(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, (v >> 8) & 0xff);
}

export function le32(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}

export function le64(v: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v), true);
  return out;
}

export class FwCfg implements Device {
  readonly name = 'fw_cfg';
  private readonly items = new Map<number, Uint8Array>();
  private readonly files: { name: string; data: Uint8Array }[] = [];
  state: VmStateOf<typeof FW_CFG_STATE> = { selector: 0, offset: 0, dmaHigh: 0 };
  private dma!: DmaHandle;

  constructor() {
    this.items.set(FW_CFG.SIGNATURE, new TextEncoder().encode('QEMU'));
    this.items.set(FW_CFG.ID, le32(ID_TRADITIONAL | ID_DMA));
  }

  addItem(key: number, data: Uint8Array): void {
    this.items.set(key, data);
  }

  /** Add a named file; keys are assigned from 0x20 in name order when the directory is built. */
  addFile(name: string, data: Uint8Array): void {
    if (new TextEncoder().encode(name).length >= FILE_NAME_BYTES) throw new RangeError(`fw_cfg file name too long: ${name}`);
    const i = this.files.findIndex((f) => f.name === name);
    if (i >= 0) this.files[i].data = data;
    else this.files.push({ name, data });
    this.buildDirectory();
  }

  /** Directory (key 0x19): big-endian count, then {be32 size, be16 select, be16 0, name[56]} entries. */
  private buildDirectory(): void {
    this.files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dir = new Uint8Array(4 + this.files.length * 64);
    const view = new DataView(dir.buffer);
    view.setUint32(0, this.files.length, false);
    this.files.forEach((f, i) => {
      const at = 4 + i * 64;
      view.setUint32(at, f.data.length, false);
      view.setUint16(at + 4, FW_CFG.FILE_FIRST + i, false);
      dir.set(new TextEncoder().encode(f.name), at + 8);
      this.items.set(FW_CFG.FILE_FIRST + i, f.data);
    });
    this.items.set(FW_CFG.FILE_DIR, dir);
  }

  attach(ctx: DeviceContext): void {
    this.dma = ctx.dma;
    ctx.mapPorts(0x510, 2, {
      read: (off, size) => {
        if (off === 0) return 0; // the selector is write-only
        let v = 0;
        for (let i = 0; i < size; i++) v |= this.readByte() << (8 * i);
        return v;
      },
      write: (off, _size, v) => {
        if (off === 0) this.select(v & 0xffff);
        // Writes to the data port are ignored (no writable items here).
      },
    });
    const signature = new TextEncoder().encode('QEMU CFG');
    ctx.mapPorts(0x514, 8, {
      // Reading the DMA address register returns the signature "QEMU CFG" (big-endian).
      read: (off, size) => {
        let v = 0;
        for (let i = 0; i < size; i++) v |= signature[off + i] << (8 * i);
        return v;
      },
      write: (off, size, v) => {
        const be = size === 4 ? swap32(v) : v;
        if (off === 0 && size === 4) this.state.dmaHigh = be;
        else if (off === 4 && size === 4) this.runDma(this.state.dmaHigh * 0x100000000 + (be >>> 0));
      },
    });
  }

  reset(): void {
    this.state = { selector: 0, offset: 0, dmaHigh: 0 };
  }

  private select(key: number): void {
    // Bit 14 marks a write selector (nothing here is writable); bit 15, arch-local keys, stays.
    this.state.selector = key & 0xbfff;
    this.state.offset = 0;
  }

  private readByte(): number {
    const item = this.items.get(this.state.selector);
    if (!item || this.state.offset >= item.length) return 0;
    return item[this.state.offset++];
  }

  /** One DMA descriptor: {be32 control, be32 length, be64 address} (fw_cfg.rst, "DMA interface"). */
  private runDma(descAddr: number): void {
    const desc = new Uint8Array(16);
    if (!this.dma.read(descAddr, desc)) return;
    const view = new DataView(desc.buffer);
    const control = view.getUint32(0, false);
    const length = view.getUint32(4, false);
    const address = Number(view.getBigUint64(8, false));
    let error = false;
    if (control & DMA_SELECT) this.select(control >>> 16);
    if (control & DMA_WRITE) {
      error = true; // no writable items
    } else if (control & (DMA_READ | DMA_SKIP)) {
      const item = this.items.get(this.state.selector) ?? new Uint8Array(0);
      const start = this.state.offset;
      if (control & DMA_READ) {
        // Past the end of the item the device supplies zeros.
        const buf = new Uint8Array(length);
        buf.set(item.subarray(Math.min(start, item.length), Math.min(start + length, item.length)));
        if (!this.dma.write(address, buf)) error = true;
      }
      this.state.offset = Math.min(item.length, start + length);
    }
    const done = new Uint8Array(4);
    new DataView(done.buffer).setUint32(0, error ? DMA_ERROR : 0, false);
    this.dma.write(descAddr, done);
  }

  saveState(): DeviceState {
    return FW_CFG_STATE.save(this.state);
  }

  loadState(s: DeviceState): void {
    this.state = FW_CFG_STATE.load(s, this.name);
  }
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}
