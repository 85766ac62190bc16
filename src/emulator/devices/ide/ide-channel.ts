/**
 * One IDE channel (command block at 0x1F0/0x170, control block at 0x3F6/0x376) with a
 * master and a slave: an ATA disk, an ATAPI CD-ROM, or nothing. The ATA command set
 * as ATA/ATAPI-6 describes it (PIO data-in/data-out protocols, READ/WRITE MULTIPLE, DMA,
 * 48-bit LBA with the "previous content" HOB registers, CHS for old guests), the ATAPI
 * PACKET protocol (SFF-8020i §5: command packet, byte-count-limited DRQ blocks, the
 * interrupt reason in the sector count register), resets by SRST and DEVICE RESET, and
 * the bus-master DMA engine's side of a transfer (SFF-8038i; the registers live in
 * piix3-ide.ts).
 *
 * Each drive keeps its own copy of the task file: writes reach both, reads come from the
 * selected one (so a disk and a CD on one channel show their own signatures).
 */
import type { BlockDevice } from '../block-device.ts';
import type { DmaHandle, IrqLine } from '../../bus/device.ts';
import { AtapiCdrom, ATAPI_STATE, CD_SECTOR, type PacketResult } from './atapi.ts';
import { array, bool, bytes, int, nullable, oneOf, record, u32, u8, type TypeOf } from '../../bus/vmstate.ts';

export const SECTOR = 512;
/** Status register bits (ATA/ATAPI-6 §7.15). */
export const ST = { ERR: 0x01, DRQ: 0x08, DSC: 0x10, DF: 0x20, DRDY: 0x40, BSY: 0x80 } as const;
/** Error register: aborted command. */
const ERR_ABRT = 0x04;
/** Device control register (§7.9): interrupts off, software reset, read the HOB bytes. */
const CTL_NIEN = 0x02;
const CTL_SRST = 0x04;
const CTL_HOB = 0x80;
/** ATAPI interrupt reason (sector count register): CoD and IO. */
const IR_COD = 0x01;
const IR_IO = 0x02;
/** Sectors a READ/WRITE MULTIPLE block may hold (IDENTIFY word 47). */
const MAX_MULTIPLE = 16;
const BUFFER_BYTES = 128 * 1024;
/** An ATAPI command's reply is at most 64 KiB (a 16-bit allocation length). */
const ANSWER_BYTES = 0x10000;

export type DriveKind = 'disk' | 'cdrom';

/** Bus-master DMA state shared with the controller (SFF-8038i command/status/PRD). */
const BUS_MASTER = record({ command: u8, status: u8, prd: u32 });
export type BusMasterState = TypeOf<typeof BUS_MASTER>;
export const BM_CMD_START = 0x01;
export const BM_CMD_TO_MEMORY = 0x08;
export const BM_ST_ACTIVE = 0x01;
export const BM_ST_ERROR = 0x02;
export const BM_ST_INTERRUPT = 0x04;

/** One drive's copy of the command block registers (ATA/ATAPI-6 §7), with the 48-bit "previous content" (HOB) bytes. */
const TASK_FILE = record({
  error: u8,
  feature: u8,
  nsector: u8,
  sector: u8,
  lcyl: u8,
  hcyl: u8,
  hobFeature: u8,
  hobNsector: u8,
  hobSector: u8,
  hobLcyl: u8,
  hobHcyl: u8,
  select: u8,
  status: u8,
});
type TaskFile = TypeOf<typeof TASK_FILE>;

/** Sectors (or bytes) an address or a count may reach: 48-bit LBA. */
const LBA48 = int(0, 2 ** 48);

/** What the channel is in the middle of: plain data, so save/restore needs no closures. */
const TRANSFER = record({
  kind: oneOf('none', 'pio-in', 'pio-out', 'packet', 'dma-in', 'dma-out'),
  drive: int(0, 1),
  /** ATA: next sector and sectors left; ATAPI: next CD sector and bytes left to stream. */
  lba: LBA48,
  left: LBA48,
  /** ATA PIO: sectors per DRQ block. */
  block: int(0, 0x10000),
  /** Bytes of `buffer` in this DRQ block and how many the host has moved. */
  length: int(0, BUFFER_BYTES),
  pos: int(0, BUFFER_BYTES),
  /** Whether the command was a write (for writing `buffer` back at the end of a block). */
  write: bool,
  /** ATA PIO: data comes from the disk; ATAPI: sectors of the medium follow the answer. */
  stream: bool,
  /** Bytes of the sector at `lba` already moved (DMA and CD streams need not end on a sector). */
  partial: int(0, CD_SECTOR),
  /** ATAPI: bytes of `answer` (the command's own reply) not yet handed over, from `answerPos`. */
  answerLeft: int(0, ANSWER_BYTES),
  answerPos: int(0, ANSWER_BYTES),
});
type Transfer = TypeOf<typeof TRANSFER>;

