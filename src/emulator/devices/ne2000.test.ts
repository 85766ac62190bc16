/**
 * NE2000 (RTL8029 on PCI, NE2000 on ISA) through the real bus: the guest's side is
 * driven as Linux's ne2k-pci/8390 and iPXE's ns8390 drive it (reset port, PROM read in
 * word mode with byte reads, CNTR0 probe, remote DMA in 8/16/32-bit, transmit, the
 * ring with its header and wrap, BNRY/CURR), the network side through receive() and
 * onTransmit. Also: the filters, loopback, the queue in front of a full ring and
 * ISR.OVW, IRQ levels on PCI INTA# and ISA IRQ 9, the RTL8029 ID, state round trips,
 * each guest-triggered QEMU NE2000 bug by its CVE, and the option ROM patch.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createTestBus, type TestBus } from '../bus/test-harness.ts';
import { ns8390Open } from './ne2000.testing.ts';
import {
  ISR_CNT, ISR_OVW, ISR_PRX, ISR_PTX, ISR_RDC, ISR_RST, ISR_TXE, NE2000_MAX_FRAME, Ne2000, RSR_MPA, RSR_PHY, RSR_PRX,
  RX_QUEUE_FRAMES, TSR_ABT, TSR_PTX, ethernetFcs, multicastHashIndex, patchOptionRom,
} from './ne2000.ts';

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const OTHER = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x99);
const BAR0 = 0xc100;
const PCI_IRQ = 11;

interface Rig {
  t: TestBus;
  nic: Ne2000;
  io: number;
  irq: number;
  sent: Uint8Array[];
  logs: string[];
}

/** The RTL8029 at 00:03.0, BAR0 at 0xC100 with I/O decode on, INTA# (PIRQ link C) routed to IRQ 11 as SeaBIOS does. */
function pciRig(): Rig {
  const t = createTestBus();
  const nic = new Ne2000({ mac: MAC });
  const ctx = t.plugPci(nic, 3);
  const logs = captureLogs(ctx);
  t.cfgWrite32(3, 0, 0x10, BAR0 | 1);
  t.cfgWrite(3, 0, 0x04, 2, 0x0001);
  t.pci.setPirq(2, PCI_IRQ);
  const sent: Uint8Array[] = [];
  nic.onTransmit = (f) => sent.push(f);
  return { t, nic, io: BAR0, irq: PCI_IRQ, sent, logs };
}

/** The ISA NE2000 at 0x300, IRQ 9 (QEMU's ne2k_isa defaults). */
function isaRig(): Rig {
  const t = createTestBus();
  const nic = new Ne2000({ mac: MAC, model: 'isa', isa: { port: 0x300, irq: 9 } });
  const ctx = t.attach(nic);
  const logs = captureLogs(ctx);
  const sent: Uint8Array[] = [];
  nic.onTransmit = (f) => sent.push(f);
  return { t, nic, io: 0x300, irq: 9, sent, logs };
}

/** Record what the device logs (the context's log is the bus's; wrap it). */
function captureLogs(ctx: { log(m: string): void }): string[] {
  const logs: string[] = [];
  const original = ctx.log.bind(ctx);
  (ctx as { log(m: string): void }).log = (m: string) => {
    logs.push(m);
    original(m);
  };
  return logs;
}

// Register offsets (page 0 unless noted)
const CR = 0x00, PSTART = 0x01, PSTOP = 0x02, BNRY = 0x03, TPSR = 0x04, TBCR0 = 0x05, TBCR1 = 0x06, ISR = 0x07;
const RSAR0 = 0x08, RSAR1 = 0x09, RBCR0 = 0x0a, RBCR1 = 0x0b, RCR = 0x0c, TCR = 0x0d, DCR = 0x0e, IMR = 0x0f;
const CNTR0 = 0x0d, CNTR2 = 0x0f, TSR = 0x04, RSR = 0x0c;
const CURR = 0x07; // page 1
const DATA = 0x10, RESET = 0x1f;
/** Linux's 8390 constants: no DMA, remote read/write, start, stop, pages. */
const NODMA = 0x20, RREAD = 0x08, RWRITE = 0x10, START = 0x02, STOP = 0x01, TRANS = 0x04, PAGE1 = 0x40, PAGE2 = 0x80, PAGE3 = 0xc0;
const TX_START = 0x40, RX_START = 0x4c, RX_STOP = 0x80;

/** Linux ne2k-pci's open (ne2000.testing.ts: it checks that the reset it starts with is done). */
function linuxOpen(r: Rig, rcr = 0x04): void {
  ns8390Open(r.t, r.io, MAC, rcr);
}

/** Remote write of `bytes` at `addr` with 32-bit outsl and the tail in 16-bit (ne2k-pci block_output), waiting for RDC. */
function dmaWrite(r: Rig, addr: number, bytes: Uint8Array, width: 1 | 2 | 4 = 4): void {
  const { t, io } = r;
  const count = width === 1 ? bytes.length : (bytes.length + width - 1) & ~(width - 1);
  const buf = new Uint8Array(count);
  buf.set(bytes);
  t.out8(io + CR, NODMA | START);
  t.out8(io + ISR, ISR_RDC);
  t.out8(io + RBCR0, count & 0xff);
  t.out8(io + RBCR1, count >> 8);
  t.out8(io + RSAR0, addr & 0xff);
  t.out8(io + RSAR1, addr >> 8);
  t.out8(io + CR, RWRITE | START);
  const v = new DataView(buf.buffer);
  for (let i = 0; i < count; i += width) {
    if (width === 4) t.out32(io + DATA, v.getUint32(i, true));
    else if (width === 2) t.out16(io + DATA, v.getUint16(i, true));
    else t.out8(io + DATA, buf[i]);
  }
  expect(t.in8(io + ISR) & ISR_RDC).toBe(ISR_RDC);
  t.out8(io + ISR, ISR_RDC);
}

/** Remote read of `n` bytes at `addr` as ne2k-pci's block_input: insl, then a word, then a byte. */
function dmaRead(r: Rig, addr: number, n: number, width: 1 | 2 | 4 = 4): Uint8Array {
  const { t, io } = r;
  t.out8(io + CR, NODMA | START);
  t.out8(io + RBCR0, n & 0xff);
  t.out8(io + RBCR1, n >> 8);
  t.out8(io + RSAR0, addr & 0xff);
  t.out8(io + RSAR1, addr >> 8);
  t.out8(io + CR, RREAD | START);
  const out = new Uint8Array(n + 4);
  const v = new DataView(out.buffer);
  let i = 0;
  if (width === 4) for (; i + 4 <= n; i += 4) v.setUint32(i, t.in32(io + DATA), true);
  if (width >= 2) for (; i + 2 <= n; i += 2) v.setUint16(i, t.in16(io + DATA), true);
  for (; i < n; i++) out[i] = t.in8(io + DATA);
  t.out8(io + ISR, ISR_RDC);
  return out.slice(0, n);
}

/**
 * Linux 8390.c ei_receive: the frames between BNRY+1 and CURR, at most 9 per pass
 * (`while (++rx_pkt_count < 10)`), BNRY moved behind each, then PRX acknowledged.
 */
