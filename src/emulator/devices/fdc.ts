/**
 * Intel 82077AA floppy disk controller at 0x3F0-0x3F5 and 0x3F7 (0x3F6 is the IDE
 * control port), IRQ 6, DMA channel 2, with one 3.5" drive A: (82077AA datasheet, and
 * the AT-mode register behaviour SeaBIOS and Linux's floppy driver rely on).
 *
 * Commands run in three phases (datasheet §8): the host writes the command bytes to the
 * FIFO (MSR: RQM, DIO=0), the controller executes (data through DMA, or the FIFO in
 * non-DMA mode), then the host reads the result bytes (RQM, DIO=1). Seeks and
 * recalibrates end with an interrupt the host acknowledges with SENSE INTERRUPT STATUS.
 * Mechanical delays are not modelled: every phase completes at once.
 */
import { array, bool, int, nullable, oneOf, record, u16, u8, vmstate, type VmStateOf } from '../bus/vmstate.ts';
import type { Device, DeviceContext, DeviceState, IrqLine } from '../bus/device.ts';
import type { BlockDevice } from './block-device.ts';
import type { IsaDmaChannel } from './dma8237.ts';

/** Main status register bits. */
const MSR_RQM = 0x80;
const MSR_DIO = 0x40;
const MSR_NDMA = 0x20;
const MSR_CB = 0x10;
/** Digital output register bits. */
const DOR_NRESET = 0x04;
const DOR_DMA_IRQ = 0x08;
/** ST0 interrupt codes and flags. */
const ST0_ABNORMAL = 0x40;
const ST0_INVALID = 0x80;
const ST0_READY_CHANGE = 0xc0;
const ST0_SEEK_END = 0x20;
/** ST1: end of cylinder, not writable, missing address mark. */
const ST1_EN = 0x80;
const ST1_NW = 0x02;
const ST1_MA = 0x01;
/** ST3: ready, track 0, two-sided, write protected. */
const ST3_WP = 0x40;
const ST3_RY = 0x20;
const ST3_T0 = 0x10;
const ST3_TS = 0x08;

/** Command bytes each command takes (by the low five bits of the first byte). */
const COMMAND_LENGTH: Record<number, number> = {
  0x02: 9, // READ TRACK
  0x03: 3, // SPECIFY
  0x04: 2, // SENSE DRIVE STATUS
  0x05: 9, // WRITE DATA
  0x06: 9, // READ DATA
  0x07: 2, // RECALIBRATE
  0x08: 1, // SENSE INTERRUPT STATUS
  0x09: 9, // WRITE DELETED DATA
  0x0a: 2, // READ ID
  0x0c: 9, // READ DELETED DATA
  0x0d: 6, // FORMAT TRACK
  0x0e: 1, // DUMPREG
  0x0f: 3, // SEEK (relative seek too)
  0x10: 1, // VERSION
  0x12: 2, // PERPENDICULAR MODE
  0x13: 4, // CONFIGURE
  0x14: 1, // LOCK / UNLOCK
  0x18: 1, // PART ID
};

/** Standard PC floppy formats by image size: cylinders, heads, sectors per track. */
const FORMATS: [number, number, number, number][] = [
  [163840, 40, 1, 8], [184320, 40, 1, 9], [327680, 40, 2, 8], [368640, 40, 2, 9], [737280, 80, 2, 9],
  [1228800, 80, 2, 15], [1474560, 80, 2, 18], [1720320, 80, 2, 21], [2949120, 80, 2, 36],
];

export interface FloppyGeometry {
  cylinders: number;
  heads: number;
  sectors: number;
}

/** The geometry of a floppy image, or null when its size is no PC format. */
export function floppyGeometry(size: number): FloppyGeometry | null {
  const f = FORMATS.find(([bytes]) => bytes === size);
  return f ? { cylinders: f[1], heads: f[2], sectors: f[3] } : null;
}