/** What a drive holds beyond the task file: the guest-set CHS translation, the MULTIPLE block size, the CD's sense. */
const DRIVE = record({
  heads: u8,
  sectorsPerTrack: u8,
  multiple: u8,
  atapi: nullable(ATAPI_STATE),
});

/**
 * One channel: both task files, device control, the transfer in progress with its
 * buffers, the bus-master registers and the latched INTRQ. Drives are null where none is
 * attached; a state only loads into a channel with the same drives.
 */
export const IDE_CHANNEL_STATE = record({
  tf: array(TASK_FILE, 2),
  control: u8,
  xfer: TRANSFER,
  buffer: bytes(BUFFER_BYTES),
  answer: bytes(ANSWER_BYTES),
  bm: BUS_MASTER,
  intrq: bool,
  drives: array(nullable(DRIVE), 2),
});
export type IdeChannelState = TypeOf<typeof IDE_CHANNEL_STATE>;

const NO_TRANSFER: Transfer = { kind: 'none', drive: 0, lba: 0, left: 0, block: 0, length: 0, pos: 0, write: false, stream: false, partial: 0, answerLeft: 0, answerPos: 0 };

export interface IdeDrive {
  kind: DriveKind;
  disk: BlockDevice | null;
  cdrom: AtapiCdrom | null;
  /** CHS translation the guest set with INITIALIZE DEVICE PARAMETERS (defaults: the IDENTIFY geometry). */
  heads: number;
  sectorsPerTrack: number;
  multiple: number;
}

export class IdeChannel {
  readonly drives: (IdeDrive | null)[];
  tf: TaskFile[];
  control = 0;
  xfer: Transfer = { ...NO_TRANSFER };
  readonly buffer = new Uint8Array(BUFFER_BYTES);
  /** An ATAPI command's reply (INQUIRY data, TOC, sense...) until it has been sent. */
  readonly answer = new Uint8Array(ANSWER_BYTES);
  readonly bm: BusMasterState = { command: 0, status: 0, prd: 0 };
  /** The drive's INTRQ as latched for the controller (the host clears it by reading status). */
  intrq = false;
  irq: IrqLine | null = null;
  dma: DmaHandle | null = null;
  busMasterEnabled: () => boolean = () => true;
  log: (m: string) => void = () => {};

  constructor(readonly name: string, drives: [{ kind: DriveKind; medium: BlockDevice | null } | null, { kind: DriveKind; medium: BlockDevice | null } | null]) {
    this.drives = drives.map((d) => {
      if (!d) return null;
      const geometry = d.kind === 'disk' && d.medium ? chsGeometry(d.medium.size) : { heads: 0, sectorsPerTrack: 0 };
      return { kind: d.kind, disk: d.kind === 'disk' ? d.medium : null, cdrom: d.kind === 'cdrom' ? new AtapiCdrom(d.medium) : null, multiple: 0, ...geometry };
    });
    this.tf = [blankTaskFile(), blankTaskFile()];
    this.reset();
  }

  get selected(): number {
    return (this.tf[0].select >> 4) & 1;
  }

  private get drive(): IdeDrive | null {
    return this.drives[this.selected];
  }

  /** Power-on or PCI reset: both drives run their reset and show their signatures. */
  reset(): void {
    this.control = 0;
    this.xfer = { ...NO_TRANSFER };
    this.bm.command = 0;
    this.bm.status &= 0x60; // drive-DMA-capable bits survive
    for (const d of this.drives) {
      if (!d) continue;
      d.multiple = 0;
      d.cdrom?.reset();
    }
    this.softReset();
    this.setIntrq(false);
  }

  /** SRST or EXECUTE DEVICE DIAGNOSTIC: signatures (ATA/ATAPI-6 §9.12) and diagnostic code 1 in the error register. */
  private softReset(): void {
    for (let i = 0; i < 2; i++) {
      const t = this.tf[i];
      const d = this.drives[i];
      t.error = 0x01;
      t.nsector = 1;
      t.sector = 1;
      t.select = (t.select & 0x10) | 0xa0;
      if (d?.kind === 'cdrom') {
        t.lcyl = 0x14;
        t.hcyl = 0xeb;
        t.status = 0;
      } else {
        t.lcyl = 0;
        t.hcyl = 0;
        t.status = d ? ST.DRDY | ST.DSC : 0;
      }
    }
    this.xfer = { ...NO_TRANSFER };
  }

  private setIntrq(on: boolean): void {
    this.intrq = on;
    if (on) this.bm.status |= BM_ST_INTERRUPT;
    this.irq?.set(on && (this.control & CTL_NIEN) === 0);
  }