function linuxReceive(r: Rig): Uint8Array[] {
  const { t, io } = r;
  const frames: Uint8Array[] = [];
  for (let count = 1; count < 10; count++) {
    t.out8(io + CR, NODMA | PAGE1);
    const curr = t.in8(io + CURR);
    t.out8(io + CR, NODMA);
    let thisFrame = t.in8(io + BNRY) + 1;
    if (thisFrame >= RX_STOP) thisFrame = RX_START;
    if (thisFrame === curr) break;
    const h = dmaRead(r, thisFrame << 8, 4);
    const count = h[2] | (h[3] << 8);
    const pktLen = count - 4;
    expect(h[0] & RSR_PRX).toBe(RSR_PRX);
    expect(pktLen).toBeGreaterThanOrEqual(60);
    expect(pktLen).toBeLessThanOrEqual(1518);
    // The next-page pointer as 8390.c checks it (one page of slack for the FCS).
    const nextFrame = thisFrame + 1 + ((pktLen + 4) >> 8);
    const ring = RX_STOP - RX_START;
    expect([nextFrame, nextFrame + 1, nextFrame - ring, nextFrame + 1 - ring]).toContain(h[1]);
    frames.push(dmaRead(r, (thisFrame << 8) + 4, pktLen));
    const next = h[1];
    t.out8(io + BNRY, next === RX_START ? RX_STOP - 1 : next - 1);
  }
  t.out8(io + ISR, ISR_PRX | 0x04);
  return frames;
}

/**
 * The guest's interrupt handler for as long as ISR.PRX is up, as ei_interrupt loops on
 * ISR; time moves on between passes, so frames waiting for room enter the ring.
 */
function linuxReceiveAll(r: Rig): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let pass = 0; pass < 1000; pass++) {
    r.t.advance(1000);
    if ((r.t.in8(r.io + ISR) & ISR_PRX) === 0) break;
    frames.push(...linuxReceive(r));
  }
  return frames;
}