/** The 82077AA's registers (datasheet §2: DOR, TDR, DSR, MSR, FIFO) and the command state machine. */
export const FDC_STATE = vmstate('fdc82077', 1, {
  dor: u8,
  tdr: u8,
  dsr: u8,
  msr: u8,
  /** Bytes of the command being received, or of the result being read (at most 16: the FIFO). */
  fifo: array(u8, 0, 16),
  /** Result phase: the bytes left to read. Command phase: the command so far. */
  phase: oneOf('command', 'execution', 'result'),
  /** Cylinder each drive's head is on (present cylinder number). */
  pcn: array(u8, 4),
  /** A seek/recalibrate/reset interrupt waiting for SENSE INTERRUPT STATUS: its ST0, or -1. */
  pendingSt0: array(int(-1, 0xff), 4),
  /** The drive's disk-change line (DIR bit 7): set by a medium change, cleared by a step. */
  diskChanged: bool,
  /** SPECIFY's ND bit: execution phase through the FIFO instead of DMA. */
  nonDma: bool,
  config: u8,
  precomp: u8,
  lock: bool,
  perpendicular: u8,
  srt: u8,
  hlt: u8,
  /**
   * Non-DMA execution: the data the host still has to read or write (a track of the largest
   * format at most), and the command with its sector count appended.
   */
  /** The INT output as last driven (before the DOR's DMA/IRQ gate): a load drives IRQ6 again from it. */
  int: bool,
  pio: nullable(record({ data: array(u8, 0, 2 * 36 * 512), write: bool, cmd: array(u16, 0, 16) })),
});
export type FdcState = VmStateOf<typeof FDC_STATE>;

export class Fdc82077 implements Device {
  readonly name = 'fdc';
  state: FdcState = initialState();
  private irq: IrqLine | null = null;
  private log: (m: string) => void = () => {};
  private readonly geometry: FloppyGeometry | null;

  constructor(private readonly medium: BlockDevice | null, private readonly dma: IsaDmaChannel) {
    this.geometry = medium ? floppyGeometry(medium.size) : null;
  }

  attach(ctx: DeviceContext): void {
    this.irq = ctx.irq(6);
    this.log = (m) => ctx.log(m);
    if (this.medium && !this.geometry) this.log(`floppy image of ${this.medium.size} bytes is no PC format: the drive reads it as empty`);
    ctx.mapPorts(0x3f0, 6, { read: (o) => this.read(o), write: (o, _s, v) => this.write(o, v & 0xff) });
    ctx.mapPorts(0x3f7, 1, { read: () => this.read(7), write: (_o, _s, v) => this.write(7, v & 0xff) });
  }

  reset(): void {
    this.state = initialState();
    this.state.diskChanged = true;
    this.irq?.set(false);
  }

  private setIrq(on: boolean): void {
    this.state.int = on;
    this.irq?.set(on && (this.state.dor & DOR_DMA_IRQ) !== 0);
  }

  private get hasMedium(): boolean {
    return this.medium !== null && this.geometry !== null;
  }

  // -------------------------------------------------------------------------------------
  // Registers
  // -------------------------------------------------------------------------------------

  private read(reg: number): number {
    const s = this.state;
    switch (reg) {
      case 0: // SRA (PS/2 mode): interrupt pending in bit 7
        return s.pendingSt0.some((x) => x >= 0) ? 0x80 : 0x00;
      case 1: // SRB
        return 0xc0 | (s.dor & 0x03);
      case 2: return s.dor;
      case 3: return s.tdr;
      case 4: return s.msr;
      case 5: return this.readFifo();
      case 7: // DIR: disk change
        return s.diskChanged ? 0x80 : 0x00;
      default: return 0xff;
    }
  }

  private write(reg: number, v: number): void {
    const s = this.state;
    switch (reg) {
      case 2: { // DOR
        const wasReset = (s.dor & DOR_NRESET) === 0;
        s.dor = v;
        if ((v & DOR_NRESET) === 0) this.enterReset();
        else if (wasReset) this.leaveReset();
        break;
      }
      case 3: s.tdr = v & 0x03; break;
      case 4: // DSR: bit 7 is a self-clearing software reset
        s.dsr = v & 0x7f;
        if (v & 0x80) {
          this.enterReset();
          this.leaveReset();
        }
        break;
      case 5: this.writeFifo(v); break;
      case 7: s.dsr = (s.dsr & ~3) | (v & 3); break; // CCR: data rate
      default: break;
    }
  }

  private enterReset(): void {
    const s = this.state;
    s.fifo = [];
    s.phase = 'command';
    s.pio = null;
    s.msr = 0;
    this.setIrq(false);
  }

  /** After a reset the controller reports a ready change for each of the four drives (datasheet §5.1). */
  private leaveReset(): void {
    const s = this.state;
    s.msr = MSR_RQM;
    s.pendingSt0 = [ST0_READY_CHANGE | 0, ST0_READY_CHANGE | 1, ST0_READY_CHANGE | 2, ST0_READY_CHANGE | 3];
    this.setIrq(true);
  }