  private raise(): void {
    this.setIntrq(true);
  }

  // -------------------------------------------------------------------------------------
  // Command block registers (offset 0-7) and the control block (alternate status / device control)
  // -------------------------------------------------------------------------------------

  read(reg: number, size: 1 | 2 | 4): number {
    if (reg === 0) return this.dataRead(size);
    if (!this.drives[0] && !this.drives[1]) return 0; // nothing on this channel
    const t = this.tf[this.selected];
    const hob = (this.control & CTL_HOB) !== 0;
    switch (reg) {
      case 1: return hob ? t.hobFeature : t.error;
      case 2: return hob ? t.hobNsector : t.nsector;
      case 3: return hob ? t.hobSector : t.sector;
      case 4: return hob ? t.hobLcyl : t.lcyl;
      case 5: return hob ? t.hobHcyl : t.hcyl;
      case 6: return t.select;
      default:
        // Status: reading it acknowledges the interrupt (§7.15); a missing drive reads 0.
        if (!this.drive) return 0;
        this.setIntrq(false);
        return t.status;
    }
  }

  /** Alternate status (control block offset 0): the status without acknowledging anything. */
  altStatus(): number {
    if (!this.drive) return 0;
    return this.tf[this.selected].status;
  }

  write(reg: number, size: 1 | 2 | 4, v: number): void {
    if (reg === 0) {
      this.dataWrite(size, v);
      return;
    }
    v &= 0xff;
    // Writing any command block register clears HOB (§7.9) and shifts the old value to the HOB copy.
    this.control &= ~CTL_HOB;
    for (const t of this.tf) {
      switch (reg) {
        case 1: t.hobFeature = t.feature; t.feature = v; break;
        case 2: t.hobNsector = t.nsector; t.nsector = v; break;
        case 3: t.hobSector = t.sector; t.sector = v; break;
        case 4: t.hobLcyl = t.lcyl; t.lcyl = v; break;
        case 5: t.hobHcyl = t.hcyl; t.hcyl = v; break;
        case 6: t.select = v | 0xa0; break;
        default: break;
      }
    }
    if (reg === 7) this.command(v);
  }

  writeControl(v: number): void {
    const was = this.control;
    this.control = v;
    // SRST: reset while set, the drives come back when it is cleared (§9.2).
    if ((v & CTL_SRST) !== 0 && (was & CTL_SRST) === 0) {
      for (const t of this.tf) t.status = ST.BSY;
      this.xfer = { ...NO_TRANSFER };
    } else if ((v & CTL_SRST) === 0 && (was & CTL_SRST) !== 0) {
      this.softReset();
      for (const d of this.drives) d?.cdrom?.mediumChanged();
    }
    this.irq?.set(this.intrq && (v & CTL_NIEN) === 0);
  }

  // -------------------------------------------------------------------------------------
  // Commands
  // -------------------------------------------------------------------------------------

