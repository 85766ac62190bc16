/**
 * The NE2000 under a hostile guest and a hostile network: a million random port
 * accesses (offsets 0x00-0x1F, widths 1/2/4, random values, so random pages, remote
 * DMA commands, ring pointers, resets and transmits) interleaved with random frames
 * of 0..3000 bytes, from a seeded PRNG so any failure replays. From time to time the
 * chip is set up as Linux sets it up, so frames really reach the ring between bursts
 * of noise, and mostly the noise keeps to what a driver touches (remote DMA, transmit,
 * BNRY, ISR/IMR, loopback) so that the ring, the queue and its overflow are reached. Asserted after every access: nothing throws, the interrupt line is what
 * (ISR & IMR & 0x7F) says, registers stay in range; every 1000 accesses: the counters
 * never go down and the queue stays bounded; at the end, the state round-trips.
 */
import { describe, expect, it } from 'vitest';
import { createTestBus } from '../bus/test-harness.ts';
import { ns8390Open } from './ne2000.testing.ts';
import { Ne2000, type Ne2000Counters, RX_QUEUE_FRAMES } from './ne2000.ts';
import { xorshift32 } from '../testing/xorshift.ts';

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const BAR0 = 0xc100;
const IRQ = 11;


function setup() {
  const t = createTestBus();
  const nic = new Ne2000({ mac: MAC });
  t.plugPci(nic, 3);
  t.cfgWrite32(3, 0, 0x10, BAR0 | 1);
  t.cfgWrite(3, 0, 0x04, 2, 0x0001);
  t.pci.setPirq(2, IRQ);
  let sent = 0;
  nic.onTransmit = (f) => {
    if (!(f instanceof Uint8Array) || f.length === 0 || f.length > 1518) throw new Error(`bad transmitted frame of ${f.length} bytes`);
    sent++;
  };
  return { t, nic, sent: () => sent };
}

/** What Linux's ne2k-pci open does (ne2000.testing.ts), here with broadcast, multicast and promiscuous receive. */
function linuxOpen(t: ReturnType<typeof createTestBus>): void {
  ns8390Open(t, BAR0, MAC, 0x1c);
}

const COUNTERS: (keyof Ne2000Counters)[] = [
  'rxFrames', 'rxBytes', 'txFrames', 'txBytes', 'dropRingFull', 'dropStopped', 'dropFiltered', 'dropMalformed', 'dropBadRing', 'txErrors',
];