  private readFifo(): number {
    const s = this.state;
    if (s.phase === 'execution' && s.pio && !s.pio.write) {
      const v = s.pio.data.shift() ?? 0;
      if (s.pio.data.length === 0) this.finishPio();
      return v;
    }
    if (s.phase !== 'result' || s.fifo.length === 0) return 0xff;
    const v = s.fifo.shift()!;
    if (s.fifo.length === 0) {
      s.phase = 'command';
      s.msr = MSR_RQM;
      this.setIrq(false);
    }
    return v;
  }

  private writeFifo(v: number): void {
    const s = this.state;
    if (s.phase === 'execution' && s.pio && s.pio.write) {
      s.pio.data.push(v);
      this.pioWriteProgress();
      return;
    }
    if (s.phase === 'result') {
      // Writing during the result phase is a protocol error: start over with this byte.
      s.fifo = [];
      s.phase = 'command';
    }
    s.fifo.push(v);
    s.msr = MSR_RQM | MSR_CB;
    const op = s.fifo[0] & 0x1f;
    const length = COMMAND_LENGTH[op] ?? 1;
    if (s.fifo.length >= length) {
      const cmd = s.fifo;
      s.fifo = [];
      this.execute(cmd);
    }
  }

  private result(bytes: number[], irq: boolean): void {
    const s = this.state;
    s.fifo = bytes;
    s.phase = 'result';
    s.msr = MSR_RQM | MSR_DIO | MSR_CB;
    if (irq) this.setIrq(true);
  }

  private done(irq: boolean): void {
    const s = this.state;
    s.phase = 'command';
    s.fifo = [];
    s.msr = MSR_RQM;
    if (irq) this.setIrq(true);
  }

  // -------------------------------------------------------------------------------------
  // Commands
  // -------------------------------------------------------------------------------------

  private execute(cmd: number[]): void {
    const s = this.state;
    const op = cmd[0] & 0x1f;
    const drive = (cmd[1] ?? 0) & 3;
    switch (op) {
      case 0x03: // SPECIFY
        s.srt = cmd[1];
        s.hlt = cmd[2];
        s.nonDma = (cmd[2] & 1) !== 0;
        this.done(false);
        return;
      case 0x04: { // SENSE DRIVE STATUS
        const head = (cmd[1] >> 2) & 1;
        let st3 = drive | (head << 2) | ST3_RY | ST3_TS;
        if (s.pcn[drive] === 0) st3 |= ST3_T0;
        if (this.medium?.readOnly) st3 |= ST3_WP;
        this.result([st3], false);
        return;
      }
      case 0x07: // RECALIBRATE
        this.seekTo(drive, 0);
        return;
      case 0x0f: { // SEEK, or RELATIVE SEEK when bit 7 is set (bit 6 = direction in)
        let target = cmd[2];
        if (cmd[0] & 0x80) target = cmd[0] & 0x40 ? s.pcn[drive] + cmd[2] : s.pcn[drive] - cmd[2];
        this.seekTo(drive, Math.max(0, Math.min(255, target)), (cmd[1] >> 2) & 1);
        return;
      }
      case 0x08: { // SENSE INTERRUPT STATUS: one pending drive at a time
        const i = s.pendingSt0.findIndex((x) => x >= 0);
        if (i < 0) {
          this.result([ST0_INVALID], false);
          return;
        }
        const st0 = s.pendingSt0[i];
        s.pendingSt0[i] = -1;
        this.setIrq(false);
        this.result([st0, s.pcn[i]], false);
        return;
      }
      case 0x06: case 0x0c: case 0x02: // READ DATA, READ DELETED DATA, READ TRACK
        this.readWrite(cmd, false);
        return;
      case 0x05: case 0x09: // WRITE DATA, WRITE DELETED DATA
        this.readWrite(cmd, true);
        return;
      case 0x0a: { // READ ID: the next sector header under the head
        const head = (cmd[1] >> 2) & 1;
        if (!this.hasMedium) {
          this.result([ST0_ABNORMAL | drive | (head << 2), ST1_MA, 0, s.pcn[drive], head, 1, 2], true);
          return;
        }
        this.result([drive | (head << 2), 0, 0, s.pcn[drive], head, 1, 2], true);
        return;
      }
      case 0x0d: // FORMAT TRACK
        this.formatTrack(cmd);
        return;
      case 0x0e: // DUMPREG
        this.result([s.pcn[0], s.pcn[1], s.pcn[2], s.pcn[3], s.srt, s.hlt, 18, (s.lock ? 0x80 : 0) | s.perpendicular, s.config, s.precomp], false);
        return;
      case 0x10: // VERSION: 82077AA
        this.result([0x90], false);
        return;
      case 0x12: // PERPENDICULAR MODE
        s.perpendicular = cmd[1] & 0x7f;
        this.done(false);
        return;
      case 0x13: // CONFIGURE
        s.config = cmd[2];
        s.precomp = cmd[3];
        this.done(false);
        return;
      case 0x14: // LOCK (bit 7 of the command byte) / UNLOCK
        s.lock = (cmd[0] & 0x80) !== 0;
        this.result([s.lock ? 0x10 : 0x00], false);
        return;
      case 0x18: // PART ID: 82077AA stepping
        this.result([0x41], false);
        return;
      default:
        this.log(`floppy: command ${cmd[0].toString(16)} is not supported`);
        this.result([ST0_INVALID], false);
    }
  }