  private command(cmd: number): void {
    const d = this.drive;
    const sel = this.selected;
    const t = this.tf[sel];
    // A command to a missing drive is ignored; DEVICE RESET and DIAGNOSTIC work even while busy.
    if (!d) return;
    if (cmd === 0x90) {
      this.softReset();
      this.raise();
      return;
    }
    if ((t.status & ST.BSY) !== 0 && cmd !== 0x08) return;
    this.xfer = { ...NO_TRANSFER };
    if (d.kind === 'cdrom') {
      this.atapiCommand(d, cmd);
      return;
    }
    const disk = d.disk;
    switch (cmd) {
      case 0xec: // IDENTIFY DEVICE
        this.buffer.set(identifyDisk(d, this.name, sel), 0);
        this.startPioIn(1, 0, 1, false);
        return;
      case 0x20: case 0x21: case 0x24: // READ SECTOR(S) (+EXT)
      case 0xc4: case 0x29: { // READ MULTIPLE (+EXT)
        const multiple = cmd === 0xc4 || cmd === 0x29;
        if (multiple && d.multiple === 0) return this.abort();
        const { lba, count } = this.address(cmd === 0x24 || cmd === 0x29);
        if (!disk || lba + count > disk.size / SECTOR) return this.abort();
        this.startPioIn(count, lba, multiple ? d.multiple : 1, true);
        return;
      }
      case 0x30: case 0x31: case 0x34: // WRITE SECTOR(S) (+EXT)
      case 0xc5: case 0x39: { // WRITE MULTIPLE (+EXT)
        const multiple = cmd === 0xc5 || cmd === 0x39;
        if (multiple && d.multiple === 0) return this.abort();
        const { lba, count } = this.address(cmd === 0x34 || cmd === 0x39);
        if (!disk || disk.readOnly || lba + count > disk.size / SECTOR) return this.abort();
        const block = Math.min(count, multiple ? d.multiple : 1);
        this.xfer = { ...NO_TRANSFER, kind: 'pio-out', drive: sel, lba, left: count, block: multiple ? d.multiple : 1, length: block * SECTOR, write: true };
        t.status = ST.DRDY | ST.DSC | ST.DRQ; // data-out: the first block needs no interrupt
        return;
      }
      case 0xc8: case 0xc9: case 0x25: // READ DMA (+EXT)
      case 0xca: case 0xcb: case 0x35: { // WRITE DMA (+EXT)
        const write = cmd === 0xca || cmd === 0xcb || cmd === 0x35;
        const { lba, count } = this.address(cmd === 0x25 || cmd === 0x35);
        if (!disk || (write && disk.readOnly) || lba + count > disk.size / SECTOR) return this.abort();
        this.xfer = { ...NO_TRANSFER, kind: write ? 'dma-out' : 'dma-in', drive: sel, lba, left: count, write };
        t.status = ST.DRDY | ST.DSC | ST.DRQ;
        this.tryDma();
        return;
      }
      case 0x40: case 0x41: case 0x42: { // READ VERIFY SECTOR(S) (+EXT): nothing moves
        const { lba, count } = this.address(cmd === 0x42);
        if (!disk || lba + count > disk.size / SECTOR) return this.abort();
        this.complete();
        return;
      }
      case 0xc6: { // SET MULTIPLE MODE: a power of two up to the maximum, or 0 to disable
        const n = t.nsector;
        if (n > MAX_MULTIPLE || (n & (n - 1)) !== 0) return this.abort();
        d.multiple = n;
        this.complete();
        return;
      }
      case 0x91: // INITIALIZE DEVICE PARAMETERS: the CHS translation for CHS commands
        d.heads = (t.select & 0x0f) + 1;
        d.sectorsPerTrack = t.nsector || 1;
        this.complete();
        return;
      case 0xef: // SET FEATURES: transfer modes, write cache, lookahead: all accepted
        if (![0x02, 0x03, 0x05, 0x55, 0x66, 0x82, 0x85, 0xaa, 0xcc].includes(t.feature)) return this.abort();
        this.complete();
        return;
      case 0xf8: case 0x27: { // READ NATIVE MAX ADDRESS (+EXT)
        const max = disk ? disk.size / SECTOR - 1 : 0;
        this.setAddress(max, cmd === 0x27);
        this.complete();
        return;
      }
      case 0xe5: case 0x98: // CHECK POWER MODE: active
        for (const f of this.tf) f.nsector = 0xff;
        this.complete();
        return;
      case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0x94: case 0x95: case 0x96: case 0x97: // standby/idle
      case 0xe7: case 0xea: // FLUSH CACHE (+EXT): writes are already in the medium
      case 0x10: case 0x70: // RECALIBRATE, SEEK
        this.complete();
        return;
      case 0xa0: case 0xa1: // PACKET, IDENTIFY PACKET DEVICE: how BIOSes tell a disk from a CD; a disk aborts them
        this.abort();
        return;
      default:
        if ((cmd & 0xf0) === 0x10 || (cmd & 0xf0) === 0x70) return this.complete(); // the old recalibrate/seek ranges
        this.log(`${this.name}: ATA command ${hex(cmd)} is not supported: aborted`);
        this.abort();
    }
  }

  /** The sectors of a read/write command: 28-bit LBA, 48-bit LBA from the HOB bytes, or CHS. */
  private address(lba48: boolean): { lba: number; count: number } {
    const t = this.tf[this.selected];
    const d = this.drive!;
    if (lba48) {
      const lba = (t.hobHcyl * 2 ** 40) + (t.hobLcyl * 2 ** 32) + (t.hobSector * 2 ** 24) + ((t.hcyl << 16) | (t.lcyl << 8) | t.sector);
      const count = (t.hobNsector << 8) | t.nsector;
      return { lba, count: count === 0 ? 65536 : count };
    }
    const count = t.nsector === 0 ? 256 : t.nsector;
    if (t.select & 0x40) return { lba: ((t.select & 0x0f) << 24) | (t.hcyl << 16) | (t.lcyl << 8) | t.sector, count };
    const cyl = (t.hcyl << 8) | t.lcyl;
    const head = t.select & 0x0f;
    if (t.sector === 0 || d.sectorsPerTrack === 0) return { lba: Number.MAX_SAFE_INTEGER, count };
    return { lba: (cyl * d.heads + head) * d.sectorsPerTrack + t.sector - 1, count };
  }