/** A frame to `dst` from OTHER, EtherType 0x0800, `size` bytes, payload bytes (seed + i) & 0xff. */
function frame(dst: Uint8Array, size: number, seed = 0): Uint8Array {
  const f = new Uint8Array(size);
  f.set(dst.subarray(0, 6), 0);
  f.set(OTHER, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  for (let i = 14; i < size; i++) f[i] = (seed + i) & 0xff;
  return f;
}

const padded = (f: Uint8Array) => {
  if (f.length >= 60) return f;
  const p = new Uint8Array(60);
  p.set(f);
  return p;
};

describe('NE2000: the RTL8029 PCI function', () => {
  it('declares 10ec:8029, class 0x020000, INTA# and a 256-byte I/O BAR0', () => {
    const { t } = pciRig();
    expect(t.cfgRead32(3, 0, 0x00)).toBe(0x802910ec);
    expect(t.cfgRead32(3, 0, 0x08) >>> 8).toBe(0x020000);
    expect(t.cfgRead(3, 0, 0x3d, 1)).toBe(1);
    t.cfgWrite32(3, 0, 0x10, 0xffffffff);
    expect(t.cfgRead32(3, 0, 0x10)).toBe(0xffffff01);
  });

  it('reads the RTL8029 ID on page 0 (0x50 0x43) and page 3 (0x29 0x80), and CR is never 0xFF', () => {
    const { t, io } = pciRig();
    expect(t.in8(io + CR)).not.toBe(0xff);
    expect(t.in8(io + CR)).toBe(0x21); // stopped, remote DMA aborted, page 0
    expect(t.in8(io + 0x0a)).toBe(0x50);
    expect(t.in8(io + 0x0b)).toBe(0x43);
    t.out8(io + CR, NODMA | PAGE3 | STOP);
    expect(t.in8(io + 0x0e)).toBe(0x29);
    expect(t.in8(io + 0x0f)).toBe(0x80);
    expect(t.in8(io + 0x05) & 0xc0).toBe(0x40); // CONFIG2: 10BASE-T
    expect(t.in8(io + CR) >> 6).toBe(3);
  });

  it('page 3: CONFIG registers change only with 9346CR EEM = 11; HLTCLK takes R/H', () => {
    const { t, io, nic } = pciRig();
    t.out8(io + CR, NODMA | PAGE3 | STOP);
    t.out8(io + 0x06, 0x00);
    expect(t.in8(io + 0x06)).toBe(0x40); // locked
    t.out8(io + 0x01, 0xc0);
    t.out8(io + 0x06, 0x00);
    expect(t.in8(io + 0x06)).toBe(0x00);
    expect(t.in8(io + 0x01) & 0xc0).toBe(0xc0);
    t.out8(io + 0x09, 0x48);
    expect(nic.state.hltclk).toBe(0x48);
    t.out8(io + 0x09, 0x13);
    expect(nic.state.hltclk).toBe(0x48);
  });

  it('BAR0 offsets 0x20-0xFF decode nothing', () => {
    const { t, io } = pciRig();
    expect(t.in8(io + 0x20)).toBe(0xff);
    expect(t.in16(io + 0x80)).toBe(0xffff);
    t.out8(io + 0x40, 0x12); // ignored
  });
});

describe('NE2000: reset, probe and PROM as Linux ne2k-pci does them', () => {
  it('the reset port sets ISR.RST and stops the chip; RST does not clear by writing ISR, only by starting', () => {
    const r = pciRig();
    const { t, io } = r;
    linuxOpen(r);
    expect(t.in8(io + ISR) & ISR_RST).toBe(0);
    expect(t.in8(io + CR) & (START | STOP)).toBe(START);
    t.in8(io + 0x18); // any of 0x18-0x1F
    expect(t.in8(io + ISR)).toBe(ISR_RST);
    expect(t.in8(io + CR)).toBe(0x21);
    t.out8(io + ISR, 0xff);
    expect(t.in8(io + ISR) & ISR_RST).toBe(ISR_RST);
    t.out8(io + CR, NODMA | START);
    expect(t.in8(io + ISR) & ISR_RST).toBe(0);
  });

  it('CNTR0 reads 0 on the second read (the ne2k-pci probe, after 0xFF to page 1 register 0x0D)', () => {
    const { t, io } = pciRig();
    t.out8(io + CR, NODMA | PAGE1 | STOP);
    t.in8(io + 0x0d);
    t.out8(io + 0x0d, 0xff); // MAR5 on page 1
    t.out8(io + CR, NODMA | STOP);
    t.in8(io + CNTR0);
    expect(t.in8(io + CNTR0)).toBe(0);
  });

  it('the tally counters clear when read, and only when read by the guest', () => {
    const r = pciRig();
    r.nic.loadState({ ...r.nic.saveState(), cntr0: 5, cntr1: 6, cntr2: 7 });
    const { t, io } = r;
    expect(r.nic.peek(0x0d)).toBe(5);
    expect([t.in8(io + 0x0d), t.in8(io + 0x0e), t.in8(io + 0x0f)]).toEqual([5, 6, 7]);
    expect([t.in8(io + 0x0d), t.in8(io + 0x0e), t.in8(io + 0x0f)]).toEqual([0, 0, 0]);
  });

  it('reads the PROM with byte reads in word mode: MAC in bytes 0-5, 0x57 at 14-15 (ne2k-pci)', () => {
    const r = pciRig();
    const { t, io } = r;
    t.out8(io + RESET, t.in8(io + RESET));
    t.out8(io + CR, NODMA | STOP);
    t.out8(io + DCR, 0x49);
    t.out8(io + RBCR0, 0);
    t.out8(io + RBCR1, 0);
    t.out8(io + IMR, 0);
    t.out8(io + ISR, 0xff);
    t.out8(io + RCR, 0x20);
    t.out8(io + TCR, 0x02);
    t.out8(io + RBCR0, 32);
    t.out8(io + RBCR1, 0);
    t.out8(io + RSAR0, 0);
    t.out8(io + RSAR1, 0);
    t.out8(io + CR, RREAD | START);
    const prom = Array.from({ length: 32 }, () => t.in8(io + DATA));
    expect(prom.slice(0, 6)).toEqual([...MAC]);
    expect(prom[14]).toBe(0x57);
    expect(prom[15]).toBe(0x57);
    expect(t.in8(io + ISR) & ISR_RDC).toBe(ISR_RDC); // 32 bytes moved after 16 word reads
  });

  it('reads the doubled PROM with 16-bit reads as iPXE does (romdata[2i] is MAC byte i)', () => {
    const r = pciRig();
    r.t.out8(r.io + DCR, 0x49);
    const rom = dmaRead(r, 0, 32, 2);
    for (let i = 0; i < 6; i++) {
      expect(rom[2 * i]).toBe(MAC[i]);
      expect(rom[2 * i + 1]).toBe(MAC[i]);
    }
    expect([...rom.subarray(28, 32)]).toEqual([0x57, 0x57, 0x57, 0x57]);
  });

  it('has no memory below 0x4000 except the PROM (iPXE probes 0x2000 in byte mode and must fail there)', () => {
    const r = pciRig();
    r.t.out8(r.io + DCR, 0x48);
    const test = new TextEncoder().encode('NE*000 memory');
    dmaWrite(r, 0x2000, test, 1);
    expect([...dmaRead(r, 0x2000, test.length, 1)]).toEqual(new Array(test.length).fill(0xff));
    r.t.out8(r.io + DCR, 0x49);
    dmaWrite(r, 0x4000, test, 2);
    expect([...dmaRead(r, 0x4000, test.length + 1, 2)].slice(0, test.length)).toEqual([...test]);
    // The PROM cannot be written.
    dmaWrite(r, 0, Uint8Array.of(1, 2, 3, 4), 2);
    expect(dmaRead(r, 0, 2, 2)[0]).toBe(MAC[0]);
    // Nor the space above the buffer.
    dmaWrite(r, 0xc000, Uint8Array.of(1, 2, 3, 4), 2);
    expect([...dmaRead(r, 0xc000, 4, 2)]).toEqual([0xff, 0xff, 0xff, 0xff]);
  });
});

describe('NE2000: remote DMA', () => {
  it('moves bytes in 8-bit mode, words in 16-bit mode, and 4 bytes per 32-bit access, setting RDC at the end', () => {
    const r = pciRig();
    const data = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);
    r.t.out8(r.io + DCR, 0x48);
    dmaWrite(r, 0x4100, data, 1);
    expect([...dmaRead(r, 0x4100, 64, 1)]).toEqual([...data]);
    r.t.out8(r.io + DCR, 0x49);
    dmaWrite(r, 0x4200, data, 2);
    expect([...dmaRead(r, 0x4200, 64, 2)]).toEqual([...data]);
    dmaWrite(r, 0x4300, data, 4);
    expect([...dmaRead(r, 0x4300, 64, 4)]).toEqual([...data]);
    // An odd count read as ne2k-pci does: insl, then inw, then inb.
    expect([...dmaRead(r, 0x4300, 63, 4)]).toEqual([...data.subarray(0, 63)]);
  });

  it('advances RSAR (CRDA) and counts RBCR down; RDC only when the count reaches 0', () => {
    const r = pciRig();
    const { t, io } = r;
    t.out8(io + DCR, 0x49);
    t.out8(io + ISR, 0xff);
    t.out8(io + RBCR0, 8);
    t.out8(io + RBCR1, 0);
    t.out8(io + RSAR0, 0x10);
    t.out8(io + RSAR1, 0x45);
    t.out8(io + CR, RREAD | START);
    t.in16(io + DATA);
    t.in16(io + DATA);
    t.in16(io + DATA);
    expect(t.in8(io + 0x08) | (t.in8(io + 0x09) << 8)).toBe(0x4516);
    expect(t.in8(io + ISR) & ISR_RDC).toBe(0);
    t.in16(io + DATA);
    expect(t.in8(io + ISR) & ISR_RDC).toBe(ISR_RDC);
  });

  it('a remote DMA of zero bytes completes at once', () => {
    const r = pciRig();
    const { t, io } = r;
    t.out8(io + ISR, 0xff);
    t.out8(io + RBCR0, 0);
    t.out8(io + RBCR1, 0);
    t.out8(io + CR, RWRITE | START);
    expect(t.in8(io + ISR) & ISR_RDC).toBe(ISR_RDC);
  });

  it('a remote read wraps from PSTOP to PSTART, so a packet that wraps in the ring reads out whole', () => {
    const r = pciRig();
    linuxOpen(r);
    const data = Uint8Array.from({ length: 512 }, (_, i) => i & 0xff);
    dmaWrite(r, (RX_STOP << 8) - 256, data.subarray(0, 256));
    dmaWrite(r, RX_START << 8, data.subarray(256));
    expect([...dmaRead(r, (RX_STOP << 8) - 256, 512)]).toEqual([...data]);
  });

  it('"send packet" (RD = 011) reads the packet at BNRY and moves BNRY to its next pointer', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    // The send-packet convention: BNRY points at the next packet to read.
    t.out8(io + BNRY, RX_START);
    const f = frame(MAC, 100, 5);
    r.nic.receive(f);
    t.out8(io + CR, NODMA | PAGE1);
    const curr = t.in8(io + CURR);
    t.out8(io + CR, NODMA);
    t.out8(io + ISR, 0xff);
    t.out8(io + CR, 0x18 | START);
    expect(r.nic.describe().rbcr).toBe(104); // loaded from the header: 100 bytes + FCS
    expect(r.nic.describe().rsar).toBe(RX_START << 8);
    const n = 104;
    const got = new Uint8Array(n);
    for (let i = 0; i < n; i += 2) {
      const w = t.in16(io + DATA);
      got[i] = w & 0xff;
      got[i + 1] = w >> 8;
    }
    expect(got[0] & RSR_PRX).toBe(RSR_PRX);
    expect(got[1]).toBe(curr);
    expect(got[2] | (got[3] << 8)).toBe(104);
    expect([...got.subarray(4, 104)]).toEqual([...f.subarray(0, 100)]);
    expect(t.in8(io + ISR) & ISR_RDC).toBe(ISR_RDC);
    expect(t.in8(io + BNRY)).toBe(curr);
  });
});