  private seekTo(drive: number, cylinder: number, head = 0): void {
    const s = this.state;
    // Stepping with a disk in clears the disk-change line (82077AA "DIR").
    if (this.hasMedium && cylinder !== s.pcn[drive]) s.diskChanged = false;
    s.pcn[drive] = cylinder;
    s.pendingSt0[drive] = ST0_SEEK_END | drive | (head << 2);
    this.done(true);
  }

  /** READ/WRITE DATA: C/H/R/N, EOT; multi-track with MT (bit 7 of the command byte). */
  private readWrite(cmd: number[], write: boolean): void {
    const s = this.state;
    const drive = cmd[1] & 3;
    let head = (cmd[1] >> 2) & 1;
    const c = cmd[2];
    let r = cmd[4];
    const n = cmd[5];
    const eot = cmd[6];
    const mt = (cmd[0] & 0x80) !== 0;
    const st0Base = drive | (head << 2);
    const fail = (st1: number, st2 = 0) => this.result([ST0_ABNORMAL | st0Base, st1, st2, c, head, r, n], true);
    const g = this.geometry;
    if (!this.medium || !g) return fail(ST1_MA);
    if (write && this.medium.readOnly) return fail(ST1_NW);
    const bytes = 128 << Math.min(n, 7);
    if (bytes !== 512) return fail(ST1_MA);
    s.pcn[drive] = c; // implied seek: SeaBIOS and Linux seek first, old DOS code relies on it
    const sectors: { c: number; h: number; r: number }[] = [];
    // Walk the sectors from R to EOT (then head 1 with MT); the DMA count decides where to stop.
    for (let guard = 0; guard < 2 * 256; guard++) {
      if (c >= g.cylinders || head >= g.heads || r < 1 || r > g.sectors) break;
      sectors.push({ c, h: head, r });
      if (r < eot) r++;
      else if (mt && head === 0 && g.heads > 1) { head = 1; r = 1; }
      else break;
    }
    if (sectors.length === 0) return fail(ST1_MA);
    if (s.nonDma) {
      this.startPio(cmd, sectors, write);
      return;
    }
    const buf = new Uint8Array(512);
    let last = sectors[0];
    let tc = false;
    let moved = 0;
    for (const sec of sectors) {
      const lba = (sec.c * g.heads + sec.h) * g.sectors + sec.r - 1;
      if (write) {
        const t = this.dma.transfer(buf, false);
        if (t.moved < 512) break;
        this.medium.write(lba * 512, buf);
        tc = t.terminalCount;
      } else {
        this.medium.read(lba * 512, buf);
        const t = this.dma.transfer(buf, true);
        if (t.moved < 512) break;
        tc = t.terminalCount;
      }
      moved++;
      last = sec;
      if (tc) break;
    }
    if (moved === 0) return fail(0x10); // overrun: the DMA channel was not ready
    this.finishRw(drive, last, eot, mt, n, !tc && moved === sectors.length && last.r === eot && !(mt && last.h === 0));
  }