  /** After a command: the address registers name the last sector reached (§ "command completion"). */
  private setAddress(lba: number, lba48: boolean): void {
    for (const t of this.tf) {
      t.sector = lba & 0xff;
      t.lcyl = (lba >>> 8) & 0xff;
      t.hcyl = (lba >>> 16) & 0xff;
      if (lba48) {
        const high = Math.floor(lba / 2 ** 24);
        t.hobSector = high & 0xff;
        t.hobLcyl = (high >>> 8) & 0xff;
        t.hobHcyl = (high >>> 16) & 0xff;
      } else {
        t.select = (t.select & 0xf0) | ((lba >>> 24) & 0x0f);
      }
    }
  }

  private complete(): void {
    const t = this.tf[this.selected];
    t.status = ST.DRDY | ST.DSC;
    t.error = 0;
    this.xfer = { ...NO_TRANSFER };
    this.raise();
  }

  private abort(): void {
    const t = this.tf[this.selected];
    t.status = ST.DRDY | ST.DSC | ST.ERR;
    t.error = ERR_ABRT;
    this.xfer = { ...NO_TRANSFER };
    this.raise();
  }

  // -------------------------------------------------------------------------------------
  // PIO
  // -------------------------------------------------------------------------------------

  /** PIO data-in of `count` sectors from `lba` (or one prepared block when !fromDisk). */
  private startPioIn(count: number, lba: number, block: number, fromDisk: boolean): void {
    this.xfer = { ...NO_TRANSFER, kind: 'pio-in', drive: this.selected, lba, left: count, block, stream: fromDisk };
    if (!fromDisk) {
      this.xfer.length = SECTOR;
      this.xfer.left = 0;
      this.dataReady();
      return;
    }
    this.loadReadBlock();
  }

  private loadReadBlock(): void {
    const x = this.xfer;
    const d = this.drives[x.drive]!;
    const n = Math.min(x.left, x.block);
    d.disk!.read(x.lba * SECTOR, this.buffer.subarray(0, n * SECTOR));
    x.length = n * SECTOR;
    x.pos = 0;
    x.lba += n;
    x.left -= n;
    this.dataReady();
  }

  private dataReady(): void {
    const t = this.tf[this.xfer.drive];
    t.status = ST.DRDY | ST.DSC | ST.DRQ;
    this.raise();
  }

  private dataRead(size: 1 | 2 | 4): number {
    const x = this.xfer;
    if ((x.kind !== 'pio-in' && x.kind !== 'packet') || x.pos >= x.length || x.write) return size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
    const b = this.buffer;
    let v = 0;
    for (let i = 0; i < size; i++) v |= (x.pos + i < x.length ? b[x.pos + i] : 0) << (8 * i);
    x.pos += size;
    if (x.pos >= x.length) this.blockDone();
    return size === 4 ? v | 0 : v;
  }

  private dataWrite(size: 1 | 2 | 4, v: number): void {
    const x = this.xfer;
    if (!x.write || x.pos >= x.length) return;
    for (let i = 0; i < size && x.pos + i < x.length; i++) this.buffer[x.pos + i] = (v >>> (8 * i)) & 0xff;
    x.pos += size;
    if (x.pos >= x.length) this.blockDone();
  }

  /** The host moved a whole DRQ block. */
  private blockDone(): void {
    const x = this.xfer;
    if (x.kind === 'pio-in') {
      if (x.left > 0) this.loadReadBlock();
      else this.finishData(x.stream ? x.lba - 1 : -1);
      return;
    }
    if (x.kind === 'pio-out') {
      const d = this.drives[x.drive]!;
      d.disk!.write(x.lba * SECTOR, this.buffer.subarray(0, x.length));
      const n = x.length / SECTOR;
      x.lba += n;
      x.left -= n;
      if (x.left > 0) {
        x.length = Math.min(x.left, x.block) * SECTOR;
        x.pos = 0;
        this.dataReady();
      } else {
        this.finishData(x.lba - 1);
      }
      return;
    }
    if (x.kind === 'packet') {
      if (x.write) this.packetReceived();
      else this.atapiNextChunk();
    }
  }

  private finishData(lastLba: number): void {
    if (lastLba >= 0) this.setAddress(lastLba, lastLba > 0x0fffffff);
    this.complete();
  }

  // -------------------------------------------------------------------------------------
  // ATAPI
  // -------------------------------------------------------------------------------------

