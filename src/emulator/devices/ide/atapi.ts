/**
 * The packet commands of an ATAPI CD-ROM drive (SCSI MMC as SFF-8020i/MMC-2 carry it):
 * the set SeaBIOS, isolinux and Linux's sr/cdrom drivers use. A command either returns
 * the data the drive sends (`data`, possibly empty) or fails with sense data, which
 * REQUEST SENSE then reports (MMC "CHECK CONDITION").
 *
 * Transfer mechanics (PIO byte counts, DMA, interrupt reason) belong to the channel
 * (ide-channel.ts); this file only decides what the drive answers.
 */
import { bool, int, record, u8, type TypeOf } from '../../bus/vmstate.ts';
import type { BlockDevice } from '../block-device.ts';

export const CD_SECTOR = 2048;

/** Sense keys and additional sense codes used here (SPC-2 / MMC-2 tables). */
export const SENSE = {
  NONE: 0x00,
  NOT_READY: 0x02,
  MEDIUM_ERROR: 0x03,
  ILLEGAL_REQUEST: 0x05,
  UNIT_ATTENTION: 0x06,
} as const;
const ASC_INVALID_COMMAND = 0x20;
const ASC_LBA_OUT_OF_RANGE = 0x21;
const ASC_INVALID_FIELD = 0x24;
const ASC_MEDIUM_NOT_PRESENT = 0x3a;
const ASC_MEDIUM_CHANGED = 0x28;

export interface PacketResult {
  /** Bytes the drive sends to the host (already cut to the allocation length). */
  data: Uint8Array;
  /** For reads of the medium: sectors to stream after `data` (LBA, count) instead of building them at once. */
  read?: { lba: number; count: number };
  /** Set when the command failed: sense key, additional sense code. */
  sense?: { key: number; asc: number };
}

/** The drive's sense data (SPC: sense key, additional sense code) and its pending unit attention. */
export const ATAPI_STATE = record({
  senseKey: int(0, 0x0f),
  asc: u8,
  /** A medium was inserted (or the drive reset) since the host last looked: report it once. */
  unitAttention: bool,
});
export type AtapiState = TypeOf<typeof ATAPI_STATE>;

export class AtapiCdrom {
  state: AtapiState = { senseKey: 0, asc: 0, unitAttention: false };

  constructor(public medium: BlockDevice | null) {}

  get sectors(): number {
    return this.medium ? Math.floor(this.medium.size / CD_SECTOR) : 0;
  }