  /** Result of a read/write: the sector after the last one moved (datasheet table 8-5). */
  private finishRw(drive: number, last: { c: number; h: number; r: number }, eot: number, mt: boolean, n: number, endOfCylinder: boolean): void {
    let { c, h, r } = last;
    if (r < eot) r++;
    else {
      r = 1;
      if (mt && h === 0) h = 1;
      else { c++; h = mt ? 0 : h; }
    }
    // Reaching EOT without the DMA's terminal count is "end of cylinder" (ST1 EN), as drivers expect.
    const st0 = (endOfCylinder ? ST0_ABNORMAL : 0) | drive | (last.h << 2);
    this.result([st0, endOfCylinder ? ST1_EN : 0, 0, c, h, r, n], true);
  }

  /** Non-DMA execution phase: the data goes through the FIFO (MSR NDMA), one interrupt to start. */
  private startPio(cmd: number[], sectors: { c: number; h: number; r: number }[], write: boolean): void {
    const s = this.state;
    const g = this.geometry!;
    const data: number[] = [];
    if (!write) {
      const buf = new Uint8Array(512);
      for (const sec of sectors) {
        this.medium!.read(((sec.c * g.heads + sec.h) * g.sectors + sec.r - 1) * 512, buf);
        for (const b of buf) data.push(b);
      }
    }
    s.pio = { data, write, cmd: [...cmd, sectors.length] };
    s.phase = 'execution';
    s.msr = MSR_RQM | MSR_NDMA | MSR_CB | (write ? 0 : MSR_DIO);
    this.setIrq(true);
  }

  private pioWriteProgress(): void {
    const s = this.state;
    const pio = s.pio!;
    const count = pio.cmd[pio.cmd.length - 1];
    if (pio.data.length < count * 512) return;
    const g = this.geometry!;
    const cmd = pio.cmd;
    const start = (cmd[2] * g.heads + ((cmd[1] >> 2) & 1)) * g.sectors + cmd[4] - 1;
    this.medium!.write(start * 512, Uint8Array.from(pio.data));
    this.finishPio();
  }

  private finishPio(): void {
    const s = this.state;
    const cmd = s.pio!.cmd;
    const count = cmd[cmd.length - 1];
    s.pio = null;
    const g = this.geometry!;
    let c = cmd[2], h = (cmd[1] >> 2) & 1, r = cmd[4];
    for (let i = 1; i < count; i++) {
      if (r < g.sectors) r++;
      else { r = 1; if (h === 0 && (cmd[0] & 0x80)) h = 1; else c++; }
    }
    this.finishRw(cmd[1] & 3, { c, h, r }, cmd[6], (cmd[0] & 0x80) !== 0, cmd[5], false);
  }

  /** FORMAT TRACK: the host sends C, H, R, N per sector by DMA; each sector is filled with D. */
  private formatTrack(cmd: number[]): void {
    const s = this.state;
    const drive = cmd[1] & 3;
    const head = (cmd[1] >> 2) & 1;
    const sectorsPerTrack = cmd[3];
    const fill = cmd[5];
    const g = this.geometry;
    const c = s.pcn[drive];
    if (!this.medium || !g) return this.result([ST0_ABNORMAL | drive | (head << 2), ST1_MA, 0, c, head, 1, cmd[2]], true);
    if (this.medium.readOnly) return this.result([ST0_ABNORMAL | drive | (head << 2), ST1_NW, 0, c, head, 1, cmd[2]], true);
    const ids = new Uint8Array(4);
    const data = new Uint8Array(512).fill(fill);
    for (let i = 0; i < sectorsPerTrack; i++) {
      if (this.dma.transfer(ids, false).moved < 4) break;
      const [ic, ih, ir] = ids;
      if (ic < g.cylinders && ih < g.heads && ir >= 1 && ir <= g.sectors) this.medium.write(((ic * g.heads + ih) * g.sectors + ir - 1) * 512, data);
    }
    this.result([drive | (head << 2), 0, 0, c, head, 1, cmd[2]], true);
  }

  saveState(): DeviceState {
    return FDC_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    const s = FDC_STATE.load(saved, this.name);
    this.state = s;
    this.setIrq(s.int);
  }
}

function initialState(): FdcState {
  return {
    dor: 0, tdr: 0, dsr: 0, msr: 0, fifo: [], phase: 'command', pcn: [0, 0, 0, 0], pendingSt0: [-1, -1, -1, -1],
    diskChanged: true, nonDma: false, config: 0, precomp: 0, lock: false, perpendicular: 0, srt: 0, hlt: 0, int: false, pio: null,
  };
}