  private atapiCommand(d: IdeDrive, cmd: number): void {
    const sel = this.selected;
    const t = this.tf[sel];
    switch (cmd) {
      case 0xa1: // IDENTIFY PACKET DEVICE
        this.buffer.set(identifyCdrom(this.name, sel), 0);
        this.startPioIn(1, 0, 1, false);
        return;
      case 0xa0: // PACKET: receive 12 bytes, then run them
        this.xfer = { ...NO_TRANSFER, kind: 'packet', drive: sel, length: 12, write: true };
        for (const f of this.tf) f.nsector = IR_COD;
        t.status = ST.DRDY | ST.DRQ;
        return;
      case 0x08: // DEVICE RESET
        this.softReset();
        d.cdrom!.mediumChanged();
        return;
      case 0xef: // SET FEATURES
        this.complete();
        return;
      case 0xec: // IDENTIFY DEVICE on a packet device: aborted, with the signature (§8.15)
        this.abort();
        for (const f of this.tf) {
          f.lcyl = 0x14;
          f.hcyl = 0xeb;
        }
        return;
      default:
        this.abort();
    }
  }

  private packetReceived(): void {
    const x = this.xfer;
    const d = this.drives[x.drive]!;
    const t = this.tf[x.drive];
    const dma = (t.feature & 1) !== 0;
    const r: PacketResult = d.cdrom!.execute(this.buffer.slice(0, 12));
    if (r.sense) {
      t.status = ST.DRDY | ST.ERR;
      t.error = (r.sense.key << 4) | ERR_ABRT;
      for (const f of this.tf) f.nsector = IR_COD | IR_IO;
      this.xfer = { ...NO_TRANSFER };
      this.raise();
      return;
    }
    const total = r.data.length + (r.read ? r.read.count * CD_SECTOR : 0);
    if (total === 0) {
      this.packetDone();
      return;
    }
    this.answer.set(r.data.subarray(0, this.answer.length), 0);
    x.write = false;
    x.stream = r.read !== undefined;
    x.lba = r.read?.lba ?? 0;
    x.partial = 0;
    // `left` counts bytes still to hand over: the answer first, then any medium sectors.
    x.left = total;
    x.answerLeft = r.data.length;
    x.answerPos = 0;
    if (dma) {
      x.kind = 'dma-in';
      t.status = ST.DRDY | ST.DRQ;
      this.tryDma();
      return;
    }
    this.atapiNextChunk();
  }

  /** PIO: the next byte-count-limited DRQ block, or the end of the command. */
  private atapiNextChunk(): void {
    const x = this.xfer;
    if (x.left === 0) {
      this.packetDone();
      return;
    }
    const t = this.tf[x.drive];
    let limit = (t.lcyl | (t.hcyl << 8)) & 0xfffe;
    if (limit === 0) limit = 0xfffe;
    const n = Math.min(x.left, limit, BUFFER_BYTES);
    this.fill(n);
    x.length = n;
    x.pos = 0;
    x.kind = 'packet';
    for (const f of this.tf) {
      f.lcyl = n & 0xff;
      f.hcyl = n >> 8;
      f.nsector = IR_IO;
    }
    t.status = ST.DRDY | ST.DRQ;
    this.raise();
  }

  /** Put the next `n` bytes of the reply into the buffer: the answer first, then medium sectors. */
  private fill(n: number): void {
    const x = this.xfer;
    const take = Math.min(x.answerLeft, n);
    if (take > 0) {
      this.buffer.set(this.answer.subarray(x.answerPos, x.answerPos + take), 0);
      x.answerPos += take;
      x.answerLeft -= take;
    }
    if (take < n) this.readCd(this.buffer.subarray(take, n));
    x.left -= n;
  }

  /** Stream CD sectors into `dst`, carrying a partial sector over to the next call. */
  private readCd(dst: Uint8Array): void {
    const x = this.xfer;
    const medium = this.drives[x.drive]!.cdrom!.medium;
    if (!medium) {
      dst.fill(0);
      return;
    }
    medium.read(x.lba * CD_SECTOR + x.partial, dst);
    const sent = x.partial + dst.length;
    x.lba += Math.floor(sent / CD_SECTOR);
    x.partial = sent % CD_SECTOR;
  }

  private packetDone(): void {
    const t = this.tf[this.xfer.drive];
    t.status = ST.DRDY;
    t.error = 0;
    for (const f of this.tf) f.nsector = IR_COD | IR_IO;
    this.xfer = { ...NO_TRANSFER };
    this.raise();
  }

  // -------------------------------------------------------------------------------------
  // Bus-master DMA (SFF-8038i §2): the PRD table is walked when the engine is started and
  // the drive has a DMA command; the whole transfer happens at once.
  // -------------------------------------------------------------------------------------

