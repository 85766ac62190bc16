/**
 * PIIX4 power management, function 3 of the south bridge at 00:01.3 (8086:7113), as
 * QEMU's PC has it next to the PIIX3 ISA bridge: the ACPI registers at the PM I/O base
 * (config 0x40, enabled by PMREGMISC 0x80 bit 0; 82371AB datasheet §3.4 and §7):
 *
 *   base+0  PM1 status   (TMR_STS, PWRBTN_STS, WAK_STS; write 1 to clear)
 *   base+2  PM1 enable   (TMR_EN, PWRBTN_EN)
 *   base+4  PM1 control  (SCI_EN, SLP_TYP, SLP_EN)
 *   base+8  PM timer     (24-bit, 3.579545 MHz, on virtual time)
 *
 * At fixed ports, as QEMU's PIIX4 has them and SeaBIOS's ACPI tables point at them:
 *
 *   0xAFE0  GPE0 status (2 bytes, write 1 to clear), GPE0 enable (2 bytes): the FADT's GPE0_BLK
 *   0xAE00  PCI hotplug: PCIU (slots added), PCID (slots removed), B0EJ (eject), RMV (removable)
 *   0xAF00  CPU hotplug: 32 bytes, one bit per APIC ID of a present CPU
 *
 * SeaBIOS's DSDT reads them from its GPE handlers (_E01 scans PCIU/PCID and notifies each
 * slot whose bit is set; _E02 compares the CPU bitmap with what it last saw): unclaimed,
 * they read all-ones, so Linux ran both handlers, saw 31 slots added and removed and a
 * CPU hot-plugged, and spent a tenth of the tiny-linux boot interpreting that AML.
 * This machine plugs nothing while it runs: no GPE is raised, the slot bitmaps read 0
 * and the CPU bitmap has the one CPU.
 *
 * SCI is ISA IRQ 9, level-triggered. The ACPI enable/disable handshake goes through the
 * APM control port 0xB2 (values 0xF1/0xF0, what SeaBIOS's FADT names), which sets and
 * clears SCI_EN. Entering S5 (SLP_EN with SLP_TYP 0, the DSDT's \_S5) powers the machine off.
 *
 * With this function present and no etc/table-loader, SeaBIOS builds its own ACPI tables
 * (RSDP, RSDT, FADT, FACS, DSDT, MADT) pointing at these registers.
 */
import { bytes, deadline, u16, u8, vmstate, type VmStateOf } from '../bus/vmstate.ts';
import type { Device, DeviceContext, DeviceState, IrqLine, Mapping, TimerId } from '../bus/device.ts';
import { readConfigBytes, type PciContext, type PciDevice, type PciFunctionSpec } from './pci-function.ts';

/** PM1 status/enable bits. */
const TMR_STS = 1 << 0;
const PWRBTN_STS = 1 << 8;
const WAK_STS = 1 << 15;
/** PM1 control. */
const SCI_EN = 1 << 0;
const SLP_EN = 1 << 13;
/** The ACPI PM timer's rate (ACPI spec §4.8.3.3). */
export const PM_TIMER_HZ = 3_579_545;
const ACPI_ENABLE = 0xf1;
const ACPI_DISABLE = 0xf0;
/** The fixed register blocks (QEMU hw/acpi: piix4 GPE, pcihp, cpu_hotplug). */
const GPE0_BASE = 0xafe0;
const GPE0_LENGTH = 4;
const PCIHP_BASE = 0xae00;
const PCIHP_LENGTH = 16;
const PCIHP_EJECT = 8;
const CPUHP_BASE = 0xaf00;
const CPUHP_LENGTH = 32;
/** APIC IDs of the CPUs present: the machine has one, APIC ID 0. */
const PRESENT_CPUS = [0];

/**
 * Function 3's configuration registers 0x40-0xFF (PMBA, PMREGMISC...), the PM1 event and
 * control registers, GPE0, the APM ports (82371AB §11, ACPI spec §4.8.3) and the PM
 * timer's next overflow (TMR_STS) as a deadline.
 */
export const PIIX4_PM_STATE = vmstate('piix4-pm', 1, {
  config: bytes(0x100),
  pm1Status: u16,
  pm1Enable: u16,
  pm1Control: u16,
  apmc: u8,
  apms: u8,
  gpeStatus: u16,
  gpeEnable: u16,
  /** When bit 23 of the PM timer next toggles (virtual ns) while TMR_EN is set, or null. */
  overflowAt: deadline,
});
export type Piix4PmState = VmStateOf<typeof PIIX4_PM_STATE>;

