/**
 * The device model in a real worker thread (device-model-node.ts, bundled as the CLI does),
 * behind the real bus: each switchable device gives the same trace direct, emulated and
 * switched at every step (the cases of bus/device-paths.cases.ts); a device model that
 * stops answering is reported in plain words, the machine pauses, and switching the
 * device to direct carries on from the state it had when it left.
 */
import { describe, expect, it } from 'vitest';
import { workerDeviceModels } from './device-model-node.testing.ts';
import { COM1, pathCases, runCase, uartRig } from '../emulator/bus/device-paths.cases.ts';
import { Uart16550A } from '../emulator/devices/uart.ts';
import { uartSpec } from '../emulator/machine/switchable.ts';

const connect = workerDeviceModels();

describe('the device model in a worker thread', () => {
  it.each(['edu (MMIO, timers, DMA)', 'ide (PIIX3, ATA disk and ATAPI CD)', 'uart (com1)', 'ne2000 (RTL8029 on PCI)', 'ne2000 (ISA)'])('%s: the same trace direct, emulated and switched', (name) => {
    const c = () => pathCases(connect).find((x) => x.name === name)!;
    const direct = runCase(c(), 'direct');
    const emulated = runCase(c(), 'emulated');
    const switching = runCase(c(), 'switching');
    expect(emulated.trace).toEqual(direct.trace);
    expect(switching.trace).toEqual(direct.trace);
    expect(emulated.failure).toBeNull();
    expect(emulated.stats.traps).toBe(direct.stats.directAccesses);
    expect(emulated.stats.modelTimeNs).toBeGreaterThan(0);
  }, 60_000);

  it('a device model that stops answering pauses the machine with a plain report; direct resumes from the state handed over', () => {
    const logs: string[] = [];
    const r = uartRig(connect, (m) => logs.push(m));
    r.paths.timeoutMs = 300;
    let stops = 0;
    r.paths.onFailure = () => stops++;
    // A second device in the same device model goes down with it.
    const com2 = new Uart16550A({ name: 'com2', port: 0x2f8, irq: 3 });
    r.paths.register(com2, uartSpec({ name: 'com2', port: 0x2f8, irq: 3 }));
    r.t.attach(com2);
    r.t.out8(COM1 + 7, 0x44);
    r.t.out8(0x2f8 + 7, 0x22);
    r.paths.switchNow('com1', 'emulated');
    r.paths.switchNow('com2', 'emulated');
    expect(r.t.in8(COM1 + 7)).toBe(0x44);
    r.paths.sabotage('com1', 'hang');
    expect(r.t.in8(COM1 + 5)).toBe(0xff);
    expect(stops).toBe(1);
    expect(r.paths.failure).toBe('the device model of com1 stopped answering (no answer within 300 ms) on a port read of 1 at offset 0x5; the machine is paused (switch com1, com2 to direct to resume)');
    expect(r.t.in8(0x2f8 + 7)).toBe(0xff);
    r.paths.switchNow('com1', 'direct');
    expect(r.paths.failure).not.toBeNull();
    r.paths.switchNow('com2', 'direct');
    expect(r.paths.failure).toBeNull();
    expect(r.t.in8(0x2f8 + 7)).toBe(0x22);
    expect(logs.some((l) => /com1: the device model could not hand its state back; the device continues from its state at/.test(l))).toBe(true);
    expect(r.t.in8(COM1 + 7)).toBe(0x44);
    // A new device model is started for the next switch.
    r.paths.switchNow('com1', 'emulated');
    r.t.out8(COM1 + 7, 0x45);
    expect(r.t.in8(COM1 + 7)).toBe(0x45);
    r.paths.close();
  }, 60_000);

  it('answers a register read in a measured round trip (the figure the issue asks for: under 20 µs median in Node)', () => {
    const r = uartRig(connect);
    r.paths.switchNow('com1', 'emulated');
    for (let i = 0; i < 20_000; i++) r.t.in8(COM1 + 5);
    const [info] = r.paths.list();
    expect(info.traps).toBe(20_000);
    // Reported, not asserted: a unit test makes no timing claims (npm run bench does).
    console.log(`device model round trip: median < ${info.rttMedianNs / 1000} µs, 99% < ${info.rtt99Ns / 1000} µs, max ${(info.rttMaxNs / 1000).toFixed(1)} µs`);
    r.paths.close();
  }, 60_000);
});