  /** The controller started or stopped the engine, or a DMA command arrived. */
  tryDma(): void {
    const x = this.xfer;
    if ((x.kind !== 'dma-in' && x.kind !== 'dma-out') || (this.bm.command & BM_CMD_START) === 0) return;
    this.bm.status |= BM_ST_ACTIVE;
    const ok = this.runPrds(x.kind === 'dma-in');
    this.bm.status &= ~BM_ST_ACTIVE;
    if (!ok) this.bm.status |= BM_ST_ERROR;
    const d = this.drives[x.drive]!;
    if (d.kind === 'cdrom') {
      this.packetDone();
    } else {
      this.setAddress(x.lba - 1, x.lba - 1 > 0x0fffffff);
      if (ok) this.complete();
      else this.abort();
    }
  }

  /** Move the data through the PRDs; false on a DMA fault or a table shorter than the data. */
  private runPrds(toMemory: boolean): boolean {
    const dma = this.dma;
    if (!dma || !this.busMasterEnabled()) return false;
    const x = this.xfer;
    const d = this.drives[x.drive]!;
    const entry = new Uint8Array(8);
    let prd = this.bm.prd & ~3;
    for (let n = 0; n < 8192; n++) {
      if (!dma.read(prd, entry)) return false;
      const addr = (entry[0] | (entry[1] << 8) | (entry[2] << 16) | (entry[3] << 24)) >>> 0;
      const count = (entry[4] | (entry[5] << 8)) || 0x10000;
      const last = (entry[7] & 0x80) !== 0;
      const remaining = d.kind === 'cdrom' ? x.left : x.left * SECTOR - x.partial;
      const bytes = Math.min(count, remaining);
      if (bytes > 0) {
        const chunk = new Uint8Array(bytes);
        if (d.kind === 'cdrom') {
          this.fill(bytes);
          chunk.set(this.buffer.subarray(0, bytes));
          if (!dma.write(addr, chunk)) return false;
        } else if (toMemory) {
          // Whole sectors per PRD are the rule; a PRD ending mid-sector is handled byte-exactly.
          d.disk!.read(x.lba * SECTOR + x.partial, chunk);
          if (!dma.write(addr, chunk)) return false;
          this.advanceDisk(bytes);
        } else {
          if (!dma.read(addr, chunk)) return false;
          d.disk!.write(x.lba * SECTOR + x.partial, chunk);
          this.advanceDisk(bytes);
        }
      }
      const done = x.left === 0;
      if (last || done) return done;
      prd = (prd + 8) >>> 0;
    }
    return false;
  }

  private advanceDisk(bytes: number): void {
    const x = this.xfer;
    const sent = x.partial + bytes;
    x.lba += Math.floor(sent / SECTOR);
    x.left -= Math.floor(sent / SECTOR);
    x.partial = sent % SECTOR;
  }

  // -------------------------------------------------------------------------------------
  // State
  // -------------------------------------------------------------------------------------

  saveState(): IdeChannelState {
    return IDE_CHANNEL_STATE.copy({
      tf: this.tf, control: this.control, xfer: this.xfer, buffer: this.buffer, answer: this.answer, bm: this.bm, intrq: this.intrq,
      drives: this.drives.map((d) => (d ? { heads: d.heads, sectorsPerTrack: d.sectorsPerTrack, multiple: d.multiple, atapi: d.cdrom ? d.cdrom.state : null } : null)),
    });
  }

  /** Why `s` (already checked against IDE_CHANNEL_STATE) cannot load into this channel, or null. */
  mismatch(s: IdeChannelState): string | null {
    for (let i = 0; i < 2; i++) {
      const d = this.drives[i];
      const sd = s.drives[i];
      const want = d ? d.kind : 'no drive';
      const got = sd ? (sd.atapi ? 'cdrom' : 'disk') : 'no drive';
      if (want !== got) return `${this.name} drive ${i} is ${want === 'no drive' ? 'absent' : `a ${want}`} but the state holds ${got === 'no drive' ? 'none' : `a ${got}`}`;
    }
    return null;
  }

  /** Load a state checked against IDE_CHANNEL_STATE and mismatch(). */
  loadState(s: IdeChannelState): void {
    const st = IDE_CHANNEL_STATE.copy(s);
    this.tf = st.tf;
    this.control = st.control;
    this.xfer = st.xfer;
    this.buffer.set(st.buffer);
    this.answer.set(st.answer);
    Object.assign(this.bm, st.bm);
    st.drives.forEach((sd, i) => {
      const d = this.drives[i];
      if (!d || !sd) return;
      d.heads = sd.heads;
      d.sectorsPerTrack = sd.sectorsPerTrack;
      d.multiple = sd.multiple;
      if (d.cdrom && sd.atapi) d.cdrom.state = sd.atapi;
    });
    // INTRQ drives the line again; the BMIDE interrupt bit stays as saved (the guest may have
    // cleared it while INTRQ is still pending: setIntrq would set it once more).
    this.intrq = st.intrq;
    this.irq?.set(st.intrq && (this.control & CTL_NIEN) === 0);
  }
}