describe('NE2000: transmit', () => {
  it('sends TBCR bytes from TPSR on CR.TXP: onTransmit gets a copy, TSR.PTX, ISR.PTX, TXP cleared', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    const f = frame(OTHER, 98, 1);
    dmaWrite(r, TX_START << 8, f);
    t.out8(io + TPSR, TX_START);
    t.out8(io + TBCR0, f.length & 0xff);
    t.out8(io + TBCR1, f.length >> 8);
    t.out8(io + CR, NODMA | TRANS | START);
    expect(r.sent).toHaveLength(1);
    expect([...r.sent[0]]).toEqual([...f]);
    expect(t.in8(io + CR) & TRANS).toBe(0);
    expect(t.in8(io + TSR)).toBe(TSR_PTX);
    expect(t.in8(io + ISR) & ISR_PTX).toBe(ISR_PTX);
    // The buffer is reused at once (iPXE): the sent frame must not change.
    dmaWrite(r, TX_START << 8, new Uint8Array(98).fill(0xee));
    expect([...r.sent[0]]).toEqual([...f]);
    expect(r.nic.counters.txFrames).toBe(1);
    expect(r.nic.counters.txBytes).toBe(98);
  });

  it('does not pad: a 42-byte ARP leaves as 42 bytes (the wire pads)', () => {
    const r = pciRig();
    linuxOpen(r);
    const f = frame(OTHER, 42);
    dmaWrite(r, TX_START << 8, f);
    r.t.out8(r.io + TBCR0, 42);
    r.t.out8(r.io + TBCR1, 0);
    r.t.out8(r.io + CR, NODMA | TRANS | START);
    expect(r.sent[0].length).toBe(42);
  });

  it('ignores CR.TXP while the chip is stopped', () => {
    const r = pciRig();
    linuxOpen(r);
    r.t.out8(r.io + TBCR0, 60);
    r.t.out8(r.io + CR, NODMA | STOP);
    r.t.out8(r.io + CR, NODMA | TRANS | STOP);
    expect(r.sent).toHaveLength(0);
    expect(r.logs.some((m) => m.includes('stopped'))).toBe(true);
  });
});

