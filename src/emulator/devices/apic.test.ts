/**
 * The local APIC, the I/O APIC and PIIX4 power management through the bus: register
 * read-back and reset values, the timer (one-shot and periodic) on virtual time, priority
 * with TPR, ISR and EOI, the 8259 through LINT0 (virtual wire), I/O APIC redirection with
 * edge and level pins and remote IRR, and the ACPI PM timer, SCI and the S5 power-off.
 */
import { describe, expect, it } from 'vitest';
import { createTestBus } from '../bus/test-harness.ts';
import { LAPIC, LocalApic } from './local-apic.ts';
import { IoApic82093 } from './io-apic.ts';
import { Piix4Pm, PM_TIMER_HZ } from '../pci/piix4-pm.ts';

const BASE = 0xfee00000;

function setup() {
  const t = createTestBus();
  const lapic = new LocalApic();
  const ioapic = new IoApic82093();
  t.attach(lapic);
  t.attach(ioapic);
  const cpu = { intr: false };
  lapic.cpuIntr = (l) => (cpu.intr = l);
  lapic.onEoi = (v) => ioapic.eoi(v);
  ioapic.send = (v, mode, level, dest, logical) => lapic.deliver(v, mode, level, dest, logical);
  const w = (reg: number, v: number) => t.mmioWrite32(BASE + reg, v);
  const r = (reg: number) => t.mmioRead32(BASE + reg);
  return { t, lapic, ioapic, cpu, w, r };
}

