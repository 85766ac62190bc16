/** The 8259A pair through its ports, in the spirit of QEMU's i8259 tests. */
import { describe, expect, it } from 'vitest';
import { I8259Pic } from './pic.ts';
import { PlatformBus } from '../bus/platform-bus.ts';

function setup() {
  const bus = new PlatformBus(1 << 20);
  const pic = new I8259Pic();
  bus.attach(pic);
  bus.irqSink = (line, level) => pic.setIrq(line, level);
  let intr = false;
  pic.onIntr = (level) => (intr = level);
  const io = bus.io;
  // The initialisation SeaBIOS and Linux perform: vectors 0x08/0x70 (BIOS) or 0x20/0x28.
  const init = (base0: number, base1: number, icw4 = 0x01) => {
    io.out8(0x20, 0x11); io.out8(0x21, base0); io.out8(0x21, 0x04); io.out8(0x21, icw4);
    io.out8(0xa0, 0x11); io.out8(0xa1, base1); io.out8(0xa1, 0x02); io.out8(0xa1, icw4);
    io.out8(0x21, 0x00); io.out8(0xa1, 0x00);
  };
  return { bus, pic, io, init, intr: () => intr };
}

describe('I8259Pic', () => {
  it('delivers a master IRQ with its vector, holds lower priorities until EOI', () => {
    const { pic, io, init, intr, bus } = setup();
    init(0x20, 0x28);
    const line1 = bus.context(0, 'kbd').irq(1);
    const line4 = bus.context(0, 'com1').irq(4);
    line4.raise();
    expect(intr()).toBe(true);
    expect(pic.acknowledge()).toBe(0x24);
    expect(intr()).toBe(false);
    line1.raise(); // higher priority than IR4 in service: interrupts at once
    expect(intr()).toBe(true);
    expect(pic.acknowledge()).toBe(0x21);
    io.out8(0x20, 0x0b); // OCW3: read ISR
    expect(io.in8(0x20)).toBe(0x12);
    io.out8(0x20, 0x20); // non-specific EOI ends IR1
    io.out8(0x20, 0x20); // then IR4
    expect(io.in8(0x20)).toBe(0);
    line4.lower();
    line4.raise(); // a new edge
    expect(pic.acknowledge()).toBe(0x24);
  });

  it('masks with OCW1 and cascades slave IRQs through IR2', () => {
    const { pic, io, init, intr, bus } = setup();
    init(0x08, 0x70);
    const rtc = bus.context(0, 'rtc').irq(8);
    io.out8(0xa1, 0x01); // mask IRQ8
    rtc.raise();
    expect(intr()).toBe(false);
    io.out8(0xa1, 0x00);
    expect(intr()).toBe(true);
    expect(pic.acknowledge()).toBe(0x70);
    io.out8(0x20, 0x0b);
    io.out8(0xa0, 0x0b);
    expect(io.in8(0x20)).toBe(0x04); // IR2 in service on the master
    expect(io.in8(0xa0)).toBe(0x01);
    expect(io.in8(0xa1)).toBe(0x00);
  });

  it('answers a vanished request with a spurious IRQ7 and sets no ISR bit', () => {
    const { pic, io, init, bus } = setup();
    init(0x08, 0x70);
    const l = bus.context(0, 'x').irq(5);
    io.out8(0x4d0, 0x20); // IR5 level-triggered
    l.raise();
    l.lower();
    expect(pic.acknowledge()).toBe(0x0f);
    io.out8(0x20, 0x0b);
    expect(io.in8(0x20)).toBe(0);
  });

  it('keeps a level-triggered request pending after EOI while the line is high (PCI INTx)', () => {
    const { pic, io, init, intr, bus } = setup();
    init(0x20, 0x28);
    io.out8(0x4d1, 0x0c); // IRQ10, IRQ11 level (what SeaBIOS programs)
    expect(io.in8(0x4d1)).toBe(0x0c);
    const nic = bus.context(0, 'nic').irq(11);
    nic.raise();
    expect(pic.acknowledge()).toBe(0x2b);
    io.out8(0xa0, 0x20);
    io.out8(0x20, 0x20);
    expect(intr()).toBe(true); // still asserted
    nic.lower();
    expect(intr()).toBe(false);
  });

  it('supports auto-EOI, poll mode and priority rotation', () => {
    const { pic, io, init, bus } = setup();
    init(0x20, 0x28, 0x03); // ICW4: 8086 mode, AEOI
    const a = bus.context(0, 'a').irq(3);
    a.raise();
    expect(pic.acknowledge()).toBe(0x23);
    io.out8(0x20, 0x0b);
    expect(io.in8(0x20)).toBe(0); // no ISR bit with AEOI
    init(0x20, 0x28);
    const b = bus.context(0, 'b').irq(6);
    b.raise();
    io.out8(0x20, 0x0c); // OCW3 poll
    expect(io.in8(0x20)).toBe(0x86);
    io.out8(0x20, 0xc0 | 6); // set priority: IR6 lowest, IR7 highest
    a.lower();
    a.raise();
    const c = bus.context(0, 'c').irq(7);
    c.raise();
    io.out8(0x20, 0x20);
    expect(pic.acknowledge()).toBe(0x27);
  });
});