export class Piix4Pm implements PciDevice, Device {
  readonly name = 'acpi';
  readonly pci: PciFunctionSpec;
  state: Piix4PmState = {
    config: new Uint8Array(0x100), pm1Status: 0, pm1Enable: 0, pm1Control: 0, apmc: 0, apms: 0, gpeStatus: 0, gpeEnable: 0, overflowAt: null,
  };
  /** Soft power off (S5). */
  onPowerOff: () => void = () => {};
  private sci: IrqLine | null = null;
  private clock: DeviceContext['clock'] | null = null;
  private pmMapping: Mapping | null = null;
  private ctx: DeviceContext | null = null;
  private overflowTimer: TimerId | null = null;
  private log: (m: string) => void = () => {};

  constructor() {
    this.pci = {
      vendorId: 0x8086,
      deviceId: 0x7113,
      revision: 0x03,
      classCode: 0x068000,
      interruptPin: 1,
      bars: [],
      configRead: (off, size) => (off >= 0x40 ? readConfigBytes(this.state.config, off, size) : undefined),
      configWrite: (off, size, value) => {
        if (off < 0x40) return false;
        for (let i = 0; i < size; i++) if (off + i < 0x100) this.state.config[off + i] = (value >>> (8 * i)) & 0xff;
        this.updateBase();
        return true;
      },
    };
  }

  attach(ctx: DeviceContext): void {
    this.sci = ctx.irq(9);
    this.clock = ctx.clock;
    this.log = (m) => ctx.log(m);
    // APM control and status (ports 0xB2, 0xB3): the SMI command port ACPI uses to switch modes.
    ctx.mapPorts(0xb2, 2, {
      read: (o) => (o === 0 ? this.state.apmc : this.state.apms),
      write: (o, _s, v) => {
        if (o === 1) {
          this.state.apms = v & 0xff;
          return;
        }
        this.state.apmc = v & 0xff;
        if (v === ACPI_ENABLE) this.state.pm1Control |= SCI_EN;
        else if (v === ACPI_DISABLE) this.state.pm1Control &= ~SCI_EN;
        this.updateSci();
      },
    });
    ctx.mapPorts(GPE0_BASE, GPE0_LENGTH, { read: (o, sz) => this.gpeRead(o, sz), write: (o, sz, v) => this.gpeWrite(o, sz, v) });
    ctx.mapPorts(PCIHP_BASE, PCIHP_LENGTH, {
      // No slot is ever added, removed or removable.
      read: () => 0,
      write: (o, _s, v) => {
        if (o === PCIHP_EJECT && v !== 0) this.log(`ACPI: the guest asked to eject PCI slots ${(v >>> 0).toString(2)}b; this machine has no hotplug`);
      },
    });
    ctx.mapPorts(CPUHP_BASE, CPUHP_LENGTH, {
      read: (o, sz) => {
        let v = 0;
        for (const id of PRESENT_CPUS) {
          const bit = id - 8 * o;
          if (bit >= 0 && bit < 8 * sz) v |= 1 << bit;
        }
        return v;
      },
      write: () => {},
    });
    this.ctx = ctx;
    this.updateBase();
  }

