/** The 16550A through its ports: transmit, receive FIFO, interrupt identification, loopback. */
import { describe, expect, it } from 'vitest';
import { Uart16550A } from './uart.ts';
import { PlatformBus } from '../bus/platform-bus.ts';

function setup() {
  const bus = new PlatformBus(1 << 20);
  const uart = new Uart16550A({ name: 'com1', port: 0x3f8, irq: 4 });
  bus.attach(uart);
  const sent: number[] = [];
  uart.onTransmit = (b) => sent.push(b);
  return { bus, uart, io: bus.io, sent, irq: () => bus.irqLevels[4] === 1 };
}

describe('Uart16550A', () => {
  it('sets the divisor through DLAB and transmits bytes', () => {
    const { io, sent } = setup();
    io.out8(0x3fb, 0x80);
    io.out8(0x3f8, 0x01);
    io.out8(0x3f9, 0x00);
    expect(io.in8(0x3f8)).toBe(0x01); // DLAB on: DLL reads back
    io.out8(0x3fb, 0x03); // 8N1, DLAB off
    expect(io.in8(0x3fb)).toBe(0x03);
    for (const c of 'OK\n') io.out8(0x3f8, c.charCodeAt(0));
    expect(String.fromCharCode(...sent)).toBe('OK\n');
    expect(io.in8(0x3fd) & 0x60).toBe(0x60);
  });

  it('interrupts on THR empty when enabled with OUT2, and reading IIR acknowledges it', () => {
    const { io, irq } = setup();
    io.out8(0x3fc, 0x08); // OUT2
    io.out8(0x3f9, 0x02); // ETBEI
    expect(irq()).toBe(true);
    expect(io.in8(0x3fa) & 0x0f).toBe(0x02);
    expect(irq()).toBe(false);
    expect(io.in8(0x3fa) & 0x01).toBe(1);
    io.out8(0x3f8, 0x41);
    expect(irq()).toBe(true);
    io.out8(0x3fc, 0x00); // OUT2 off gates the line
    expect(irq()).toBe(false);
  });

  it('fills the RX FIFO to its trigger level, then times out for the rest', () => {
    const { bus, uart, io, irq } = setup();
    io.out8(0x3fa, 0xc7); // FIFO on, clear, trigger 14
    io.out8(0x3fc, 0x08);
    io.out8(0x3f9, 0x01); // ERBFI
    expect(uart.receive([1, 2, 3])).toBe(3);
    expect(irq()).toBe(false); // below the trigger level
    bus.clock.advanceTo(bus.clock.now() + 4 * (10e9 / 9600) + 1); // four characters at 9600 baud
    expect(irq()).toBe(true);
    expect(io.in8(0x3fa)).toBe(0xcc); // character timeout, FIFOs enabled
    expect([io.in8(0x3f8), io.in8(0x3f8), io.in8(0x3f8)]).toEqual([1, 2, 3]);
    expect(io.in8(0x3fd) & 1).toBe(0);
    expect(irq()).toBe(false);
    expect(uart.receive(new Array(20).fill(7))).toBe(16); // the rest waits for room
    expect(io.in8(0x3fa) & 0x0f).toBe(0x04); // RX data available at the trigger level
  });

  it('loops transmitted bytes back and mirrors MCR into MSR in loopback mode', () => {
    const { io, sent } = setup();
    io.out8(0x3fc, 0x10 | 0x0b); // loopback, OUT2, RTS, DTR
    io.out8(0x3f8, 0x5a);
    expect(sent).toEqual([]);
    expect(io.in8(0x3fd) & 1).toBe(1);
    expect(io.in8(0x3f8)).toBe(0x5a);
    expect(io.in8(0x3fe) & 0xf0).toBe(0x10 | 0x20 | 0x80);
    io.out8(0x3ff, 0x99);
    expect(io.in8(0x3ff)).toBe(0x99);
  });
});