describe('NE2000: receive into the ring', () => {
  it('stores the header {RSR, next, count} at CURR, the frame padded to 60 and its FCS; count = 60 + 4', () => {
    const r = pciRig();
    linuxOpen(r);
    const f = frame(MAC, 42, 9);
    r.nic.receive(f);
    const { t, io } = r;
    t.out8(io + CR, NODMA | PAGE1);
    expect(t.in8(io + CURR)).toBe(RX_START + 1);
    t.out8(io + CR, NODMA);
    expect(t.in8(io + ISR) & ISR_PRX).toBe(ISR_PRX);
    expect(t.in8(io + RSR)).toBe(RSR_PRX);
    const raw = dmaRead(r, RX_START << 8, 4 + 64);
    expect([...raw.subarray(0, 4)]).toEqual([RSR_PRX, RX_START + 1, 64, 0]);
    expect([...raw.subarray(4, 64)]).toEqual([...padded(f)]);
    const fcs = ethernetFcs(padded(f));
    expect(raw[64] | (raw[65] << 8) | (raw[66] << 16) | (raw[67] << 24)).toBe(fcs | 0);
  });

  it('the FCS is the IEEE CRC-32 (check value of "123456789")', () => {
    expect(ethernetFcs(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('delivers frames to a Linux-style reader, intact, in order, across the ring wrap', () => {
    const r = pciRig();
    linuxOpen(r);
    const frames: Uint8Array[] = [];
    const got: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const f = frame(MAC, 60 + ((i * 397) % 1455), i);
      frames.push(f);
      r.nic.receive(f);
      if (i % 3 === 2) got.push(...linuxReceiveAll(r));
    }
    got.push(...linuxReceiveAll(r));
    expect(got.map((f) => f.length)).toEqual(frames.map((f) => f.length));
    got.forEach((f, i) => expect([...f]).toEqual([...frames[i]]));
    expect(r.nic.counters.rxFrames).toBe(40);
    expect(r.nic.counters.rxBytes).toBe(frames.reduce((n, f) => n + f.length, 0));
  });

  it('writes a frame that reaches PSTOP on across PSTART (the chip wraps the local DMA)', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    t.out8(io + CR, NODMA | PAGE1 | STOP);
    t.out8(io + CURR, RX_STOP - 2);
    t.out8(io + CR, NODMA | START);
    t.out8(io + BNRY, RX_STOP - 3);
    const f = frame(MAC, 1000, 3);
    r.nic.receive(f);
    t.out8(io + CR, NODMA | PAGE1);
    const curr = t.in8(io + CURR);
    t.out8(io + CR, NODMA);
    expect(curr).toBe(RX_START + 2); // 4 + 1000 + 4 bytes = 4 pages: 0x7E, 0x7F, 0x4C, 0x4D
    const h = dmaRead(r, (RX_STOP - 2) << 8, 4);
    expect(h[1]).toBe(RX_START + 2);
    expect([...dmaRead(r, ((RX_STOP - 2) << 8) + 4, 1000)]).toEqual([...f]);
  });

  it('a BNRY left just before PSTART (an unwrapped "next - 1") counts as PSTOP - 1, not as a broken ring', () => {
    const r = pciRig();
    linuxOpen(r);
    r.t.out8(r.io + BNRY, RX_START - 1);
    for (let i = 0; i < 10; i++) r.nic.receive(frame(MAC, 1514, i));
    expect(r.nic.counters.rxFrames).toBe(8);
    expect(r.nic.counters.dropBadRing).toBe(0);
    expect(linuxReceiveAll(r)).toHaveLength(10);
  });

  it('sets RSR.PHY for broadcast and multicast frames', () => {
    const r = pciRig();
    linuxOpen(r);
    r.nic.receive(frame(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 60));
    expect(r.t.in8(r.io + RSR)).toBe(RSR_PRX | RSR_PHY);
  });

  it('drops frames while the chip is stopped or in monitor mode (counted; monitor tallies CNTR2)', () => {
    const r = pciRig();
    r.nic.receive(frame(MAC, 60));
    expect(r.nic.counters.dropStopped).toBe(1);
    linuxOpen(r, 0x20); // RCR.MON
    r.nic.receive(frame(MAC, 60));
    r.nic.receive(frame(MAC, 60));
    expect(r.nic.counters.dropStopped).toBe(3);
    expect(r.nic.counters.rxFrames).toBe(0);
    expect(r.nic.peek(CNTR2, 0)).toBe(2);
    expect(r.nic.peek(CNTR2, 0)).toBe(2); // peek does not clear
    expect(r.t.in8(r.io + CNTR2)).toBe(2);
    expect(r.t.in8(r.io + CNTR2)).toBe(0); // read-to-clear
  });

  it('drops malformed frames: empty, shorter than a header, longer than 1518 bytes', () => {
    const r = pciRig();
    linuxOpen(r);
    r.nic.receive(new Uint8Array(0));
    r.nic.receive(new Uint8Array(13));
    r.nic.receive(frame(MAC, NE2000_MAX_FRAME + 1));
    expect(r.nic.counters.dropMalformed).toBe(3);
    r.nic.receive(frame(MAC, NE2000_MAX_FRAME));
    expect(r.nic.counters.rxFrames).toBe(1);
  });
});

describe('NE2000: the RCR address filter', () => {
  const bcast = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  const mcast = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0x01);

  it('takes frames to PAR0-5, refuses other unicast', () => {
    const r = pciRig();
    linuxOpen(r, 0x00);
    r.nic.receive(frame(MAC, 60));
    r.nic.receive(frame(OTHER, 60));
    expect(r.nic.counters.rxFrames).toBe(1);
    expect(r.nic.counters.dropFiltered).toBe(1);
    // PAR, not the PROM, decides.
    r.t.out8(r.io + CR, NODMA | PAGE1);
    r.t.out8(r.io + 6, 0x99);
    r.t.out8(r.io + CR, NODMA);
    r.nic.receive(frame(OTHER, 60));
    expect(r.nic.counters.rxFrames).toBe(2);
  });

  it('takes broadcast only with RCR.AB', () => {
    const r = pciRig();
    linuxOpen(r, 0x00);
    r.nic.receive(frame(bcast, 60));
    expect(r.nic.counters.dropFiltered).toBe(1);
    r.t.out8(r.io + RCR, 0x04);
    r.nic.receive(frame(bcast, 60));
    expect(r.nic.counters.rxFrames).toBe(1);
  });

  it('takes multicast with RCR.AM when the MAR bit of its CRC hash is set', () => {
    // Hash indexes computed independently (zlib CRC-32, bit-reversed, top 6 bits): as Linux's 8390 make_mc_bits.
    expect(multicastHashIndex(mcast)).toBe(31);
    expect(multicastHashIndex(Uint8Array.of(0x33, 0x33, 0, 0, 0, 1))).toBe(62);
    expect(multicastHashIndex(Uint8Array.of(0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa))).toBe(43);
    const r = pciRig();
    linuxOpen(r, 0x08);
    r.nic.receive(frame(mcast, 60));
    expect(r.nic.counters.dropFiltered).toBe(1);
    r.t.out8(r.io + CR, NODMA | PAGE1);
    r.t.out8(r.io + 8 + (31 >> 3), 1 << (31 & 7));
    r.t.out8(r.io + CR, NODMA);
    r.nic.receive(frame(mcast, 60));
    expect(r.nic.counters.rxFrames).toBe(1);
    r.nic.receive(frame(Uint8Array.of(0x33, 0x33, 0, 0, 0, 1), 60)); // hash 62: bit not set
    expect(r.nic.counters.dropFiltered).toBe(2);
    r.t.out8(r.io + RCR, 0x00); // AM off: even a matching hash is refused
    r.nic.receive(frame(mcast, 60));
    expect(r.nic.counters.dropFiltered).toBe(3);
  });

  it('takes everything with RCR.PRO', () => {
    const r = pciRig();
    linuxOpen(r, 0x10);
    r.nic.receive(frame(OTHER, 60));
    r.nic.receive(frame(mcast, 60));
    r.nic.receive(frame(bcast, 60));
    expect(r.nic.counters.rxFrames).toBe(3);
  });
});

describe('NE2000: the queue in front of the ring, and overflow', () => {
  it('holds frames the ring cannot take without raising OVW, and delivers them all when BNRY moves', () => {
    const r = pciRig();
    linuxOpen(r);
    const frames = Array.from({ length: 30 }, (_, i) => frame(MAC, 1514, i));
    for (const f of frames) r.nic.receive(f);
    // 52 pages of ring hold 8 frames of 6 pages (one page always stays free).
    expect(r.nic.counters.rxFrames).toBe(8);
    expect(r.nic.queuedFrames).toBe(22);
    expect(r.t.in8(r.io + ISR) & ISR_OVW).toBe(0);
    const got = linuxReceiveAll(r);
    expect(got).toHaveLength(30);
    got.forEach((f, i) => expect([...f]).toEqual([...frames[i]]));
    expect(r.nic.counters.dropRingFull).toBe(0);
  });

  it('never fills the ring so that CURR reaches BNRY: the frame that would do it waits', () => {
    const r = pciRig();
    linuxOpen(r);
    // BNRY = 0x7F, CURR = 0x4C: 51 pages free; one-page frames take 50 of them.
    for (let i = 0; i < 51; i++) r.nic.receive(frame(MAC, 60, i));
    expect(r.nic.counters.rxFrames).toBe(50);
    expect(r.nic.queuedFrames).toBe(1);
    r.t.out8(r.io + CR, NODMA | PAGE1);
    expect(r.t.in8(r.io + CURR)).toBe(RX_STOP - 2);
    r.t.out8(r.io + CR, NODMA);
    expect(linuxReceiveAll(r)).toHaveLength(51);
  });

  it('frames waiting for room enter the ring a moment after the BNRY write, not inside it', () => {
    const r = pciRig();
    linuxOpen(r);
    for (let i = 0; i < 9; i++) r.nic.receive(frame(MAC, 1514, i));
    expect(r.nic.queuedFrames).toBe(1);
    const { t, io } = r;
    dmaRead(r, RX_START << 8, 4);
    t.out8(io + BNRY, RX_START + 5); // the first frame taken
    expect(r.nic.queuedFrames).toBe(1);
    expect(r.nic.counters.rxFrames).toBe(8);
    t.advance(0);
    expect(r.nic.queuedFrames).toBe(0);
    expect(r.nic.counters.rxFrames).toBe(9);
  });

  it('acknowledging PRX with frames still unread leaves PRX set (Linux takes 9 frames per pass)', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    for (let i = 0; i < 20; i++) r.nic.receive(frame(MAC, 60, i));
    expect(linuxReceive(r)).toHaveLength(9);
    expect(t.in8(io + ISR) & ISR_PRX).toBe(ISR_PRX);
    expect(t.irqLevel(PCI_IRQ)).toBe(1);
    expect(linuxReceive(r)).toHaveLength(9);
    expect(t.in8(io + ISR) & ISR_PRX).toBe(ISR_PRX);
    expect(linuxReceive(r)).toHaveLength(2);
    expect(t.in8(io + ISR) & ISR_PRX).toBe(0);
    expect(t.irqLevel(PCI_IRQ)).toBe(0);
    // An empty ring by the datasheet's convention (BNRY = CURR) is empty too.
    r.nic.receive(frame(MAC, 60, 99));
    t.out8(io + CR, NODMA | PAGE1);
    const curr = t.in8(io + CURR);
    t.out8(io + CR, NODMA);
    t.out8(io + BNRY, curr);
    t.out8(io + ISR, ISR_PRX);
    expect(t.in8(io + ISR) & ISR_PRX).toBe(0);
  });

  it('keeps arrival order: a new frame waits behind queued ones even when it would fit', () => {
    const r = pciRig();
    linuxOpen(r);
    for (let i = 0; i < 9; i++) r.nic.receive(frame(MAC, 1514, i));
    expect(r.nic.queuedFrames).toBe(1);
    r.nic.receive(frame(MAC, 60, 99)); // would fit in the ring's last pages
    expect(r.nic.queuedFrames).toBe(2);
    const got = linuxReceiveAll(r);
    expect(got.map((f) => f[14])).toEqual([...Array.from({ length: 9 }, (_, i) => (i + 14) & 0xff), (99 + 14) & 0xff]);
  });

  it('when the queue overflows: drops (counted), RSR.MPA, CNTR2, and ISR.OVW with its interrupt', () => {
    const r = pciRig();
    linuxOpen(r);
    for (let i = 0; i < 8 + RX_QUEUE_FRAMES + 3; i++) r.nic.receive(frame(MAC, 1514, i));
    expect(r.nic.queuedFrames).toBe(RX_QUEUE_FRAMES);
    expect(r.nic.counters.dropRingFull).toBe(3);
    expect(r.t.in8(r.io + ISR) & ISR_OVW).toBe(ISR_OVW);
    expect(r.t.in8(r.io + RSR) & RSR_MPA).toBe(RSR_MPA);
    expect(r.t.irqLevel(PCI_IRQ)).toBe(1);
    expect(r.t.in8(r.io + CNTR2)).toBe(3);
  });

  it('CNTR2 raises ISR.CNT at 128 and stops at 192', () => {
    const r = pciRig();
    linuxOpen(r, 0x20);
    for (let i = 0; i < 127; i++) r.nic.receive(frame(MAC, 60));
    expect(r.t.in8(r.io + ISR) & ISR_CNT).toBe(0);
    r.nic.receive(frame(MAC, 60));
    expect(r.t.in8(r.io + ISR) & ISR_CNT).toBe(ISR_CNT);
    for (let i = 0; i < 100; i++) r.nic.receive(frame(MAC, 60));
    expect(r.t.in8(r.io + CNTR2)).toBe(192);
  });

  it('frames arriving in loopback wait and are delivered when TCR returns to normal', () => {
    const r = pciRig();
    linuxOpen(r);
    r.t.out8(r.io + TCR, 0x02);
    r.nic.receive(frame(MAC, 100, 1));
    expect(r.nic.queuedFrames).toBe(1);
    r.t.out8(r.io + TCR, 0x00);
    expect(r.nic.queuedFrames).toBe(1); // it arrives a moment later, not inside the port write
    r.t.advance(0);
    expect(r.nic.queuedFrames).toBe(0);
    expect(linuxReceiveAll(r)).toHaveLength(1);
  });

  it('a chip reset drops what waits (counted as stopped)', () => {
    const r = pciRig();
    linuxOpen(r);
    for (let i = 0; i < 10; i++) r.nic.receive(frame(MAC, 1514, i));
    r.t.in8(r.io + RESET);
    expect(r.nic.queuedFrames).toBe(0);
    expect(r.nic.counters.dropStopped).toBe(2);
  });
});