  /** GPE0_STS (bytes 0-1, write 1 to clear) and GPE0_EN (bytes 2-3), byte by byte. */
  private gpeRead(o: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = 0; i < size && o + i < GPE0_LENGTH; i++) v |= this.gpeByte(o + i) << (8 * i);
    return size === 4 ? v | 0 : v;
  }

  private gpeByte(o: number): number {
    const s = this.state;
    return ((o < 2 ? s.gpeStatus : s.gpeEnable) >> (8 * (o & 1))) & 0xff;
  }

  private gpeWrite(o: number, size: 1 | 2 | 4, v: number): void {
    const s = this.state;
    for (let i = 0; i < size && o + i < GPE0_LENGTH; i++) {
      const b = (v >>> (8 * i)) & 0xff;
      const shift = 8 * ((o + i) & 1);
      if (o + i < 2) s.gpeStatus &= ~(b << shift);
      else s.gpeEnable = (s.gpeEnable & ~(0xff << shift)) | (b << shift);
    }
    this.updateSci();
  }

  attachPci(_ctx: PciContext): void {}

  /** PMBA (0x40, bits 15:6) decoded while PMREGMISC (0x80) bit 0 is set. */
  private updateBase(): void {
    const c = this.state.config;
    const base = (c[0x40] | (c[0x41] << 8)) & 0xffc0;
    const on = (c[0x80] & 1) !== 0 && base !== 0;
    if (on && !this.pmMapping && this.ctx) {
      // Mapped on first use: until the BIOS places it, the block claims no ports at all.
      this.pmMapping = this.ctx.mapPorts(base, 64, { read: (o, sz) => this.pmRead(o, sz), write: (o, sz, v) => this.pmWrite(o, sz, v) });
      return;
    }
    if (!this.pmMapping) return;
    if (on) {
      if (!this.pmMapping.mapped || this.pmMapping.start !== base) this.pmMapping.move(base);
    } else if (this.pmMapping.mapped) {
      this.pmMapping.unmap();
    }
  }

  reset(): void {
    const c = this.state.config;
    c.fill(0);
    c[0x40] = 0x01; // PMBA: I/O space indicator
    this.state.pm1Status = 0;
    this.state.pm1Enable = 0;
    this.state.pm1Control = 0;
    this.state.apmc = 0;
    this.state.apms = 0;
    this.state.gpeStatus = 0;
    this.state.gpeEnable = 0;
    this.updateBase();
    this.armOverflow();
    this.updateSci();
  }

  /** The PM timer: 3.579545 MHz from virtual time, 24 bits wide (TMR_VAL_EXT clear in the FADT). */
  pmTimer(): number {
    const ns = this.clock ? this.clock.now() : 0;
    return Math.floor((ns * PM_TIMER_HZ) / 1e9) & 0xffffff;
  }

  private pmRead(o: number, size: 1 | 2 | 4): number {
    const s = this.state;
    let v: number;
    if (o < 2) v = s.pm1Status >> (8 * o);
    else if (o < 4) v = s.pm1Enable >> (8 * (o - 2));
    else if (o < 6) v = s.pm1Control >> (8 * (o - 4));
    else if (o >= 8 && o < 12) v = this.pmTimer() >>> (8 * (o - 8));
    else v = 0;
    return size === 4 ? v | 0 : v & (size === 1 ? 0xff : 0xffff);
  }

  private pmWrite(o: number, size: 1 | 2 | 4, v: number): void {
    const s = this.state;
    if (o === 0 && size >= 2) {
      s.pm1Status &= ~(v & (TMR_STS | PWRBTN_STS | WAK_STS));
      if (size === 4) this.pmWrite(2, 2, v >>> 16);
    } else if (o === 2 && size >= 2) {
      // Enable bits: timer, global lock (GBL_EN, the firmware handshake ACPI probes), power and
      // sleep buttons, RTC alarm.
      s.pm1Enable = v & (TMR_STS | 0x20 | PWRBTN_STS | 0x200 | 0x400);
    } else if (o === 4 && size >= 2) {
      s.pm1Control = v & ~SLP_EN & 0xffff;
      if (v & SLP_EN) this.sleep((v >> 10) & 7);
    } else if (o < 6) {
      // Byte accesses to the 16-bit registers: merge.
      const reg = o < 2 ? 'pm1Status' : o < 4 ? 'pm1Enable' : 'pm1Control';
      const shift = 8 * (o & 1);
      if (reg === 'pm1Status') s.pm1Status &= ~((v & 0xff) << shift);
      else s[reg] = (s[reg] & ~(0xff << shift)) | ((v & 0xff) << shift);
      if (reg === 'pm1Control' && (s.pm1Control & SLP_EN)) {
        s.pm1Control &= ~SLP_EN;
        this.sleep((s.pm1Control >> 10) & 7);
      }
    }
    this.armOverflow();
    this.updateSci();
  }

  /** SLP_TYP as SeaBIOS's DSDT defines the states: \_S5 = 0 powers off; the others are not supported. */
  private sleep(type: number): void {
    if (type === 0) {
      this.onPowerOff();
      return;
    }
    this.log(`ACPI: sleep type ${type} is not supported; staying awake`);
    this.state.pm1Status |= WAK_STS;
  }

  /** TMR_STS: set each time bit 23 of the timer changes; the next toggle is scheduled when TMR_EN asks for it. */
  private armOverflow(): void {
    this.state.overflowAt = null;
    if (this.clock && (this.state.pm1Enable & TMR_STS) !== 0) {
      const ticks = Math.floor((this.clock.now() * PM_TIMER_HZ) / 1e9);
      const next = (Math.floor(ticks / 0x800000) + 1) * 0x800000;
      this.state.overflowAt = Math.ceil((next * 1e9) / PM_TIMER_HZ);
    }
    this.startOverflowTimer();
  }

  /** Set the clock's timer for `overflowAt` (after arming, and after a load). */
  private startOverflowTimer(): void {
    if (this.overflowTimer !== null) this.clock?.cancelTimer(this.overflowTimer);
    this.overflowTimer = null;
    const at = this.state.overflowAt;
    if (!this.clock || at === null) return;
    this.overflowTimer = this.clock.setTimer(at, () => {
      this.overflowTimer = null;
      this.state.overflowAt = null;
      this.state.pm1Status |= TMR_STS;
      this.updateSci();
      this.armOverflow();
    });
  }

  private updateSci(): void {
    const s = this.state;
    this.sci?.set((s.pm1Control & SCI_EN) !== 0 && ((s.pm1Status & s.pm1Enable) !== 0 || (s.gpeStatus & s.gpeEnable) !== 0));
  }

  saveState(): DeviceState {
    return PIIX4_PM_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    this.state = PIIX4_PM_STATE.load(saved, this.name);
    this.updateBase();
    // The overflow timer as it was armed (its deadline is state), not re-derived from now.
    this.startOverflowTimer();
    this.updateSci();
  }
}