describe('NE2000 fuzz', () => {
  it('survives 1,000,000 random port accesses interleaved with random frames', () => {
    const { t, nic, sent } = setup();
    const rnd = xorshift32(0x8029);
    const ACCESSES = 1_000_000;
    let last = { ...nic.counters };
    let frames = 0;
    let resets = 0;
    const access = (offset: number, width: 1 | 2 | 4, write: boolean, value: number) => {
      if (write) {
        if (width === 1) t.out8(BAR0 + offset, value & 0xff);
        else if (width === 2) t.out16(BAR0 + offset, value & 0xffff);
        else t.out32(BAR0 + offset, value);
      } else if (width === 1) t.in8(BAR0 + offset);
      else if (width === 2) t.in16(BAR0 + offset);
      else t.in32(BAR0 + offset);
    };
    const randomFrame = () => {
      const size = rnd() % 3001;
      const f = new Uint8Array(size);
      const kind = rnd() & 3;
      for (let i = 0; i < size; i++) f[i] = rnd() & 0xff;
      if (size >= 6) {
        if (kind <= 1) f.set(MAC);
        else if (kind === 2) f.fill(0xff, 0, 6);
        else f[0] |= 1;
      }
      nic.receive(f);
      frames++;
    };
    for (let n = 0; n < ACCESSES; n++) {
      const r = rnd();
      if (n % 20_000 === 0) {
        linuxOpen(t);
        resets++;
      }
      if (n % 20_000 < 15_000) {
        // Driver-shaped noise: the chip stays started on page 0 with a sane ring, while
        // the remote DMA, transmit, BNRY, ISR/IMR and TCR loopback take random values,
        // so frames keep reaching the ring, the queue and its overflow.
        const op = r & 7;
        const v = rnd();
        if (op === 0) randomFrame();
        else if (op <= 3) access(0x10 + ((r >>> 3) & 7), ([1, 2, 4, 4] as const)[(r >>> 6) & 3], ((r >>> 8) & 1) === 1, v);
        else if (op === 4) {
          const reg = [0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0d, 0x0f][(r >>> 3) % 10];
          t.out8(BAR0 + reg, reg === 0x0d ? v & 0x06 : reg === 0x06 || reg === 0x0b ? v & 0x07 : v & 0xff);
        } else if (op === 5) t.out8(BAR0, 0x02 | (v & 0x3c));
        else if (op === 6) t.out8(BAR0 + 0x03, 0x4c + (v % 52));
        else t.in8(BAR0 + ((r >>> 3) & 0x0f));
      } else if ((r & 63) === 0) {
        randomFrame();
      } else {
        // Anything at all; the reset port rarely, or the chip would never get going.
        let offset = (r >>> 6) & 0x1f;
        if (offset >= 0x18 && ((r >>> 11) & 15) !== 0) offset &= 0x0f;
        access(offset, ([1, 1, 2, 4] as const)[(r >>> 15) & 3], ((r >>> 17) & 1) === 1, rnd());
      }
      const s = nic.state;
      const want = (s.isr & s.imr & 0x7f) !== 0 ? 1 : 0;
      if (t.irqLevel(IRQ) !== want) throw new Error(`access ${n}: IRQ ${t.irqLevel(IRQ)} but ISR ${s.isr.toString(16)} IMR ${s.imr.toString(16)}`);
      if (s.rsar < 0 || s.rsar > 0xffff || s.rbcr < 0 || s.rbcr > 0xffff || s.tbcr > 0xffff) throw new Error(`access ${n}: a counter register out of range`);
      if (n % 1000 === 0) {
        const now = nic.counters;
        for (const k of COUNTERS) if (now[k] < last[k]) throw new Error(`access ${n}: counter ${k} went down`);
        if (nic.queuedFrames > RX_QUEUE_FRAMES) throw new Error(`access ${n}: queue of ${nic.queuedFrames}`);
        if (s.mem.length !== 0x8000 || s.prom.length !== 32) throw new Error(`access ${n}: memory resized`);
        last = now;
      }
    }
    const c = nic.counters;
    // The run did exercise the paths it claims to.
    expect(frames).toBeGreaterThan(50_000);
    expect(c.rxFrames).toBeGreaterThan(10_000);
    expect(c.dropRingFull).toBeGreaterThan(0);
    expect(resets).toBe(50);
    expect(c.rxFrames).toBeGreaterThan(0);
    expect(c.dropMalformed).toBeGreaterThan(0);
    expect(c.dropFiltered + c.dropStopped + c.dropBadRing).toBeGreaterThan(0);
    expect(c.txFrames + c.txErrors).toBeGreaterThan(0);
    // Looped-back frames count as transmitted without reaching onTransmit.
    expect(sent()).toBeLessThanOrEqual(c.txFrames);
    const saved = nic.saveState();
    const again = setup();
    again.nic.loadState(saved);
    expect(again.nic.saveState()).toEqual(saved);
  }, 60_000);

  it('a 32-bit data port access moves exactly what two 16-bit (or four 8-bit) accesses move', () => {
    // Two chips fed the same random driver-shaped accesses; on the data port, A uses 32-bit
    // accesses (and its 4-byte fast path where it applies) and B the same bytes in the
    // transfer unit (two words, or four bytes). They must never differ.
    const a = setup();
    const b = setup();
    linuxOpen(a.t);
    linuxOpen(b.t);
    const rnd = xorshift32(0x32);
    const both = (f: (t: ReturnType<typeof createTestBus>) => void) => {
      f(a.t);
      f(b.t);
    };
    for (let n = 0; n < 200_000; n++) {
      const r = rnd();
      const v = rnd();
      const op = r & 7;
      if (op <= 3) {
        const word = (a.nic.state.dcr & 1) !== 0;
        if ((r >>> 3) & 1) {
          a.t.out32(BAR0 + 0x10, v);
          if (word) {
            b.t.out16(BAR0 + 0x10, v & 0xffff);
            b.t.out16(BAR0 + 0x10, v >>> 16);
          } else for (let i = 0; i < 4; i++) b.t.out8(BAR0 + 0x10, (v >>> (8 * i)) & 0xff);
        } else {
          const x = a.t.in32(BAR0 + 0x10);
          let y = 0;
          if (word) y = (b.t.in16(BAR0 + 0x10) | (b.t.in16(BAR0 + 0x10) << 16)) >>> 0;
          else for (let i = 0; i < 4; i++) y = (y | (b.t.in8(BAR0 + 0x10) << (8 * i))) >>> 0;
          if (x !== y) throw new Error(`op ${n}: 32-bit read ${x.toString(16)}, units ${y.toString(16)}`);
        }
      } else if (op === 4) {
        // RSAR (odd or even, anywhere, often just below PSTOP), RBCR (often small, so it
        // runs out mid-access), and now and then byte mode or another ring.
        const reg = [0x08, 0x09, 0x0a, 0x0b, 0x0e, 0x01, 0x02][(r >>> 3) % 7];
        let val = v & 0xff;
        if (reg === 0x0e) val = 0x48 | (v & 1);
        else if (reg === 0x01) val = 0x40 + (v % 0x40);
        else if (reg === 0x02) val = 0x41 + (v % 0x7f);
        else if (reg === 0x09 && (v & 0x300) !== 0) val = (a.nic.state.pstop - 1) & 0xff;
        else if (reg === 0x0b && (v & 0x300) !== 0) val = 0;
        both((t) => t.out8(BAR0 + reg, val));
      } else if (op === 5) both((t) => t.out8(BAR0, 0x02 | ((v & 3) << 3)));
      else if (op === 6) both((t) => t.out8(BAR0 + 0x07, (v & 0x100) !== 0 ? 0x7f : v & 0x7f));
      else {
        const f = new Uint8Array(60 + (v % 1455));
        f.set(MAC);
        f[20] = n & 0xff;
        a.nic.receive(f);
        b.nic.receive(f);
      }
      const sa = a.nic.state;
      const sb = b.nic.state;
      if (sa.rsar !== sb.rsar || sa.rbcr !== sb.rbcr || sa.isr !== sb.isr || sa.bnry !== sb.bnry || sa.curr !== sb.curr) throw new Error(`op ${n}: registers differ`);
      if (n % 500 === 0) for (let i = 0; i < sa.mem.length; i++) if (sa.mem[i] !== sb.mem[i]) throw new Error(`op ${n}: memory differs at ${i}`);
    }
    expect(a.nic.saveState()).toEqual(b.nic.saveState());
  }, 60_000);
});
