/**
 * NE2000: a National DP8390D "NIC core" behind Novell's NE2000 board logic, as the
 * Realtek RTL8029AS on PCI (10ec:8029, QEMU's ne2k_pci) or as the ISA NE2000 at
 * 0x300/IRQ 9 (QEMU's ne2k_isa). One register model serves both; only how the 32
 * ports are reached (a PCI I/O BAR or fixed ISA ports) and which line carries the
 * interrupt (PCI INTA# or an ISA IRQ) differ.
 *
 * The board's 32 ports (NE2000 convention, which Linux's ne.c/ne2k-pci.c and iPXE's
 * ns8390.c rely on):
 *   0x00-0x0F  DP8390 registers, paged by CR.PS1-0 (DP8390D "Register Address Map")
 *   0x10-0x17  data port: the remote DMA's window onto the NIC's local memory
 *   0x18-0x1F  reset port: a read resets the chip (ISR.RST reads 1 afterwards)
 *
 * The NIC's local memory, reached only through remote DMA (NE2000 layout):
 *   0x0000-0x001F  station address PROM, each byte doubled for word-wide reads;
 *                  bytes 28-31 are 0x57 ('W'), which NE2000 drivers take as "16-bit card"
 *   0x4000-0xBFFF  32 KiB of buffer RAM (transmit buffers and the receive ring)
 *   elsewhere      no memory: reads 0xFF, writes are ignored
 *
 * Frames on the network side are Ethernet II without FCS (net/ethernet.ts). The
 * chip appends the FCS it "received" in the ring and counts it in the header's byte
 * count, as the DP8390 does: Linux (8390.c ei_receive) and iPXE (ns8390_poll) both
 * subtract 4 from the count and reject results outside 60..1518 / 60..1514.
 *
 * Receive queue and overflow (a choice, written down as the task asks): a frame
 * that passes the address filter but does not fit in the ring between CURR and BNRY
 * waits in a bounded queue (RX_QUEUE_FRAMES frames or RX_QUEUE_BYTES bytes) in front
 * of the ring, in arrival order, and moves into the ring a moment after the guest
 * makes room (scheduleDrain and unreadFrames say how this meets Linux's receive
 * loop). Waiting does NOT raise ISR.OVW: Linux answers OVW with a full stop/restart
 * of the chip (ei_rx_overrun, with a 10 ms delay) and iPXE likewise, so signalling
 * it on every full ring would cost throughput and lose frames. Only when the queue
 * itself overflows is a frame
 * refused: then it is counted (dropRingFull), the missed-packet tally CNTR2 counts
 * it, RSR.MPA is set and ISR.OVW is raised, which is the datasheet's meaning of OVW
 * ("receive buffer resources exhausted, a packet was lost").
 *
 * Bad guest values never throw and never loop: every length and pointer that comes
 * from a register is bounded before use, and each refusal is counted in `counters`
 * and reported through ctx.log (rate-limited by the bus). The QEMU bugs this model
 * is tested against are named in ne2000.test.ts (CVE-2007-5729, CVE-2015-5278,
 * CVE-2015-5279, CVE-2015-8743, CVE-2016-2841, CVE-2018-10839).
 *
 * Not modelled: collisions, CRC errors and frame alignment errors (the virtual wire
 * has none, so CNTR0/CNTR1 stay 0, and RCR.SEP/AR have nothing to act on: a frame
 * shorter than 60 bytes is padded, as the sending NIC pads it on a real wire), the
 * FIFO thresholds, DCR.BOS (byte order; every PC driver uses little-endian), DCR.LS
 * (loopback follows TCR.LB1-0 alone: Linux and iPXE select it there with LS = 1),
 * the 93C46 EEPROM behind 9346CR (the bits are stored, EEDO reads 0), and the time a
 * transmission takes (it completes at once).
 */
import type { AccessSize, Device, DeviceContext, DeviceState, IrqLine, TimerId } from '../bus/device.ts';
import { array, bool, bytes, count, record, u16, u8, vmstate, type TypeOf, type VmStateOf } from '../bus/vmstate.ts';
import type { PciContext, PciDevice, PciFunctionSpec } from '../pci/pci-function.ts';
import { ETH_HEADER, ETH_MIN_FRAME, type FrameEndpoint } from '../net/ethernet.ts';

// ---------------------------------------------------------------------------------------
// Register bits (DP8390D register descriptions; names as the datasheet spells them)
// ---------------------------------------------------------------------------------------

/** CR: STP stop, STA start, TXP transmit packet, RD2-0 remote DMA command, PS1-0 page. */
export const CR_STP = 0x01;
export const CR_STA = 0x02;
export const CR_TXP = 0x04;
const CR_RD_SHIFT = 3;
const RD_READ = 1;
const RD_WRITE = 2;
const RD_SEND = 3;

/** ISR: PRX received, PTX transmitted, RXE, TXE errors, OVW overwrite warning, CNT counter MSB, RDC remote DMA complete, RST reset status. */
export const ISR_PRX = 0x01;
export const ISR_PTX = 0x02;
export const ISR_RXE = 0x04;
export const ISR_TXE = 0x08;
export const ISR_OVW = 0x10;
export const ISR_CNT = 0x20;
export const ISR_RDC = 0x40;
export const ISR_RST = 0x80;

/** RSR: PRX received intact, MPA missed packet, PHY multicast/broadcast address, DIS receiver disabled (monitor). */
export const RSR_PRX = 0x01;
export const RSR_MPA = 0x10;
export const RSR_PHY = 0x20;
export const RSR_DIS = 0x40;

/** TSR: PTX transmitted, ABT aborted. */
export const TSR_PTX = 0x01;
export const TSR_ABT = 0x08;

/** RCR: SEP save errored packets, AR accept runts, AB broadcast, AM multicast by hash, PRO promiscuous, MON monitor. */
export const RCR_SEP = 0x01;
export const RCR_AR = 0x02;
export const RCR_AB = 0x04;
export const RCR_AM = 0x08;
export const RCR_PRO = 0x10;
export const RCR_MON = 0x20;

/** TCR: LB1-0 loopback mode (bits 2:1). */
const TCR_LB_MASK = 0x06;
/** DCR: WTS word transfer select. */
export const DCR_WTS = 0x01;

// ---------------------------------------------------------------------------------------
// The board
// ---------------------------------------------------------------------------------------