  /** Execute the 12-byte command packet `p`. */
  execute(p: Uint8Array): PacketResult {
    const op = p[0];
    // Commands that work without a medium and do not clear a pending unit attention.
    if (op === 0x03) return this.requestSense(p[4]);
    if (op === 0x12) return this.ok(inquiry(), p[4]);
    if (op === 0x4a) return this.ok(eventStatus(this.medium !== null), (p[7] << 8) | p[8]);
    if (op === 0x46) return this.ok(configuration(this.medium !== null), (p[7] << 8) | p[8]);
    if (op === 0xbd) return this.ok(new Uint8Array(8), (p[8] << 8) | p[9]);
    if (this.state.unitAttention) {
      this.state.unitAttention = false;
      return this.fail(SENSE.UNIT_ATTENTION, ASC_MEDIUM_CHANGED);
    }
    switch (op) {
      case 0x00: // TEST UNIT READY
        return this.medium ? this.ok(new Uint8Array(0)) : this.fail(SENSE.NOT_READY, ASC_MEDIUM_NOT_PRESENT);
      case 0x1b: // START STOP UNIT
      case 0x1e: // PREVENT ALLOW MEDIUM REMOVAL
      case 0x2b: // SEEK(10)
      case 0x35: // SYNCHRONIZE CACHE
        return this.ok(new Uint8Array(0));
      case 0x25: { // READ CAPACITY: last LBA and the block size, big-endian
        if (!this.medium) return this.fail(SENSE.NOT_READY, ASC_MEDIUM_NOT_PRESENT);
        const d = new Uint8Array(8);
        const v = new DataView(d.buffer);
        v.setUint32(0, Math.max(0, this.sectors - 1));
        v.setUint32(4, CD_SECTOR);
        return this.ok(d);
      }
      case 0x28: // READ(10)
      case 0xa8: { // READ(12)
        if (!this.medium) return this.fail(SENSE.NOT_READY, ASC_MEDIUM_NOT_PRESENT);
        const lba = ((p[2] << 24) | (p[3] << 16) | (p[4] << 8) | p[5]) >>> 0;
        const count = op === 0x28 ? (p[7] << 8) | p[8] : ((p[6] << 24) | (p[7] << 16) | (p[8] << 8) | p[9]) >>> 0;
        if (lba + count > this.sectors) return this.fail(SENSE.ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
        this.state.senseKey = 0;
        this.state.asc = 0;
        return { data: new Uint8Array(0), read: { lba, count } };
      }
      case 0x43: // READ TOC/PMA/ATIP
        if (!this.medium) return this.fail(SENSE.NOT_READY, ASC_MEDIUM_NOT_PRESENT);
        return this.readToc(p);
      case 0x51: // READ DISC INFORMATION
        if (!this.medium) return this.fail(SENSE.NOT_READY, ASC_MEDIUM_NOT_PRESENT);
        return this.ok(discInformation(), (p[7] << 8) | p[8]);
      case 0x5a: // MODE SENSE(10)
        return this.modeSense(p);
      default:
        return this.fail(SENSE.ILLEGAL_REQUEST, ASC_INVALID_COMMAND);
    }
  }

  /** Medium changed (or the drive was reset): the next command reports UNIT ATTENTION. */
  mediumChanged(): void {
    this.state.unitAttention = true;
  }

  reset(): void {
    this.state = { senseKey: 0, asc: 0, unitAttention: false };
  }

  private ok(data: Uint8Array, allocation = data.length): PacketResult {
    this.state.senseKey = 0;
    this.state.asc = 0;
    return { data: data.subarray(0, Math.min(data.length, allocation)) };
  }

  private fail(key: number, asc: number): PacketResult {
    this.state.senseKey = key;
    this.state.asc = asc;
    return { data: new Uint8Array(0), sense: { key, asc } };
  }

  private requestSense(allocation: number): PacketResult {
    const d = new Uint8Array(18);
    d[0] = 0x70; // current error, fixed format
    d[2] = this.state.senseKey;
    d[7] = 10; // additional length
    d[12] = this.state.asc;
    this.state.senseKey = 0;
    this.state.asc = 0;
    return { data: d.subarray(0, Math.min(18, allocation)) };
  }

  /** READ TOC format 0 (tracks) and 1 (multi-session info), LBA or MSF addresses (MMC-2 §5.23). */
  private readToc(p: Uint8Array): PacketResult {
    const msf = (p[1] & 2) !== 0;
    const format = (p[9] >> 6) | (p[2] & 0x0f);
    const allocation = (p[7] << 8) | p[8];
    const addr = (lba: number) => {
      if (!msf) return [(lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff];
      const f = lba + 150;
      return [0, Math.floor(f / 4500), Math.floor(f / 75) % 60, f % 75];
    };
    if (format === 0) {
      const start = p[6];
      if (start > 1 && start !== 0xaa) return this.fail(SENSE.ILLEGAL_REQUEST, ASC_INVALID_FIELD);
      const entries: number[] = [];
      if (start <= 1) entries.push(0, 0x14, 1, 0, ...addr(0)); // track 1: data, copy allowed
      entries.push(0, 0x14, 0xaa, 0, ...addr(this.sectors)); // lead-out
      const d = new Uint8Array([0, 0, 1, 1, ...entries]);
      d[0] = (d.length - 2) >> 8;
      d[1] = (d.length - 2) & 0xff;
      return this.ok(d, allocation);
    }
    if (format === 1) {
      const d = new Uint8Array([0, 10, 1, 1, 0, 0x14, 1, 0, ...addr(0)]);
      return this.ok(d, allocation);
    }
    return this.fail(SENSE.ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  }

  /** MODE SENSE(10): the error recovery page and the CD capabilities page 2Ah (MMC-2 §5.5.10). */
  private modeSense(p: Uint8Array): PacketResult {
    const page = p[2] & 0x3f;
    const allocation = (p[7] << 8) | p[8];
    const pages: number[][] = [];
    if (page === 0x01 || page === 0x3f) pages.push([0x01, 0x06, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00]);
    if (page === 0x2a || page === 0x3f) {
      pages.push([0x2a, 0x12,
        0x3b, 0x00, // reads CD-R/RW, method 2
        0x71, 0x73, // audio play, multisession...; CD-DA commands, eject
        0x29, 0x23, // lock, eject, tray loader
        0x04, 0x00, // max speed (obsolete) 1024 KB/s
        0x00, 0x02, // volume levels
        0x00, 0x00, // buffer size
        0x04, 0x00, // current speed
        0x00, 0x00, 0x00, 0x00]);
    }
    if (pages.length === 0) return this.fail(SENSE.ILLEGAL_REQUEST, ASC_INVALID_FIELD);
    const body = pages.flat();
    const len = 8 + body.length;
    const d = new Uint8Array([(len - 2) >> 8, (len - 2) & 0xff, this.medium ? 0x01 : 0x70, 0, 0, 0, 0, 0, ...body]);
    return this.ok(d, allocation);
  }
}

function inquiry(): Uint8Array {
  const d = new Uint8Array(36);
  d[0] = 0x05; // CD/DVD device
  d[1] = 0x80; // removable
  d[2] = 0x00;
  d[3] = 0x21; // ATAPI, response format 1
  d[4] = 31; // additional length
  const text = (s: string, at: number, len: number) => { for (let i = 0; i < len; i++) d[at + i] = i < s.length ? s.charCodeAt(i) : 0x20; };
  text('TRAPDOOR', 8, 8);
  text('ATAPI CD-ROM', 16, 16);
  text('1.0', 32, 4);
  return d;
}

/** GET EVENT STATUS NOTIFICATION (polled): the media class, "no change" (MMC-2 §5.6). */
function eventStatus(present: boolean): Uint8Array {
  return new Uint8Array([0, 6, 0x04, 0x10, 0x00, present ? 0x02 : 0x00, 0, 0]);
}

/** GET CONFIGURATION: header with the current profile, CD-ROM (0x0008) when a disc is in. */
function configuration(present: boolean): Uint8Array {
  const d = new Uint8Array([0, 0, 0, 20, 0, 0, 0, present ? 0x08 : 0x00,
    0x00, 0x00, 0x03, 0x04, 0x00, 0x08, 0x01, 0x00]); // feature 0 (profile list): CD-ROM, current
  d[3] = d.length - 4;
  return d;
}

/** READ DISC INFORMATION: a finalized single-session CD-ROM (MMC-2 §5.19). */
function discInformation(): Uint8Array {
  const d = new Uint8Array(34);
  d[1] = 32;
  d[2] = 0x0e; // last session complete, disc finalized
  d[3] = 1; // first track
  d[4] = 1; // sessions
  d[5] = 1; // first track in last session
  d[6] = 1; // last track in last session
  d[8] = 0x00; // CD-DA or CD-ROM
  return d;
}