describe('local APIC', () => {
  it('has its reset values and keeps what software writes', () => {
    const { r, w, lapic } = setup();
    expect(r(LAPIC.VERSION)).toBe(0x00050014);
    expect(r(LAPIC.SVR)).toBe(0xff);
    expect(r(LAPIC.LVT_TIMER)).toBe(0x10000);
    expect(lapic.baseMsr >>> 0).toBe(0xfee00900); // BSP, enabled
    w(LAPIC.SVR, 0x1ff);
    w(LAPIC.TPR, 0x20);
    w(LAPIC.LDR, 0x01000000);
    expect([r(LAPIC.SVR), r(LAPIC.TPR), r(LAPIC.LDR)]).toEqual([0x1ff, 0x20, 0x01000000]);
  });

  it('counts down its timer on virtual time and interrupts once (one-shot) or every period', () => {
    const { t, w, r, lapic, cpu } = setup();
    w(LAPIC.SVR, 0x1ff);
    w(LAPIC.TIMER_DIVIDE, 0x3); // divide by 16
    w(LAPIC.LVT_TIMER, 0x40);
    w(LAPIC.TIMER_INITIAL, 1000); // 16 us
    t.advance(8_000);
    expect(r(LAPIC.TIMER_CURRENT)).toBe(500);
    expect(cpu.intr).toBe(false);
    t.advance(8_000);
    expect(cpu.intr).toBe(true);
    expect(lapic.acknowledge()).toBe(0x40);
    expect(cpu.intr).toBe(false);
    w(LAPIC.EOI, 0);
    t.advance(100_000);
    expect(cpu.intr).toBe(false); // one-shot
    w(LAPIC.LVT_TIMER, 0x20041); // periodic, vector 0x41
    w(LAPIC.TIMER_INITIAL, 100); // 1.6 us
    let count = 0;
    for (let i = 0; i < 10; i++) {
      t.advance(1_600);
      if (cpu.intr) {
        count++;
        lapic.acknowledge();
        w(LAPIC.EOI, 0);
      }
    }
    expect(count).toBe(10);
  });

  it('re-arms a periodic timer past the expiry it just delivered when wall-clock time is fractional', () => {
    // The values of a wall-clock boot that hung: the count started at a fractional time,
    // and an expiry's time minus the start came out a hair under its whole periods, so
    // the timer was re-armed for the instant that had just fired, again and again.
    const { t, w, lapic, cpu } = setup();
    w(LAPIC.SVR, 0x1ff);
    w(LAPIC.TIMER_DIVIDE, 0x3); // divide by 16: 16 ns a tick
    w(LAPIC.LVT_TIMER, 0x200ec); // periodic, vector 0xEC
    t.advanceTo(1372693118);
    let host = 1372693118.0000024;
    t.bus.clock.progress = () => host;
    w(LAPIC.TIMER_INITIAL, 249994); // 3.999904 ms
    host = 4296622942.000002 - 100;
    t.bus.clock.progress = null;
    t.advanceTo(host);
    expect(cpu.intr).toBe(true);
    expect(lapic.acknowledge()).toBe(0xec);
    w(LAPIC.EOI, 0);
    t.advanceTo(4297049195); // through the expiry at ...942.000002 and on: it must return
    expect(cpu.intr).toBe(true);
  });

  it('still delivers a one-shot expiry that fell due inside a run slice when the LVT is rewritten before the slice ends', () => {
    const { t, w, lapic, cpu } = setup();
    w(LAPIC.SVR, 0x1ff);
    w(LAPIC.TIMER_DIVIDE, 0xb); // divide by 1
    w(LAPIC.LVT_TIMER, 0x40);
    // Wall-clock mode: inside a slice, now() follows the host clock; timers fire when the
    // machine advances the clock at the slice's end.
    let host = t.now();
    t.bus.clock.progress = () => host;
    w(LAPIC.TIMER_INITIAL, 1000); // 1 us
    host += 5_000; // the count runs out mid-slice
    w(LAPIC.LVT_TIMER, 0x40); // the guest rewrites the LVT before the slice ends
    t.bus.clock.progress = null;
    t.advanceTo(host);
    expect(cpu.intr).toBe(true);
    expect(lapic.acknowledge()).toBe(0x40);
  });

  it('keeps a run-out one-shot count at zero when the timer turns periodic, until a new initial count', () => {
    const { t, w, r, cpu } = setup();
    w(LAPIC.SVR, 0x1ff);
    w(LAPIC.TIMER_DIVIDE, 0xb); // divide by 1
    w(LAPIC.LVT_TIMER, 0x10040); // one-shot, masked
    w(LAPIC.TIMER_INITIAL, 1000);
    t.advance(50_000);
    expect(r(LAPIC.TIMER_CURRENT)).toBe(0);
    w(LAPIC.LVT_TIMER, 0x20040); // periodic, unmasked: the count stays 0 (SDM vol.3 §10.5.4)
    t.advance(3_000);
    expect(r(LAPIC.TIMER_CURRENT)).toBe(0);
    expect(cpu.intr).toBe(false);
    w(LAPIC.TIMER_INITIAL, 1000); // a new count runs, periodically
    t.advance(500);
    expect(r(LAPIC.TIMER_CURRENT)).toBeGreaterThan(0);
    t.advance(20_000);
    expect(cpu.intr).toBe(true);
  });

  it('goes off the bus when IA32_APIC_BASE.EN is cleared and comes back in its power-up state when set again', () => {
    const { r, w, lapic } = setup();
    w(LAPIC.SVR, 0x1ff);
    w(LAPIC.TPR, 0x30);
    lapic.baseMsr = 0xfee00000; // EN clear
    expect(r(LAPIC.SVR)).not.toBe(0x1ff); // the page is no longer the APIC's
    lapic.baseMsr = 0xfee00800; // EN set again
    expect(lapic.baseMsr >>> 0).toBe(0xfee00900);
    expect([r(LAPIC.SVR), r(LAPIC.TPR), r(LAPIC.LVT_TIMER)]).toEqual([0xff, 0, 0x10000]);
  });

  it('holds interrupts below the task priority and nests by priority class', () => {
    const { w, lapic, cpu } = setup();
    w(LAPIC.SVR, 0x1ff);
    w(LAPIC.TPR, 0x50);
    lapic.accept(0x45, false);
    expect(cpu.intr).toBe(false);
    lapic.accept(0x61, false);
    expect(cpu.intr).toBe(true);
    expect(lapic.acknowledge()).toBe(0x61);
    w(LAPIC.TPR, 0);
    expect(cpu.intr).toBe(false); // 0x45 is below the in-service 0x61
    w(LAPIC.EOI, 0);
    expect(cpu.intr).toBe(true);
    expect(lapic.acknowledge()).toBe(0x45);
  });

  it('passes the 8259 through while disabled, and through LINT0 in ExtINT mode', () => {
    const { w, lapic, cpu } = setup();
    lapic.picAcknowledge = () => 0x08;
    lapic.picIntr(true);
    expect(cpu.intr).toBe(true); // software-disabled: virtual wire
    expect(lapic.acknowledge()).toBe(0x08);
    w(LAPIC.SVR, 0x1ff);
    expect(cpu.intr).toBe(false); // enabled with LINT0 masked
    w(LAPIC.LVT_LINT0, 0x700);
    expect(cpu.intr).toBe(true);
  });
});