/** Local memory: the PROM at 0, 32 KiB of buffer RAM at 0x4000 (pages 0x40-0xBF). */
export const NE2000_MEM_START = 0x4000;
export const NE2000_MEM_SIZE = 0x8000;
export const NE2000_MEM_END = NE2000_MEM_START + NE2000_MEM_SIZE;
const PAGE_FIRST = NE2000_MEM_START >> 8;
const PAGE_END = NE2000_MEM_END >> 8;
/**
 * The longest frame the model carries, without FCS: 1514 plus an 802.1Q tag. Linux's
 * 8390 driver accepts up to 1518 from the ring; longer frames from the backend are
 * malformed (QEMU's CVE-2018-10839 was such a frame overflowing a size).
 */
export const NE2000_MAX_FRAME = 1518;
/**
 * The receive queue in front of the ring: at most this many frames, or bytes. Enough for
 * what the user network's TCP keeps in flight (its send buffer, 256 KiB: about 180 full
 * frames): with 64 frames, debian-686's slower receive path overflowed the queue on every
 * window the router sent and TCP spent its time recovering.
 */
export const RX_QUEUE_FRAMES = 256;
export const RX_QUEUE_BYTES = 512 * 1024;
/** Tally counters stop at 192 instead of wrapping (DP8390D "Tally Counters"). */
const TALLY_MAX = 192;

/** RTL8029AS page 0 0x0A/0x0B ("8029ID0/1": 'P', 'C') and page 3 0x0E/0x0F (8029ASID0/1). */
const RTL8029_ID0 = 0x50;
const RTL8029_ID1 = 0x43;
const RTL8029_ASID0 = 0x29;
const RTL8029_ASID1 = 0x80;
/** 9346CR EEM1-0 = 11: the CONFIG registers may be written (RTL8029AS, page 3). */
const EEM_CONFIG_WRITE = 0xc0;

/** What the device counts; all are monotone (never reset except by loadState). */
const NE2000_COUNTERS = record({
  /** Frames placed in the receive ring (including looped-back ones), and their bytes as received (before padding). */
  rxFrames: count,
  rxBytes: count,
  /** Frames sent (given to onTransmit, or looped back in TCR loopback) and their bytes. */
  txFrames: count,
  txBytes: count,
  /** Refused because the receive queue in front of a full ring overflowed (ISR.OVW raised). */
  dropRingFull: count,
  /** Refused because the receiver was off: CR.STP, never started, RCR.MON, or still queued at a chip reset. */
  dropStopped: count,
  /** Refused by the RCR address filter (not ours, broadcast without AB, multicast without AM or hash bit). */
  dropFiltered: count,
  /** Refused because the frame itself is bad: shorter than an Ethernet header, or longer than NE2000_MAX_FRAME. */
  dropMalformed: count,
  /** Refused because the guest's ring registers are unusable (PSTART >= PSTOP, a pointer outside the ring or the memory). */
  dropBadRing: count,
  /** Transmits refused: TBCR of 0 or above NE2000_MAX_FRAME, or a buffer outside the memory (TSR.ABT, ISR.TXE). */
  txErrors: count,
});
export type Ne2000Counters = TypeOf<typeof NE2000_COUNTERS>;

/** Everything the chip holds, as plain data (DESIGN.md seam 2). */
export const NE2000_STATE = vmstate('ne2000', 1, {
  /** Page 0/1/2 registers of the DP8390D, named as the datasheet names them. */
  cr: u8,
  pstart: u8,
  pstop: u8,
  bnry: u8,
  tpsr: u8,
  tsr: u8,
  tbcr: u16,
  ncr: u8,
  isr: u8,
  rsar: u16,
  rbcr: u16,
  rcr: u8,
  rsr: u8,
  tcr: u8,
  dcr: u8,
  imr: u8,
  cntr0: u8,
  cntr1: u8,
  cntr2: u8,
  par: bytes(6),
  curr: u8,
  mar: bytes(8),
  /** Current local DMA address (page 0 0x01-0x02), remote and local next packet pointers, address counter (page 2). */
  clda: u16,
  rnpp: u8,
  lnpp: u8,
  ac: u16,
  /** A "send packet" remote DMA (CR.RD = 011) is running: BNRY follows RNPP when it completes. */
  sendPacket: bool,
  /** RTL8029AS page 3. */
  cr9346: u8,
  bpage: u8,
  config0: u8,
  config2: u8,
  config3: u8,
  hltclk: u8,
  /** The station address PROM (32 bytes) and the 32 KiB buffer RAM. */
  prom: bytes(32),
  mem: bytes(NE2000_MEM_SIZE),
  /** Frames waiting for room in the ring, oldest first (each a whole Ethernet frame without FCS). */
  rxQueue: array(bytes(ETH_HEADER, NE2000_MAX_FRAME), 0, RX_QUEUE_FRAMES),
  counters: NE2000_COUNTERS,
});
export type Ne2000State = VmStateOf<typeof NE2000_STATE>;

export interface Ne2000Options {
  /** Statistics/log name (default "ne2k"). */
  name?: string;
  /** Station address (6 bytes): in the PROM, and PAR0-5 at power-on. */
  mac: Uint8Array;
  /** 'pci' (RTL8029, default) or 'isa' (NE2000 at fixed ports). */
  model?: 'pci' | 'isa';
  /** ISA model only: base port (default 0x300) and IRQ (default 9). */
  isa?: { port: number; irq: number };
  /**
   * Expansion ROM behind the PCI ROM BAR, e.g. Debian's pxe-ne2k_pci.rom: its PCIR IDs are
   * set to 10ec:8029 and its checksum fixed here (patchOptionRom); throws if it is not a PCI ROM.
   */
  rom?: Uint8Array;
}

function newCounters(): Ne2000Counters {
  return {
    rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0,
    dropRingFull: 0, dropStopped: 0, dropFiltered: 0, dropMalformed: 0, dropBadRing: 0, txErrors: 0,
  };
}

/** The NE2000 PROM: MAC bytes doubled (word-wide layout), 0x57 0x57 0x57 0x57 at 28-31. */
function buildProm(mac: Uint8Array): Uint8Array {
  const prom = new Uint8Array(32);
  for (let i = 0; i < 6; i++) prom[2 * i] = prom[2 * i + 1] = mac[i];
  prom.fill(0x57, 28, 32);
  return prom;
}