describe('NE2000: loopback (TCR.LB)', () => {
  it.each([0x02, 0x04, 0x06])('TCR 0x%s: a transmitted frame is received into the ring, not sent', (tcr) => {
    const r = pciRig();
    linuxOpen(r);
    r.t.out8(r.io + TCR, tcr);
    const f = frame(MAC, 80, 4);
    dmaWrite(r, TX_START << 8, f);
    r.t.out8(r.io + TBCR0, 80);
    r.t.out8(r.io + TBCR1, 0);
    r.t.out8(r.io + CR, NODMA | TRANS | START);
    expect(r.sent).toHaveLength(0);
    expect(r.t.in8(r.io + ISR) & (ISR_PTX | ISR_PRX)).toBe(ISR_PTX | ISR_PRX);
    const got = linuxReceive(r);
    expect(got).toHaveLength(1);
    expect([...got[0].subarray(0, 80)]).toEqual([...f]);
  });
});

describe('NE2000: interrupts', () => {
  it('PCI INTA# follows (ISR & IMR & 0x7F) != 0; writing 1s to ISR clears', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    expect(t.irqLevel(PCI_IRQ)).toBe(0);
    r.nic.receive(frame(MAC, 60));
    expect(t.irqLevel(PCI_IRQ)).toBe(1);
    t.out8(io + IMR, 0);
    expect(t.irqLevel(PCI_IRQ)).toBe(0);
    t.out8(io + IMR, 0x3f);
    expect(t.irqLevel(PCI_IRQ)).toBe(1);
    expect(linuxReceive(r)).toHaveLength(1); // reads the frame, then writes PRX to ISR
    expect(t.in8(io + ISR) & ISR_PRX).toBe(0);
    expect(t.irqLevel(PCI_IRQ)).toBe(0);
    // RST never interrupts.
    t.out8(io + IMR, 0x7f);
    t.in8(io + RESET);
    t.out8(io + IMR, 0x7f);
    expect(t.in8(io + ISR)).toBe(ISR_RST);
    expect(t.irqLevel(PCI_IRQ)).toBe(0);
  });

  it('ISA: the same registers at 0x300 drive IRQ 9', () => {
    const r = isaRig();
    linuxOpen(r);
    r.nic.receive(frame(MAC, 70, 2));
    expect(r.t.irqLevel(9)).toBe(1);
    const got = linuxReceive(r);
    expect([...got[0].subarray(0, 70)]).toEqual([...frame(MAC, 70, 2)]);
    expect(r.t.irqLevel(9)).toBe(0);
    const f = frame(OTHER, 64);
    dmaWrite(r, TX_START << 8, f, 2);
    r.t.out8(r.io + TBCR0, 64);
    r.t.out8(r.io + TBCR1, 0);
    r.t.out8(r.io + CR, NODMA | TRANS | START);
    expect([...r.sent[0]]).toEqual([...f]);
    expect(r.t.irqLevel(9)).toBe(1);
    expect(r.t.stats('ne2k').portWrites).toBeGreaterThan(0);
  });
});

describe('NE2000: the ISA card as Linux ne.c probes it', () => {
  it('CNTR0 check, reset, the PROM in byte mode (doubled bytes: word-wide card, 0x57 signature), IRQ autoprobe by a zero-length remote read', () => {
    const r = isaRig();
    const { t, io } = r;
    expect(t.in8(io)).not.toBe(0xff);
    t.out8(io, NODMA | PAGE1 | STOP);
    t.out8(io + 0x0d, 0xff);
    t.out8(io, NODMA);
    t.in8(io + CNTR0);
    expect(t.in8(io + CNTR0)).toBe(0);
    t.out8(io + RESET, t.in8(io + RESET));
    expect(t.in8(io + ISR) & ISR_RST).toBe(ISR_RST);
    t.out8(io + ISR, 0xff);
    // ne.c's SA PROM read: byte-wide DCR, 32 bytes, pairs compared to find a 16-bit card.
    t.out8(io, NODMA | START | STOP);
    t.out8(io + DCR, 0x48);
    t.out8(io + RBCR0, 0);
    t.out8(io + RBCR1, 0);
    t.out8(io + IMR, 0);
    t.out8(io + ISR, 0xff);
    t.out8(io + RCR, 0x20);
    t.out8(io + TCR, 0x02);
    t.out8(io + RBCR0, 32);
    t.out8(io + RBCR1, 0);
    t.out8(io + RSAR0, 0);
    t.out8(io + RSAR1, 0);
    t.out8(io, RREAD | START);
    const sa = Array.from({ length: 32 }, () => t.in8(io + DATA));
    for (let i = 0; i < 32; i += 2) expect(sa[i]).toBe(sa[i + 1]);
    const words = Array.from({ length: 16 }, (_, i) => sa[i + i]);
    expect(words.slice(0, 6)).toEqual([...MAC]);
    expect(words[14]).toBe(0x57);
    expect(words[15]).toBe(0x57);
    expect(t.in8(io + RSR) & 0x40).toBe(0x40); // RSR.DIS while in monitor mode
    // IRQ autoprobe: enable RDC (and OVW), trigger a zero-length remote read.
    t.out8(io + ISR, 0xff);
    t.out8(io + IMR, 0x50);
    t.out8(io + RBCR0, 0);
    t.out8(io + RBCR1, 0);
    t.out8(io, RREAD | START);
    expect(r.t.irqLevel(9)).toBe(1);
    t.out8(io + IMR, 0);
    expect(r.t.irqLevel(9)).toBe(0);
  });

  it('answers at another port and IRQ when told, and nothing at 0x300 then', () => {
    const t = createTestBus();
    const nic = new Ne2000({ mac: MAC, model: 'isa', isa: { port: 0x320, irq: 10 } });
    t.attach(nic);
    expect(t.in8(0x300)).toBe(0xff);
    expect(t.in8(0x320)).toBe(0x21);
    expect(t.in8(0x320 + 0x0a)).toBe(0x50);
  });
});