describe('I/O APIC', () => {
  it('routes an edge pin to its vector and a level pin with remote IRR until EOI', () => {
    const { t, ioapic, lapic, w, cpu } = setup();
    w(LAPIC.SVR, 0x1ff);
    const reg = (i: number, v: number) => { t.mmioWrite32(0xfec00000, i); t.mmioWrite32(0xfec00010, v); };
    t.mmioWrite32(0xfec00000, 1);
    expect(t.mmioRead32(0xfec00010)).toBe(0x00170011);
    reg(0x10 + 2 * 2, 0x30); // pin 2: vector 0x30, edge, unmasked, dest 0
    ioapic.setPin(2, true);
    expect(cpu.intr).toBe(true);
    expect(lapic.acknowledge()).toBe(0x30);
    w(LAPIC.EOI, 0);
    reg(0x10 + 2 * 11, 0x8039); // pin 11: vector 0x39, level
    ioapic.setPin(11, true);
    expect(lapic.acknowledge()).toBe(0x39);
    t.mmioWrite32(0xfec00000, 0x10 + 2 * 11);
    expect(t.mmioRead32(0xfec00010) & 0x4000).toBe(0x4000); // remote IRR
    w(LAPIC.EOI, 0); // still asserted: delivered again
    expect(cpu.intr).toBe(true);
    expect(lapic.acknowledge()).toBe(0x39);
    ioapic.setPin(11, false);
    w(LAPIC.EOI, 0);
    expect(cpu.intr).toBe(false);
    expect(t.mmioRead32(0xfec00010) & 0x4000).toBe(0);
  });
});

describe('PIIX4 power management', () => {
  function pm() {
    const t = createTestBus();
    const acpi = new Piix4Pm();
    t.plugPci(acpi, 1, 3);
    t.cfgWrite32(1, 3, 0x40, 0xb001);
    t.cfgWrite(1, 3, 0x80, 1, 1);
    return { t, acpi };
  }

  it('runs the PM timer at 3.579545 MHz from virtual time, 24 bits wide', () => {
    const { t } = pm();
    expect(t.cfgRead32(1, 3, 0) >>> 0).toBe(0x71138086);
    const a = t.in32(0xb008);
    t.advance(1_000_000_000);
    const b = t.in32(0xb008);
    expect((b - a) & 0xffffff).toBe(PM_TIMER_HZ & 0xffffff);
  });

  it('raises SCI on IRQ 9 for an enabled event once ACPI is enabled through port 0xB2, and powers off on S5', () => {
    const { t, acpi } = pm();
    t.out16(0xb002, 0x0001); // TMR_EN
    t.advance(5e9); // bit 23 of the timer toggles every 2.34 s
    expect(t.irqLevel(9)).toBe(0); // SCI_EN still clear
    t.out8(0xb2, 0xf1);
    expect(t.in16(0xb004) & 1).toBe(1);
    expect(t.irqLevel(9)).toBe(1);
    t.out16(0xb000, 0x0001); // write 1 to clear
    expect(t.irqLevel(9)).toBe(0);
    let off = false;
    acpi.onPowerOff = () => (off = true);
    t.out16(0xb004, 0x2001); // SLP_TYP 0, SLP_EN
    expect(off).toBe(true);
  });

  it("answers at the fixed ports SeaBIOS's ACPI tables name: GPE0, PCI hotplug, CPU hotplug", () => {
    const { t, acpi } = pm();
    // GPE0_BLK (FADT) at 0xAFE0: nothing pending, the enable half keeps what is written.
    expect(t.in16(0xafe0)).toBe(0);
    t.out16(0xafe2, 0xfffd);
    expect(t.in16(0xafe2)).toBe(0xfffd);
    t.out8(0xb2, 0xf1);
    expect(t.irqLevel(9)).toBe(0); // GPEs enabled, none raised: no SCI
    // A raised event (no device of this machine raises one; state is plain data) is seen,
    // signals SCI only while enabled, and a write of 1 clears just that bit.
    acpi.loadState({ ...acpi.saveState(), gpeStatus: 0x0006 });
    expect(t.in32(0xafe0) >>> 0).toBe(0xfffd0006);
    expect(t.irqLevel(9)).toBe(1); // bit 2 enabled
    t.out8(0xafe0, 0x04);
    expect(t.in16(0xafe0)).toBe(0x0002);
    expect(t.irqLevel(9)).toBe(0); // bit 1 pending but not enabled
    t.out8(0xafe2, 0x02);
    expect(t.irqLevel(9)).toBe(1);
    t.out16(0xafe0, 0xffff);
    expect(t.in16(0xafe0)).toBe(0);
    expect(t.irqLevel(9)).toBe(0);
    // The DSDT's _E01 reads PCIU and PCID: no slot added or removed.
    expect(t.in32(0xae00)).toBe(0);
    expect(t.in32(0xae04)).toBe(0);
    // _E02 compares the CPU bitmap with the processors it declared: CPU 0 alone.
    expect(t.in8(0xaf00)).toBe(1);
    for (let i = 1; i < 32; i++) expect(t.in8(0xaf00 + i)).toBe(0);
  });
});