function blankTaskFile(): TaskFile {
  return { error: 0, feature: 0, nsector: 0, sector: 0, lcyl: 0, hcyl: 0, hobFeature: 0, hobNsector: 0, hobSector: 0, hobLcyl: 0, hobHcyl: 0, select: 0xa0, status: 0 };
}

/** The CHS geometry a BIOS of the LBA era reports for a disk: 16 heads, 63 sectors, cylinders up to 16383. */
export function chsGeometry(bytes: number): { heads: number; sectorsPerTrack: number; cylinders: number } {
  const sectors = Math.floor(bytes / SECTOR);
  const heads = 16;
  const sectorsPerTrack = 63;
  const cylinders = Math.max(1, Math.min(16383, Math.floor(sectors / (heads * sectorsPerTrack))));
  return { heads, sectorsPerTrack, cylinders };
}

/** ATA strings: space-padded, two characters a word with the first in the high byte. */
function putString(words: Uint16Array, at: number, chars: number, s: string): void {
  const padded = s.padEnd(chars, ' ');
  for (let i = 0; i < chars / 2; i++) words[at + i] = (padded.charCodeAt(2 * i) << 8) | padded.charCodeAt(2 * i + 1);
}

/** IDENTIFY DEVICE data (ATA/ATAPI-6 §8.15 table 27). */
function identifyDisk(d: IdeDrive, channel: string, index: number): Uint8Array {
  const w = new Uint16Array(256);
  const sectors = Math.floor((d.disk?.size ?? 0) / SECTOR);
  const g = chsGeometry(d.disk?.size ?? 0);
  w[0] = 0x0040; // fixed disk
  w[1] = g.cylinders;
  w[3] = g.heads;
  w[6] = g.sectorsPerTrack;
  putString(w, 10, 20, `TRAPDOOR-${channel}${index}`);
  putString(w, 23, 8, '1.0');
  putString(w, 27, 40, 'TRAPDOOR HARDDISK');
  w[47] = 0x8000 | MAX_MULTIPLE;
  w[49] = 0x0300; // LBA and DMA supported
  w[50] = 0x4000;
  w[51] = 0x0200;
  w[53] = 0x0007; // words 54-58, 64-70 and 88 are valid
  w[54] = g.cylinders;
  w[55] = d.heads;
  w[56] = d.sectorsPerTrack;
  const chsSectors = g.cylinders * d.heads * d.sectorsPerTrack;
  w[57] = chsSectors & 0xffff;
  w[58] = chsSectors >>> 16;
  w[59] = d.multiple ? 0x0100 | d.multiple : 0;
  const lba28 = Math.min(sectors, 0x0fffffff);
  w[60] = lba28 & 0xffff;
  w[61] = lba28 >>> 16;
  w[63] = 0x0007; // multiword DMA 0-2
  w[64] = 0x0003; // PIO 3-4
  w[65] = w[66] = w[67] = w[68] = 120;
  w[80] = 0x00f0; // ATA/ATAPI-4 to -7
  w[81] = 0x0016;
  w[82] = 0x4000;
  w[83] = 0x7400; // LBA48, FLUSH CACHE, FLUSH CACHE EXT
  w[84] = 0x4000;
  w[85] = 0x4000;
  w[86] = 0x3400;
  w[87] = 0x4000;
  w[88] = 0x203f; // UDMA 0-5 supported, mode 5 selected
  w[93] = 0x6001 | (index === 0 ? 0x0008 : 0); // hardware reset result, 80-wire cable
  for (let i = 0; i < 4; i++) w[100 + i] = Math.floor(sectors / 2 ** (16 * i)) & 0xffff;
  return new Uint8Array(w.buffer);
}

/** IDENTIFY PACKET DEVICE data (ATA/ATAPI-6 §8.16 table 29): a CD-ROM with 12-byte packets. */
function identifyCdrom(channel: string, index: number): Uint8Array {
  const w = new Uint16Array(256);
  w[0] = 0x85c0; // ATAPI, CD-ROM, removable, accelerated DRQ, 12-byte packets
  putString(w, 10, 20, `TRAPDOOR-${channel}${index}`);
  putString(w, 23, 8, '1.0');
  putString(w, 27, 40, 'TRAPDOOR ATAPI CD-ROM');
  w[49] = 0x0300;
  w[53] = 0x0007;
  w[63] = 0x0007;
  w[64] = 0x0003;
  w[65] = w[66] = w[67] = w[68] = 120;
  w[71] = 30;
  w[72] = 30;
  w[80] = 0x001e;
  w[88] = 0x203f;
  return new Uint8Array(w.buffer);
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(2, '0')}`;
}