describe('NE2000: registers on page 2 and the debugger view', () => {
  it('page 2 reads back PSTART, PSTOP, TPSR, RCR, TCR, DCR, IMR', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    t.out8(io + CR, NODMA | PAGE2);
    expect(t.in8(io + 0x01)).toBe(RX_START);
    expect(t.in8(io + 0x02)).toBe(RX_STOP);
    expect(t.in8(io + 0x04)).toBe(TX_START);
    expect(t.in8(io + 0x0c)).toBe(0x04);
    expect(t.in8(io + 0x0d)).toBe(0x00);
    expect(t.in8(io + 0x0e)).toBe(0x49);
    expect(t.in8(io + 0x0f)).toBe(0x3f);
    t.out8(io + CR, NODMA);
  });

  it('peek() and describe() have no side effects', () => {
    const r = pciRig();
    linuxOpen(r);
    r.t.out8(r.io + RBCR0, 4);
    r.t.out8(r.io + RBCR1, 0);
    r.t.out8(r.io + RSAR0, 0);
    r.t.out8(r.io + RSAR1, 0);
    const before = JSON.stringify(r.nic.describe());
    expect(r.nic.peek(DATA)).toBe(MAC[0] | (MAC[0] << 8));
    expect(r.nic.peek(DATA)).toBe(MAC[0] | (MAC[0] << 8));
    expect(r.nic.peek(RESET)).toBe(0);
    expect(r.nic.peek(CURR, 1)).toBe(RX_START);
    expect(JSON.stringify(r.nic.describe())).toBe(before);
    expect(r.nic.describe().par).toBe('52:54:00:12:34:56');
  });
});

describe('NE2000: state', () => {
  it('save -> load -> save is identical, queued frames included, and the IRQ line is driven again', () => {
    const r = pciRig();
    linuxOpen(r);
    for (let i = 0; i < 12; i++) r.nic.receive(frame(MAC, 1514, i));
    expect(r.nic.queuedFrames).toBe(4);
    const saved = r.nic.saveState();
    const r2 = pciRig();
    expect(r2.t.irqLevel(PCI_IRQ)).toBe(0);
    r2.nic.loadState(saved);
    expect(r2.t.irqLevel(PCI_IRQ)).toBe(1);
    expect(r2.nic.saveState()).toEqual(saved);
    // And the loaded device runs on: all 12 frames come out of it.
    const got = linuxReceiveAll(r2);
    expect(got).toHaveLength(12);
    // The saved copy is deep: running r2 did not change it.
    expect((saved.rxQueue as Uint8Array[]).length).toBe(4);
  });

  it('refuses a state of another version or shape with a clear error', () => {
    const r = pciRig();
    const saved = r.nic.saveState();
    expect(() => r.nic.loadState({ ...saved, $version: 2 })).toThrow(/version 2/);
    expect(() => r.nic.loadState({ ...saved, mem: new Uint8Array(10) })).toThrow(/mem/);
    expect(() => r.nic.loadState({ ...saved, isr: 300 })).toThrow(/isr/);
    expect(() => r.nic.loadState({ ...saved, rxQueue: [new Uint8Array(5000)] })).toThrow(/rxQueue/);
  });
});

describe('NE2000: guest-triggered bugs from QEMU history', () => {
  it('CVE-2007-5729: a transmit count larger than the buffer is refused (TSR.ABT, ISR.TXE, counted, logged)', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    t.out8(io + TPSR, 0xbf);
    t.out8(io + TBCR0, 0xff);
    t.out8(io + TBCR1, 0xff);
    t.out8(io + CR, NODMA | TRANS | START);
    expect(r.sent).toHaveLength(0);
    expect(t.in8(io + TSR)).toBe(TSR_ABT);
    expect(t.in8(io + ISR) & ISR_TXE).toBe(ISR_TXE);
    expect(t.irqLevel(PCI_IRQ)).toBe(1);
    expect(r.nic.counters.txErrors).toBe(1);
    expect(r.logs.some((m) => /transmit refused/.test(m))).toBe(true);
    // A TPSR outside the buffer (the NetWare hack QEMU carried) and a frame just past the end.
    t.out8(io + TPSR, 0x10);
    t.out8(io + TBCR0, 60);
    t.out8(io + TBCR1, 0);
    t.out8(io + CR, NODMA | TRANS | START);
    t.out8(io + TPSR, 0xbf);
    t.out8(io + TBCR0, 0x01);
    t.out8(io + TBCR1, 0x01);
    t.out8(io + CR, NODMA | TRANS | START);
    expect(r.nic.counters.txErrors).toBe(3);
    // The last 256 bytes exactly are fine.
    t.out8(io + TBCR0, 0x00);
    t.out8(io + TBCR1, 0x01);
    t.out8(io + CR, NODMA | TRANS | START);
    expect(r.sent).toHaveLength(1);
    expect(r.sent[0].length).toBe(256);
  });

  it('CVE-2015-5279: ring pointers outside the memory refuse frames (counted, logged), no write out of bounds', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    t.out8(io + CR, NODMA | STOP);
    t.out8(io + PSTART, 0xf0);
    t.out8(io + PSTOP, 0xff);
    t.out8(io + BNRY, 0xf0);
    t.out8(io + CR, NODMA | PAGE1 | STOP);
    t.out8(io + CURR, 0xfe);
    t.out8(io + CR, NODMA | START);
    const mem = r.nic.state.mem.slice();
    r.nic.receive(frame(MAC, 1514));
    expect(r.nic.counters.dropBadRing).toBe(1);
    expect(r.nic.state.mem).toEqual(mem);
    expect(r.logs.some((m) => /unusable receive ring/.test(m))).toBe(true);
  });

  it('CVE-2015-5278: CURR past PSTOP refuses frames instead of looping', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    t.out8(io + CR, NODMA | PAGE1);
    t.out8(io + CURR, RX_STOP + 5);
    t.out8(io + CR, NODMA);
    r.nic.receive(frame(MAC, 200));
    expect(r.nic.counters.dropBadRing).toBe(1);
    expect(r.nic.counters.rxFrames).toBe(0);
    // Back inside the ring, reception resumes.
    t.out8(io + CR, NODMA | PAGE1);
    t.out8(io + CURR, RX_START);
    t.out8(io + CR, NODMA);
    r.nic.receive(frame(MAC, 200));
    expect(r.nic.counters.rxFrames).toBe(1);
  });

  it('CVE-2015-8743: a 32-bit data port access at the end of the memory stays inside it', () => {
    const r = pciRig();
    const { t, io } = r;
    t.out8(io + DCR, 0x49);
    t.out8(io + RBCR0, 8);
    t.out8(io + RBCR1, 0);
    t.out8(io + RSAR0, 0xfe);
    t.out8(io + RSAR1, 0xbf);
    t.out8(io + CR, RWRITE | START);
    t.out32(io + DATA, 0x44332211);
    expect(r.nic.state.mem[0x7ffe]).toBe(0x11);
    expect(r.nic.state.mem[0x7fff]).toBe(0x22);
    expect(r.nic.state.mem.length).toBe(0x8000);
    t.out8(io + RSAR0, 0xfe);
    t.out8(io + RSAR1, 0xbf);
    t.out8(io + CR, RREAD | START);
    expect(t.in32(io + DATA)).toBe(0xffff2211);
    // And at the very top of the address space RSAR wraps to the PROM.
    t.out8(io + RSAR0, 0xfe);
    t.out8(io + RSAR1, 0xff);
    t.out8(io + CR, RREAD | START);
    expect(t.in32(io + DATA)).toBe((0xffff | (MAC[0] << 16) | (MAC[0] << 24)) >>> 0);
  });

  it('CVE-2016-2841: PSTART >= PSTOP neither hangs nor writes; frames are refused and counted', () => {
    const r = pciRig();
    linuxOpen(r);
    const { t, io } = r;
    t.out8(io + CR, NODMA | STOP);
    t.out8(io + PSTART, 0x60);
    t.out8(io + PSTOP, 0x60);
    t.out8(io + CR, NODMA | START);
    for (let i = 0; i < 5; i++) r.nic.receive(frame(MAC, 100));
    t.out8(io + PSTOP, 0x50);
    r.nic.receive(frame(MAC, 100));
    expect(r.nic.counters.dropBadRing).toBe(6);
    // The remote DMA with PSTART >= PSTOP does not wrap, and does not loop.
    t.out8(io + RBCR0, 0);
    t.out8(io + RBCR1, 0x10);
    t.out8(io + RSAR0, 0);
    t.out8(io + RSAR1, 0x5f);
    t.out8(io + CR, RREAD | START);
    for (let i = 0; i < 0x800; i++) t.in32(io + DATA);
    expect(t.in8(io + ISR) & ISR_RDC).toBe(ISR_RDC);
  });

  it('CVE-2018-10839: a huge frame from the backend is dropped as malformed and logged', () => {
    const r = pciRig();
    linuxOpen(r);
    r.nic.receive(new Uint8Array(70000).fill(0xff));
    r.nic.receive(frame(MAC, 4000));
    expect(r.nic.counters.dropMalformed).toBe(2);
    expect(r.nic.counters.rxFrames).toBe(0);
    expect(r.logs.some((m) => /70000 bytes dropped/.test(m))).toBe(true);
    // A frame larger than a tiny ring (but legal on the wire) overflows instead of waiting forever.
    const { t, io } = r;
    t.out8(io + CR, NODMA | STOP);
    t.out8(io + PSTART, 0x40);
    t.out8(io + PSTOP, 0x43);
    t.out8(io + BNRY, 0x42);
    t.out8(io + CR, NODMA | PAGE1 | STOP);
    t.out8(io + CURR, 0x40);
    t.out8(io + CR, NODMA | START);
    r.nic.receive(frame(MAC, 1514));
    expect(r.nic.queuedFrames).toBe(0);
    expect(r.nic.counters.dropRingFull).toBe(1);
    r.nic.receive(frame(MAC, 200));
    expect(r.nic.counters.rxFrames).toBe(1);
  });
});