function powerOnState(mac: Uint8Array): Ne2000State {
  return {
    cr: CR_STP | (4 << CR_RD_SHIFT), pstart: 0, pstop: 0, bnry: 0, tpsr: 0, tsr: 0, tbcr: 0, ncr: 0,
    isr: ISR_RST, rsar: 0, rbcr: 0, rcr: 0, rsr: 0, tcr: 0, dcr: 0x04, imr: 0,
    cntr0: 0, cntr1: 0, cntr2: 0, par: mac.slice(0, 6), curr: 0, mar: new Uint8Array(8),
    clda: 0, rnpp: 0, lnpp: 0, ac: 0, sendPacket: false,
    // RTL8029AS page 3: 10BASE-T media (CONFIG2 PL1-0 = 01), full duplex (CONFIG3 FUDUP), as QEMU reports.
    cr9346: 0, bpage: 0, config0: 0, config2: 0x40, config3: 0x40, hltclk: 0x52,
    prom: buildProm(mac), mem: new Uint8Array(NE2000_MEM_SIZE), rxQueue: [], counters: newCounters(),
  };
}

// ---------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3 §3.2.9): the FCS the chip stores after a frame, and the multicast hash
// ---------------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The Ethernet FCS of `data[0..length)` (reflected CRC-32, inverted), as sent LSB first. */
export function ethernetFcs(data: Uint8Array, length = data.length): number {
  let c = 0xffffffff;
  for (let i = 0; i < length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The DP8390's multicast hash (DP8390D "Multicast Address Filtering"): the CRC of the
 * destination address as the CRC generator computes it while the bits arrive (bit 0 of
 * each byte first, register not reflected, no final inversion); its 6 most significant
 * bits pick one of the 64 MAR bits: bits 5-3 the register MAR0-7, bits 2-0 the bit.
 */
export function multicastHashIndex(frame: Uint8Array, offset = 0): number {
  let crc = 0xffffffff;
  for (let i = 0; i < 6; i++) {
    let b = frame[offset + i];
    for (let k = 0; k < 8; k++, b >>= 1) {
      const carry = ((crc >>> 31) ^ (b & 1)) !== 0;
      crc = (crc << 1) >>> 0;
      if (carry) crc = (crc ^ 0x04c11db7) >>> 0;
    }
  }
  return crc >>> 26;
}

// ---------------------------------------------------------------------------------------
// Option ROM
// ---------------------------------------------------------------------------------------

/**
 * A copy of a PCI expansion ROM with its PCI Data Structure's vendor and device IDs set
 * (PCI Firmware Spec 3.0 §5.1: the "PCIR" structure, found through the 16-bit pointer at
 * offset 0x18) and the image's last byte changed so that its declared length (byte 2, in
 * 512-byte units) sums to 0 mod 256. Debian's pxe-ne2k_pci.rom carries 0000:0000 there;
 * QEMU patches the IDs in the same way before exposing the ROM.
 */
export function patchOptionRom(rom: Uint8Array, vendorId: number, deviceId: number): Uint8Array {
  if (rom.length < 0x1a || rom[0] !== 0x55 || rom[1] !== 0xaa) throw new Error('option ROM: no 55 AA signature');
  const length = rom[2] * 512;
  if (length === 0 || length > rom.length) throw new Error(`option ROM: declared length ${length} bytes, file has ${rom.length}`);
  const pcir = rom[0x18] | (rom[0x19] << 8);
  if (pcir + 8 > length || rom[pcir] !== 0x50 || rom[pcir + 1] !== 0x43 || rom[pcir + 2] !== 0x49 || rom[pcir + 3] !== 0x52) {
    throw new Error(`option ROM: no PCIR structure at 0x${pcir.toString(16)}`);
  }
  const out = rom.slice();
  out[pcir + 4] = vendorId & 0xff;
  out[pcir + 5] = (vendorId >> 8) & 0xff;
  out[pcir + 6] = deviceId & 0xff;
  out[pcir + 7] = (deviceId >> 8) & 0xff;
  let sum = 0;
  for (let i = 0; i < length - 1; i++) sum += out[i];
  out[length - 1] = (0x100 - (sum & 0xff)) & 0xff;
  return out;
}

// ---------------------------------------------------------------------------------------
// The device
// ---------------------------------------------------------------------------------------

export class Ne2000 implements PciDevice, Device, FrameEndpoint {
  readonly name: string;
  readonly model: 'pci' | 'isa';
  readonly mac: Uint8Array;
  readonly isa: { port: number; irq: number };
  /** The RTL8029's PCI function; the integrator plugs only the 'pci' model into the PCI bus. */
  readonly pci: PciFunctionSpec;
  state: Ne2000State;
  /**
   * Called synchronously on CR.TXP with a fresh copy of the TBCR bytes at TPSR (the
   * guest may reuse its buffer at once: iPXE does). Unplugged until the integrator sets it.
   */
  onTransmit: (frame: Uint8Array) => void = () => {};

  private ctx: DeviceContext | undefined;
  private line: IrqLine | undefined;
  private lineLevel = false;
  private rxQueueBytes = 0;
  /** The timer that moves waiting frames into room the guest freed (scheduleDrain); 0 when none. */
  private drainTimer: TimerId = 0;

  constructor(options: Ne2000Options) {
    if (!(options.mac instanceof Uint8Array) || options.mac.length !== 6) throw new Error('ne2000: mac must be 6 bytes');
    this.name = options.name ?? 'ne2k';
    this.model = options.model ?? 'pci';
    this.mac = options.mac.slice();
    this.isa = { port: options.isa?.port ?? 0x300, irq: options.isa?.irq ?? 9 };
    this.state = powerOnState(this.mac);
    const block = { read: (o: number, s: AccessSize) => this.read(o, s), write: (o: number, s: AccessSize, v: number) => this.write(o, s, v) };
    this.pci = {
      vendorId: 0x10ec,
      deviceId: 0x8029,
      revision: 0x00,
      classCode: 0x020000, // network controller, Ethernet
      interruptPin: 1, // INTA#
      bars: [{ index: 0, kind: 'io', size: 256, block }],
      // SeaBIOS runs a ROM only if its PCIR IDs are the function's: patch them in (a no-op on a ROM that has them).
      ...(options.rom ? { rom: patchOptionRom(options.rom, 0x10ec, 0x8029) } : {}),
    };
  }

  // -------------------------------------------------------------------------------------
  // Device
  // -------------------------------------------------------------------------------------

  attach(ctx: DeviceContext): void {
    this.ctx = ctx;
    if (this.model === 'isa') {
      ctx.mapPorts(this.isa.port, 0x20, { read: (o, s) => this.read(o, s), write: (o, s, v) => this.write(o, s, v) });
      this.line = ctx.irq(this.isa.irq);
      this.driveIrq(true);
    }
  }

  attachPci(ctx: PciContext): void {
    this.line = ctx.intx;
    this.driveIrq(true);
  }

  /** The RESET pin: power-on values, PAR from the MAC again, the queue emptied (counted). */
  reset(): void {
    const counters = this.state.counters;
    counters.dropStopped += this.state.rxQueue.length;
    const mem = this.state.mem;
    this.state = powerOnState(this.mac);
    this.state.mem = mem; // RAM keeps its contents across a reset
    this.state.counters = counters;
    this.rxQueueBytes = 0;
    this.driveIrq(true);
  }

  get counters(): Readonly<Ne2000Counters> {
    return { ...this.state.counters };
  }

  /** Frames waiting in front of the ring. */
  get queuedFrames(): number {
    return this.state.rxQueue.length;
  }

  private log(message: string): void {
    this.ctx?.log(`${this.name}: ${message}`);
  }

  // -------------------------------------------------------------------------------------
  // Port dispatch
  // -------------------------------------------------------------------------------------

  private read(offset: number, size: AccessSize): number {
    if (offset >= 0x10 && offset < 0x18) return this.dataRead(size);
    if (offset >= 0x18 && offset < 0x20) {
      // NE2000 reset port: a read resets the DP8390 (Linux ne2k-pci: outb(inb(NE_RESET), NE_RESET)).
      this.chipReset();
      return 0;
    }
    if (offset < 0x10) {
      // The DP8390 is an 8-bit part: a wider access reaches consecutive registers, as the ISA bus splits it.
      let v = 0;
      for (let i = 0; i < size; i++) v |= (offset + i < 0x10 ? this.readRegister(offset + i) : 0xff) << (8 * i);
      return size === 4 ? v | 0 : v;
    }
    return size === 4 ? -1 : (1 << (8 * size)) - 1; // 0x20-0xFF of the BAR decode nothing
  }

  private write(offset: number, size: AccessSize, value: number): void {
    if (offset >= 0x10 && offset < 0x18) {
      this.dataWrite(size, value);
      return;
    }
    if (offset < 0x10) {
      for (let i = 0; i < size && offset + i < 0x10; i++) this.writeRegister(offset + i, (value >>> (8 * i)) & 0xff);
    }
    // Writes to the reset port end the reset pulse on some boards; the DP8390 is already reset by the read.
  }

  // -------------------------------------------------------------------------------------
  // Registers (DP8390D "Register Address Map"; RTL8029AS page 3)
  // -------------------------------------------------------------------------------------

  private page(): number {
    return this.state.cr >> 6;
  }

  /** What a read of register `reg` (0x00-0x0F) on the current page returns, without side effects. */
  private registerValue(reg: number, page = this.page()): number {
    const s = this.state;
    if (reg === 0) return s.cr;
    switch (page) {
      case 0:
        switch (reg) {
          case 0x01: return s.clda & 0xff;
          case 0x02: return s.clda >> 8;
          case 0x03: return s.bnry;
          case 0x04: return s.tsr;
          case 0x05: return s.ncr;
          case 0x06: return 0; // FIFO: the last byte through the FIFO in loopback; nothing to show
          case 0x07: return s.isr;
          case 0x08: return s.rsar & 0xff; // CRDA0
          case 0x09: return s.rsar >> 8; // CRDA1
          case 0x0a: return RTL8029_ID0;
          case 0x0b: return RTL8029_ID1;
          // RSR.DIS shows the receiver disabled by monitor mode for as long as RCR.MON is set.
          case 0x0c: return s.rsr | ((s.rcr & RCR_MON) !== 0 ? RSR_DIS : 0);
          case 0x0d: return s.cntr0;
          case 0x0e: return s.cntr1;
          default: return s.cntr2;
        }
      case 1:
        if (reg <= 0x06) return s.par[reg - 1];
        if (reg === 0x07) return s.curr;
        return s.mar[reg - 0x08];
      case 2:
        switch (reg) {
          case 0x01: return s.pstart;
          case 0x02: return s.pstop;
          case 0x03: return s.rnpp;
          case 0x04: return s.tpsr;
          case 0x05: return s.lnpp;
          case 0x06: return s.ac >> 8;
          case 0x07: return s.ac & 0xff;
          case 0x0c: return s.rcr;
          case 0x0d: return s.tcr;
          case 0x0e: return s.dcr;
          case 0x0f: return s.imr;
          default: return 0xff; // reserved
        }
      default:
        switch (reg) {
          case 0x01: return s.cr9346 & 0xfe; // EEDO: no 93C46 modelled
          case 0x02: return s.bpage;
          case 0x03: return s.config0;
          case 0x04: return 0; // CONFIG1 is the RTL8019's (ISA IRQ/port select)
          case 0x05: return s.config2;
          case 0x06: return s.config3;
          case 0x0e: return RTL8029_ASID0;
          case 0x0f: return RTL8029_ASID1;
          default: return 0;
        }
    }
  }

  private readRegister(reg: number): number {
    const v = this.registerValue(reg);
    // The tally counters clear when read (DP8390D "Tally Counters"); Linux's probe reads CNTR0 twice and wants 0.
    if (reg >= 0x0d && this.page() === 0) {
      if (reg === 0x0d) this.state.cntr0 = 0;
      else if (reg === 0x0e) this.state.cntr1 = 0;
      else this.state.cntr2 = 0;
    }
    return v;
  }

  private writeRegister(reg: number, v: number): void {
    const s = this.state;
    if (reg === 0) {
      this.writeCr(v);
      return;
    }
    switch (this.page()) {
      case 0:
        switch (reg) {
          case 0x01: s.pstart = v; return;
          case 0x02: s.pstop = v; return;
          case 0x03: s.bnry = v; this.scheduleDrain(); return;
          case 0x04: s.tpsr = v; return;
          case 0x05: s.tbcr = (s.tbcr & 0xff00) | v; return;
          case 0x06: s.tbcr = (s.tbcr & 0xff) | (v << 8); return;
          case 0x07:
            // Write 1 to clear; RST is a status bit, not cleared this way (it clears on CR.STA).
            s.isr &= ~(v & 0x7f);
            if ((v & ISR_PRX) !== 0 && this.unreadFrames()) s.isr |= ISR_PRX;
            this.updateIrq();
            this.scheduleDrain();
            return;
          case 0x08: s.rsar = (s.rsar & 0xff00) | v; return;
          case 0x09: s.rsar = (s.rsar & 0xff) | (v << 8); return;
          case 0x0a: s.rbcr = (s.rbcr & 0xff00) | v; return;
          case 0x0b: s.rbcr = (s.rbcr & 0xff) | (v << 8); return;
          case 0x0c: s.rcr = v & 0x3f; this.scheduleDrain(); return;
          case 0x0d: s.tcr = v & 0x1f; this.scheduleDrain(); return;
          case 0x0e: s.dcr = v & 0x7f; return;
          default: s.imr = v & 0x7f; this.updateIrq(); return;
        }
      case 1:
        if (reg <= 0x06) s.par[reg - 1] = v;
        else if (reg === 0x07) {
          s.curr = v;
          this.scheduleDrain();
        } else s.mar[reg - 0x08] = v;
        return;
      case 2:
        // Page 2 is for diagnostics: the local DMA registers may be written, the rest only read.
        switch (reg) {
          case 0x01: s.clda = (s.clda & 0xff00) | v; return;
          case 0x02: s.clda = (s.clda & 0xff) | (v << 8); return;
          case 0x03: s.rnpp = v; return;
          case 0x05: s.lnpp = v; return;
          case 0x06: s.ac = (s.ac & 0xff) | (v << 8); return;
          case 0x07: s.ac = (s.ac & 0xff00) | v; return;
          default: return;
        }
      default: {
        const configWrite = (s.cr9346 & EEM_CONFIG_WRITE) === EEM_CONFIG_WRITE;
        switch (reg) {
          case 0x01: s.cr9346 = v & 0xcf; return;
          case 0x02: s.bpage = v; return;
          case 0x05: if (configWrite) s.config2 = (s.config2 & 0x3f) | (v & 0xc0); return; // PL1-0 media type
          case 0x06: if (configWrite) s.config3 = v & 0x76; return; // FUDUP, LEDS1-0, SLEEP, PWRDN
          case 0x09: if (v === 0x52 || v === 0x48) s.hltclk = v; return; // 'R' running, 'H' halted
          default: return;
        }
      }
    }
  }

  private started(): boolean {
    return (this.state.cr & (CR_STA | CR_STP)) === CR_STA;
  }

  /** CR (DP8390D "Command Register"): page select, remote DMA command, TXP, STA/STP. */
  private writeCr(v: number): void {
    const s = this.state;
    // STA and STP act only when written 1 (drivers write 0x40/0x60 just to change page).
    let run = s.cr & (CR_STA | CR_STP);
    if (v & CR_STP) {
      run = CR_STP | (v & CR_STA);
      s.isr |= ISR_RST; // the NIC is in its reset (stopped) state
    } else if (v & CR_STA) {
      run = CR_STA;
      s.isr &= ~ISR_RST;
    }
    const rd = (v >> CR_RD_SHIFT) & 7;
    s.cr = (v & 0xf8) | run;
    if (rd === RD_READ || rd === RD_WRITE || rd === RD_SEND) {
      s.sendPacket = false;
      if (rd === RD_SEND) this.startSendPacket();
      // A remote DMA of zero bytes completes at once (QEMU, and drivers that probe with it).
      if (s.rbcr === 0) s.isr |= ISR_RDC;
    } else if (rd >= 4) {
      s.sendPacket = false; // abort/complete remote DMA
    }
    if (v & CR_TXP) {
      if (this.started()) this.transmit();
      else this.log('transmit (CR.TXP) while the chip is stopped: ignored');
    }
    if (this.started()) this.scheduleDrain();
    this.updateIrq();
  }

  /**
   * "Send packet" (RD2-0 = 011, DP8390D "Remote DMA"): the remote DMA reads the packet at
   * BNRY, its byte count taken from the packet's header; when it completes BNRY moves to
   * the packet's next-page pointer, freeing its pages.
   */
  private startSendPacket(): void {
    const s = this.state;
    const at = s.bnry << 8;
    s.rsar = at;
    s.rnpp = this.memRead(at + 1);
    s.rbcr = this.memRead(at + 2) | (this.memRead(at + 3) << 8);
    s.sendPacket = s.rbcr !== 0;
  }

  // -------------------------------------------------------------------------------------
  // Local memory and remote DMA
  // -------------------------------------------------------------------------------------

  private memRead(addr: number): number {
    if (addr < 0x20) return this.state.prom[addr];
    if (addr >= NE2000_MEM_START && addr < NE2000_MEM_END) return this.state.mem[addr - NE2000_MEM_START];
    return 0xff;
  }

  private memWrite(addr: number, v: number): void {
    if (addr >= NE2000_MEM_START && addr < NE2000_MEM_END) this.state.mem[addr - NE2000_MEM_START] = v;
  }

  /**
   * Advance the remote DMA by `n` bytes: RSAR wraps from PSTOP to PSTART so a packet that
   * wraps in the ring reads out contiguously (DP8390D "Remote DMA"), RBCR counts down and
   * ISR.RDC is set when it reaches 0.
   */
  private advanceDma(n: number): void {
    const s = this.state;
    const stop = s.pstop << 8;
    let next = s.rsar + n;
    if (s.pstart < s.pstop && s.rsar < stop && next >= stop) next = (s.pstart << 8) + (next - stop);
    s.rsar = next & 0xffff;
    if (s.rbcr > 0) {
      s.rbcr = Math.max(0, s.rbcr - n);
      if (s.rbcr === 0) {
        s.isr |= ISR_RDC;
        if (s.sendPacket) {
          s.sendPacket = false;
          s.bnry = s.rnpp;
          this.scheduleDrain();
        }
        this.updateIrq();
      }
    }
  }

  /**
   * Where in mem a 32-bit word-mode access can move its 4 bytes at once, or -1: RSAR even
   * and inside the buffer RAM, no PSTOP wrap within the 4 bytes, and RBCR not reaching 0
   * (so no RDC). That is ne2k-pci's insl/outsl in the middle of a packet; anything else
   * takes the unit-by-unit path below, which gives the same result.
   */
  private dwordAt(): number {
    const s = this.state;
    const a = s.rsar;
    if ((s.dcr & DCR_WTS) === 0 || (a & 1) !== 0 || a < NE2000_MEM_START || a + 4 > NE2000_MEM_END || s.rbcr <= 4) return -1;
    const stop = s.pstop << 8;
    if (s.pstart < s.pstop && a < stop && a + 4 >= stop) return -1;
    return a - NE2000_MEM_START;
  }

  /**
   * One transfer unit is a byte, or a word with DCR.WTS (the address's bit 0 ignored). An
   * 8- or 16-bit access moves one unit (in word mode an 8-bit read still consumes a word:
   * Linux ne2k-pci reads the PROM so); a 32-bit access moves 4 bytes (ne2k-pci's insl/outsl).
   */
  private dataRead(size: AccessSize): number {
    if (size === 4) {
      const o = this.dwordAt();
      if (o >= 0) {
        const s = this.state;
        const m = s.mem;
        s.rsar += 4;
        s.rbcr -= 4;
        return m[o] | (m[o + 1] << 8) | (m[o + 2] << 16) | (m[o + 3] << 24);
      }
    }
    const word = (this.state.dcr & DCR_WTS) !== 0;
    const units = size === 4 ? (word ? 2 : 4) : 1;
    let v = 0;
    let shift = 0;
    for (let u = 0; u < units; u++) {
      const s = this.state;
      if (word) {
        const a = s.rsar & 0xfffe;
        v |= (this.memRead(a) | (this.memRead((a + 1) & 0xffff) << 8)) << shift;
        shift += 16;
        this.advanceDma(2);
      } else {
        v |= this.memRead(s.rsar) << shift;
        shift += 8;
        this.advanceDma(1);
      }
    }
    if (size === 4) return v | 0;
    return v & (size === 2 ? 0xffff : 0xff);
  }

  private dataWrite(size: AccessSize, value: number): void {
    if (size === 4) {
      const o = this.dwordAt();
      if (o >= 0) {
        const s = this.state;
        const m = s.mem;
        m[o] = value;
        m[o + 1] = value >>> 8;
        m[o + 2] = value >>> 16;
        m[o + 3] = value >>> 24;
        s.rsar += 4;
        s.rbcr -= 4;
        return;
      }
    }
    const word = (this.state.dcr & DCR_WTS) !== 0;
    const units = size === 4 ? (word ? 2 : 4) : 1;
    let shift = 0;
    for (let u = 0; u < units; u++) {
      const s = this.state;
      if (word) {
        const a = s.rsar & 0xfffe;
        this.memWrite(a, (value >>> shift) & 0xff);
        this.memWrite((a + 1) & 0xffff, (value >>> (shift + 8)) & 0xff);
        shift += 16;
        this.advanceDma(2);
      } else {
        this.memWrite(s.rsar, (value >>> shift) & 0xff);
        shift += 8;
        this.advanceDma(1);
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Transmit (DP8390D "Transmit")
  // -------------------------------------------------------------------------------------

  private transmit(): void {
    const s = this.state;
    const start = s.tpsr << 8;
    const count = s.tbcr;
    s.cr &= ~CR_TXP;
    // CVE-2007-5729: a TBCR reaching past the buffer RAM must not read past it. Refuse
    // it (and frames no Ethernet carries) as an aborted transmission the driver sees.
    if (count === 0 || count > NE2000_MAX_FRAME || start < NE2000_MEM_START || start + count > NE2000_MEM_END) {
      s.counters.txErrors++;
      s.tsr = TSR_ABT;
      s.isr |= ISR_TXE;
      this.log(`transmit refused: TPSR 0x${s.tpsr.toString(16)}, TBCR ${count} (the frame must be 1..${NE2000_MAX_FRAME} bytes inside 0x4000-0xBFFF)`);
      this.updateIrq();
      return;
    }
    const frame = s.mem.slice(start - NE2000_MEM_START, start - NE2000_MEM_START + count);
    s.counters.txFrames++;
    s.counters.txBytes += count;
    s.tsr = TSR_PTX;
    s.isr |= ISR_PTX;
    if ((s.tcr & TCR_LB_MASK) !== 0) {
      // Loopback (TCR.LB1-0 = 01 internal, 10/11 external): the frame goes to our own receiver, not the wire.
      this.loopback(frame);
    } else {
      this.onTransmit(frame);
    }
    this.updateIrq();
  }

  // -------------------------------------------------------------------------------------
  // Receive (DP8390D "Packet Reception", "Buffer Ring")
  // -------------------------------------------------------------------------------------

  /** A frame from the network (Ethernet II, no FCS). Never throws; refusals are counted. */
  receive(frame: Uint8Array): void {
    const s = this.state;
    const c = s.counters;
    if (frame.length < ETH_HEADER || frame.length > NE2000_MAX_FRAME) {
      // CVE-2018-10839: a huge frame from the backend must not overflow anything.
      c.dropMalformed++;
      this.log(`received frame of ${frame.length} bytes dropped (an Ethernet frame is ${ETH_HEADER}..${NE2000_MAX_FRAME} bytes)`);
      return;
    }
    if (!this.started() || (s.rcr & RCR_MON) !== 0) {
      // Monitor mode checks addresses and tallies what it would have taken, storing nothing.
      if (this.started() && this.accepts(frame)) this.missed();
      c.dropStopped++;
      return;
    }
    if (!this.accepts(frame)) {
      c.dropFiltered++;
      return;
    }
    // Keep arrival order: while anything waits, a new frame waits behind it.
    if (s.rxQueue.length === 0 && this.canPlace() && this.place(frame) !== 'full') return;
    this.enqueue(frame);
  }

  /** The RCR address filter (DP8390D "Address Recognition Logic"). */
  private accepts(frame: Uint8Array): boolean {
    const s = this.state;
    if (s.rcr & RCR_PRO) return true;
    if ((frame[0] & 1) === 0) {
      for (let i = 0; i < 6; i++) if (frame[i] !== s.par[i]) return false;
      return true;
    }
    let broadcast = true;
    for (let i = 0; i < 6; i++) if (frame[i] !== 0xff) broadcast = false;
    if (broadcast) return (s.rcr & RCR_AB) !== 0;
    if ((s.rcr & RCR_AM) === 0) return false;
    const h = multicastHashIndex(frame);
    return (s.mar[h >> 3] & (1 << (h & 7))) !== 0;
  }

  /** Whether frames from the wire can enter the ring now (started, not in loopback). */
  private canPlace(): boolean {
    return this.started() && (this.state.tcr & TCR_LB_MASK) === 0 && (this.state.rcr & RCR_MON) === 0;
  }

  private enqueue(frame: Uint8Array): void {
    const s = this.state;
    if (s.rxQueue.length >= RX_QUEUE_FRAMES || this.rxQueueBytes + frame.length > RX_QUEUE_BYTES) {
      this.overflow(`receive ring and queue full (${s.rxQueue.length} frames waiting): frame dropped`);
      return;
    }
    // The sender may keep its array (FrameEndpoint allows it), but a loopback frame is ours already.
    s.rxQueue.push(frame);
    this.rxQueueBytes += frame.length;
  }

  /** A frame lost for lack of buffers: RSR.MPA and the CNTR2 tally (with ISR.CNT at its MSB). */
  private missed(): void {
    const s = this.state;
    s.rsr |= RSR_MPA;
    if (s.cntr2 < TALLY_MAX) s.cntr2++;
    if (s.cntr2 & 0x80) s.isr |= ISR_CNT;
  }

  /**
   * Waiting frames enter the room the guest frees (its BNRY or CURR write, its ISR
   * acknowledge, a CR start, leaving loopback or monitor mode) a moment later, as the
   * next frames on a busy wire would, not inside that port write.
   * Linux's ei_receive takes at most 10 frames, writing BNRY after each, and then
   * acknowledges ISR.PRX: frames placed during that loop and left in the ring would have
   * their PRX cleared by the acknowledge and wait, with the sender waiting for their ACK
   * (seen: a wget stalled with 28 frames queued). Arriving after the acknowledge, they set
   * PRX again and the driver comes back for them.
   */
  private scheduleDrain(): void {
    const clock = this.ctx?.clock;
    if (!clock) {
      this.drainQueue();
      return;
    }
    if (this.drainTimer !== 0 || this.state.rxQueue.length === 0) return;
    this.drainTimer = clock.setTimer(clock.now(), () => {
      this.drainTimer = 0;
      this.drainQueue();
    });
  }

  /**
   * Whether the ring still holds frames the driver has not taken, by either convention
   * for BNRY (one page behind the next frame, as Linux and iPXE keep it, or on it, as
   * the datasheet's "send packet" does): neither BNRY = CURR nor BNRY + 1 = CURR.
   *
   * An acknowledge of ISR.PRX while this holds leaves PRX set (a deviation from the
   * DP8390, which would clear it and rely on the next frame from a busy wire to set it
   * again). Linux's ei_receive takes at most 9 frames per pass and then acknowledges
   * PRX; a ring holding more (many small frames, or frames that entered while it read)
   * would otherwise sit unannounced until something else arrived, and here nothing
   * else does: the router's TCP waits for the guest's ACKs. Drivers that acknowledge
   * first and read after see one extra, empty pass; no convention ever sees a storm,
   * since an empty ring satisfies one of the two equalities.
   */
  private unreadFrames(): boolean {
    const s = this.state;
    if (!this.started() || !this.ringUsable()) return false;
    const bnry = this.boundary();
    const after = bnry + 1 >= s.pstop ? s.pstart : bnry + 1;
    return bnry !== s.curr && after !== s.curr;
  }

  /** Move waiting frames into the ring while they fit. */
  private drainQueue(): void {
    const s = this.state;
    if (s.rxQueue.length === 0 || !this.canPlace()) return;
    while (s.rxQueue.length > 0) {
      const frame = s.rxQueue[0];
      // 'gone' (unusable ring, or larger than the ring) was counted by place(): the frame leaves the queue too.
      if (this.place(frame) === 'full') break;
      s.rxQueue.shift();
      this.rxQueueBytes -= frame.length;
    }
  }

  /** Looped-back frames take the receive path at once, without the wire's queue. */
  private loopback(frame: Uint8Array): void {
    const s = this.state;
    if (frame.length < ETH_HEADER) {
      s.counters.dropMalformed++;
      return;
    }
    if (!this.accepts(frame)) {
      s.counters.dropFiltered++;
      return;
    }
    if (this.place(frame) === 'full') this.overflow('loopback frame dropped: receive ring full');
  }

  /** A frame refused for lack of ring space: counted, tallied, and ISR.OVW raised. */
  private overflow(message: string): void {
    const s = this.state;
    s.counters.dropRingFull++;
    this.missed();
    s.isr |= ISR_OVW;
    this.log(message);
    this.updateIrq();
  }

  /**
   * Ring registers the chip can work with: PSTART < PSTOP inside the buffer RAM, CURR
   * inside the ring. Anything else (CVE-2015-5278 CURR past PSTOP, CVE-2015-5279
   * pointers outside the memory, CVE-2016-2841 PSTART >= PSTOP) refuses frames.
   */
  private ringUsable(): boolean {
    const s = this.state;
    return s.pstart >= PAGE_FIRST && s.pstart < s.pstop && s.pstop <= PAGE_END && s.curr >= s.pstart && s.curr < s.pstop;
  }

  /**
   * BNRY as a page of the ring. Drivers that keep BNRY one page behind the next packet
   * and forget to wrap write PSTART - 1 for "PSTOP - 1"; the chip only ever compares
   * BNRY with its write page, so any value is taken modulo the ring rather than refused.
   */
  private boundary(): number {
    const s = this.state;
    const ringPages = s.pstop - s.pstart;
    return s.pstart + ((((s.bnry - s.pstart) % ringPages) + ringPages) % ringPages);
  }

  /**
   * Store `frame` at CURR: the 4-byte header {RSR, next page, count lo, hi}, the frame
   * padded to 60 bytes, and its FCS; count = padded length + 4 (the FCS). 'full' (nothing
   * stored) if the ring has no room now: the chip never writes into the page BNRY points
   * to, and never fills the ring so that CURR = BNRY. 'gone' if the frame was dropped and
   * counted: the ring is unusable, or the frame is larger than the whole ring.
   */
  private place(frame: Uint8Array): 'placed' | 'full' | 'gone' {
    const s = this.state;
    if (!this.ringUsable()) {
      s.counters.dropBadRing++;
      this.log(`frame dropped: unusable receive ring (PSTART 0x${s.pstart.toString(16)}, PSTOP 0x${s.pstop.toString(16)}, CURR 0x${s.curr.toString(16)}, BNRY 0x${s.bnry.toString(16)}; buffer RAM is pages 0x40-0xBF)`);
      return 'gone';
    }
    const len = Math.max(frame.length, ETH_MIN_FRAME);
    const total = 4 + len + 4;
    const pages = (total + 255) >> 8;
    const ringPages = s.pstop - s.pstart;
    const bnry = this.boundary();
    const avail = bnry > s.curr ? bnry - s.curr : ringPages - (s.curr - bnry);
    if (pages >= ringPages) {
      // Bigger than the whole ring: it can never fit, so it overflows as on the chip.
      this.overflow(`frame of ${frame.length} bytes dropped: larger than the ${ringPages}-page receive ring`);
      return 'gone';
    }
    if (pages >= avail) return 'full';

    const padded = len === frame.length ? frame : (() => {
      const p = new Uint8Array(len);
      p.set(frame);
      return p;
    })();
    const fcs = ethernetFcs(padded);
    let next = s.curr + pages;
    if (next >= s.pstop) next -= ringPages;
    const status = RSR_PRX | ((frame[0] & 1) !== 0 ? RSR_PHY : 0);
    const base = s.curr << 8;
    const header = Uint8Array.of(status, next, (len + 4) & 0xff, (len + 4) >> 8);
    const tail = Uint8Array.of(fcs & 0xff, (fcs >>> 8) & 0xff, (fcs >>> 16) & 0xff, fcs >>> 24);
    let at = this.ringCopy(base, header);
    at = this.ringCopy(at, padded);
    at = this.ringCopy(at, tail);

    s.curr = next;
    s.lnpp = next;
    s.clda = at;
    s.ac = at;
    s.rsr = status;
    s.isr |= ISR_PRX;
    s.counters.rxFrames++;
    s.counters.rxBytes += frame.length;
    this.updateIrq();
    return 'placed';
  }

  /** Copy `data` into the ring at byte address `at`, wrapping from PSTOP to PSTART; returns the address after it. */
  private ringCopy(at: number, data: Uint8Array): number {
    const s = this.state;
    const stop = s.pstop << 8;
    let done = 0;
    while (done < data.length) {
      const n = Math.min(data.length - done, stop - at);
      s.mem.set(data.subarray(done, done + n), at - NE2000_MEM_START);
      done += n;
      at += n;
      if (at >= stop) at = s.pstart << 8;
    }
    return at;
  }

  // -------------------------------------------------------------------------------------
  // Reset and interrupt
  // -------------------------------------------------------------------------------------

  /**
   * The DP8390 reset (the NE2000 reset port): CR = 21h (stopped, remote DMA aborted,
   * page 0), ISR = 80h (RST), IMR = 0, DCR.LAS, TCR normal. The ring pointers, PAR, MAR
   * and the memory are not touched, as on the chip. Frames still waiting are dropped.
   */
  private chipReset(): void {
    const s = this.state;
    s.cr = CR_STP | (4 << CR_RD_SHIFT);
    s.isr = ISR_RST;
    s.imr = 0;
    s.dcr = 0x04;
    s.tcr = 0;
    s.sendPacket = false;
    s.counters.dropStopped += s.rxQueue.length;
    s.rxQueue = [];
    this.rxQueueBytes = 0;
    this.updateIrq();
  }

  private updateIrq(): void {
    this.driveIrq(false);
  }

  /** INTA# or the ISA line = (ISR & IMR & 0x7F) != 0 (RST never interrupts). */
  private driveIrq(force: boolean): void {
    const level = (this.state.isr & this.state.imr & 0x7f) !== 0;
    if (!this.line || (!force && level === this.lineLevel)) return;
    this.lineLevel = level;
    this.line.set(level);
  }

  // -------------------------------------------------------------------------------------
  // Debugger views (no side effects)
  // -------------------------------------------------------------------------------------

  /**
   * What a guest read of port `offset` would return, without its side effects: no
   * tally counter cleared, no remote DMA advanced, no reset. 0x10-0x17 shows the next
   * data port byte (or word with DCR.WTS); `page` defaults to CR's.
   */
  peek(offset: number, page = this.page()): number {
    const s = this.state;
    if (offset < 0x10) return this.registerValue(offset & 0x0f, page & 3);
    if (offset < 0x18) {
      if (s.dcr & DCR_WTS) {
        const a = s.rsar & 0xfffe;
        return this.memRead(a) | (this.memRead((a + 1) & 0xffff) << 8);
      }
      return this.memRead(s.rsar);
    }
    return offset < 0x20 ? 0 : 0xff;
  }

  /** The registers by their datasheet names, the counters and the queue, for a debugger or the page. */
  describe(): Record<string, number | string | boolean> {
    const s = this.state;
    const hex = (a: Uint8Array) => Array.from(a, (b) => b.toString(16).padStart(2, '0')).join(':');
    return {
      model: this.model === 'pci' ? 'RTL8029 (PCI)' : `NE2000 (ISA 0x${this.isa.port.toString(16)}, IRQ ${this.isa.irq})`,
      mac: hex(this.mac),
      started: this.started(),
      page: this.page(),
      cr: s.cr, isr: s.isr, imr: s.imr, rcr: s.rcr, rsr: s.rsr, tcr: s.tcr, tsr: s.tsr, dcr: s.dcr,
      pstart: s.pstart, pstop: s.pstop, bnry: s.bnry, curr: s.curr, tpsr: s.tpsr, tbcr: s.tbcr,
      rsar: s.rsar, rbcr: s.rbcr, cntr0: s.cntr0, cntr1: s.cntr1, cntr2: s.cntr2,
      par: hex(s.par), mar: hex(s.mar),
      irq: this.lineLevel,
      queuedFrames: s.rxQueue.length,
      queuedBytes: this.rxQueueBytes,
      ...s.counters,
    };
  }

  // -------------------------------------------------------------------------------------
  // State (DESIGN.md seam 2)
  // -------------------------------------------------------------------------------------

  saveState(): DeviceState {
    return NE2000_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    this.state = NE2000_STATE.load(saved, this.name);
    this.rxQueueBytes = this.state.rxQueue.reduce((n, f) => n + f.length, 0);
    this.driveIrq(true);
    // Frames still waiting get their turn again (a machine load has dropped every timer already).
    this.ctx?.clock.cancelTimer(this.drainTimer);
    this.drainTimer = 0;
    this.scheduleDrain();
  }
}
