/** The 8254 through its ports against virtual time (the spirit of QEMU's i8254 test). */
import { describe, expect, it } from 'vitest';
import { Pit8254, PIT_HZ } from './pit.ts';
import { PlatformBus } from '../bus/platform-bus.ts';

function setup() {
  const bus = new PlatformBus(1 << 20);
  const pit = new Pit8254();
  bus.attach(pit);
  const edges: number[] = [];
  bus.irqSink = (line, level) => { if (line === 0 && level) edges.push(bus.clock.now()); };
  return { bus, pit, io: bus.io, clock: bus.clock, edges };
}
const tickNs = 1e9 / PIT_HZ;

describe('Pit8254', () => {
  it('raises IRQ0 periodically in mode 2 at reload / 1.193182 MHz (the BIOS 18.2 Hz tick)', () => {
    const { io, clock, edges } = setup();
    io.out8(0x43, 0x34); // counter 0, LSB then MSB, mode 2
    io.out8(0x40, 0x00);
    io.out8(0x40, 0x00); // 65536
    clock.advanceTo(1e9);
    expect(edges.length).toBe(18); // 1 s / 54.9254 ms
    const period = edges[1] - edges[0];
    expect(period).toBeCloseTo(65536 * tickNs, -1);
  });

  it('latches a count while counting; successive reads return LSB then MSB', () => {
    const { io, clock } = setup();
    io.out8(0x43, 0x34);
    io.out8(0x40, 0xe8);
    io.out8(0x40, 0x03); // 1000
    clock.advanceTo(100 * tickNs + 1);
    io.out8(0x43, 0x00); // latch counter 0
    clock.advanceTo(300 * tickNs + 1); // the latch holds the old value
    const v = io.in8(0x40) | (io.in8(0x40) << 8);
    expect(v).toBe(900);
    // Unlatched reads follow the count.
    const live = io.in8(0x40) | (io.in8(0x40) << 8);
    expect(live).toBe(700);
  });

  it('counts counter 2 only with its gate (port 0x61 bit 0) and shows OUT2 in bit 5, as Linux calibrates', () => {
    const { io, clock } = setup();
    io.out8(0x61, (io.in8(0x61) & ~0x02) | 0x01); // gate on, speaker off
    io.out8(0x43, 0xb0); // counter 2, LSB/MSB, mode 0
    io.out8(0x42, 0xff);
    io.out8(0x42, 0xff);
    expect(io.in8(0x61) & 0x20).toBe(0);
    clock.advanceTo(clock.now() + 0xfffe * tickNs);
    expect(io.in8(0x61) & 0x20).toBe(0);
    clock.advanceTo(clock.now() + 2 * tickNs);
    expect(io.in8(0x61) & 0x20).toBe(0x20);
    // Gate low freezes a mode 0 count.
    io.out8(0x43, 0xb0);
    io.out8(0x61, 0x00);
    io.out8(0x42, 0x10);
    io.out8(0x42, 0x00);
    clock.advanceTo(clock.now() + 100 * tickNs);
    io.out8(0x43, 0x80);
    expect(io.in8(0x42)).toBe(0x10);
  });

  it('toggles the refresh bit (0x61 bit 4) about every 15 µs', () => {
    const { io, clock } = setup();
    const a = io.in8(0x61) & 0x10;
    clock.advanceTo(clock.now() + 15_100);
    expect(io.in8(0x61) & 0x10).not.toBe(a);
  });

  it('answers read-back status and BCD counts', () => {
    const { io, clock } = setup();
    io.out8(0x43, 0x15); // counter 0, LSB only, mode 2, BCD
    io.out8(0x40, 0x50); // 50 BCD
    io.out8(0x43, 0xe2); // read-back: status only, counter 0
    expect(io.in8(0x40)).toBe(0x80 | 0x10 | 0x04 | 0x01);
    clock.advanceTo(clock.now() + 10 * tickNs + 1);
    io.out8(0x43, 0x00);
    expect(io.in8(0x40)).toBe(0x40); // 40 in BCD
  });
});