describe('NE2000: option ROM patch', () => {
  /** A synthetic 2 KiB PCI expansion ROM: 55 AA, length 4 x 512, PCIR at 0x40 with 0000:0000. */
  function syntheticRom(): Uint8Array {
    const rom = new Uint8Array(4096);
    rom[0] = 0x55;
    rom[1] = 0xaa;
    rom[2] = 4;
    rom[0x18] = 0x40;
    rom[0x19] = 0x00;
    rom.set([0x50, 0x43, 0x49, 0x52], 0x40); // "PCIR"
    for (let i = 0x60; i < 0x700; i++) rom[i] = (i * 13) & 0xff;
    rom[0x900] = 0x77; // beyond the declared image: left alone
    return rom;
  }

  const sum = (a: Uint8Array, n: number) => a.subarray(0, n).reduce((s, b) => s + b, 0) & 0xff;

  it('sets the PCIR vendor/device and makes the declared image sum to 0', () => {
    const rom = syntheticRom();
    const out = patchOptionRom(rom, 0x10ec, 0x8029);
    expect(out).not.toBe(rom);
    expect(rom[0x44]).toBe(0); // the input is untouched
    expect(out[0x44] | (out[0x45] << 8)).toBe(0x10ec);
    expect(out[0x46] | (out[0x47] << 8)).toBe(0x8029);
    expect(sum(out, 2048)).toBe(0);
    expect(out.length).toBe(rom.length);
    expect(out[0x900]).toBe(0x77);
    expect([...out.subarray(0x60, 0x700)]).toEqual([...rom.subarray(0x60, 0x700)]);
  });

  it('refuses what is not a PCI expansion ROM', () => {
    expect(() => patchOptionRom(new Uint8Array(4096), 1, 2)).toThrow(/55 AA/);
    const noPcir = syntheticRom();
    noPcir[0x40] = 0;
    expect(() => patchOptionRom(noPcir, 1, 2)).toThrow(/PCIR/);
    const tooLong = syntheticRom();
    tooLong[2] = 100;
    expect(() => patchOptionRom(tooLong, 1, 2)).toThrow(/length/);
  });

  it('the constructor patches the ROM it is given, which then sits behind the ROM BAR', () => {
    const t = createTestBus();
    const nic = new Ne2000({ mac: MAC, rom: syntheticRom() });
    expect(() => new Ne2000({ mac: MAC, rom: new Uint8Array(2048) })).toThrow(/option ROM/);
    t.plugPci(nic, 3);
    t.cfgWrite32(3, 0, 0x30, 0xfffff800);
    expect(t.cfgRead32(3, 0, 0x30) & 0xfffff800).not.toBe(0);
    t.cfgWrite32(3, 0, 0x30, 0xfebc0001);
    t.cfgWrite(3, 0, 0x04, 2, 0x0002);
    expect(t.mmioRead16(0xfebc0000)).toBe(0xaa55);
    expect(t.mmioRead16(0xfebc0044)).toBe(0x10ec);
    expect(t.mmioRead16(0xfebc0046)).toBe(0x8029);
    let sum = 0;
    for (let i = 0; i < 2048; i++) sum += t.mmioRead8(0xfebc0000 + i);
    expect(sum & 0xff).toBe(0);
  });

  const realRom = new URL('../../../public/images/firmware/pxe-ne2k_pci.rom', import.meta.url);
  it.skipIf(!existsSync(realRom))("Debian's pxe-ne2k_pci.rom: IDs patched in, checksum fixed", () => {
    const rom = new Uint8Array(readFileSync(realRom));
    const pcir = rom[0x18] | (rom[0x19] << 8);
    const out = patchOptionRom(rom, 0x10ec, 0x8029);
    expect(String.fromCharCode(...out.subarray(pcir, pcir + 4))).toBe('PCIR');
    expect(out[pcir + 4] | (out[pcir + 5] << 8)).toBe(0x10ec);
    expect(out[pcir + 6] | (out[pcir + 7] << 8)).toBe(0x8029);
    expect(sum(out, rom[2] * 512)).toBe(0);
  });
});
