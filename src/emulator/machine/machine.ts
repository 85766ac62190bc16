/**
 * Builds the PC from a MachineConfig and runs it. The wiring of the chipset lives here
 * (which IRQ line goes where, what resets the CPU, what fw_cfg tells the BIOS); each
 * device only knows its own registers (DESIGN.md seam 1).
 *
 *   CPU <- INTR - 8259 pair <- IRQ lines <- PIT, RTC, UARTs, PCI INTx (via PIIX3 PIRQ)
 *   CPU -> ports/MMIO -> IoBus / PhysicalMemory -> devices (counted per device)
 *
 * Time (DESIGN.md seam 6): deterministic mode charges a fixed virtual time per
 * instruction and jumps over idle (HLT) time to the next timer; wall-clock mode follows
 * the host's clock.
 */
import type { MachineConfig, MachineEvents } from './config.ts';
import type { Device, DeviceContext, DeviceState, IrqLine } from '../bus/device.ts';
import { bool, vmstate } from '../bus/vmstate.ts';
import type { VirtualClock } from './clock.ts';
import type { PhysicalMemory } from '../memory/physical-memory.ts';
import { Cpu } from '../cpu/cpu.ts';
import { X87 } from '../cpu/fpu/x87.ts';
import { IF } from '../cpu/constants.ts';
import { PlatformBus } from '../bus/platform-bus.ts';
import { I8259Pic } from '../devices/pic.ts';
import { Pit8254 } from '../devices/pit.ts';
import { Mc146818Rtc } from '../devices/rtc.ts';
import { Uart16550A } from '../devices/uart.ts';
import { DebugPorts } from '../devices/debug-ports.ts';
import { Port92 } from '../devices/port92.ts';
import { I8042 } from '../devices/ps2.ts';
import { FwCfg } from '../firmware/fw-cfg.ts';
import { configurePcFirmware } from '../firmware/pc-firmware.ts';
import { PciBus } from '../pci/pci-bus.ts';
import { I440fxHostBridge } from '../pci/i440fx.ts';
import { Piix3IsaBridge } from '../pci/piix3.ts';
import { StdVga } from '../devices/vga/std-vga.ts';
import { Piix3Ide } from '../devices/ide/piix3-ide.ts';
import { Dma8237 } from '../devices/dma8237.ts';
import { Fdc82077 } from '../devices/fdc.ts';
import { LocalApic } from '../devices/local-apic.ts';
import { IoApic82093 } from '../devices/io-apic.ts';
import { Piix4Pm } from '../pci/piix4-pm.ts';
import { MachineNetwork, type NetworkEnvironment } from './network.ts';
import { IntelIommu } from '../iommu/vtd.ts';
import { VmmFence } from '../iommu/vmm-fence.ts';
import { deliverMsi } from '../iommu/msi.ts';
import { putBehindIommu, sourceIdOf } from '../iommu/wiring.ts';
import { EduDevice } from '../devices/edu.ts';
import { DevicePaths, type DeviceModelConnector } from '../bus/device-paths.ts';
import { ShareableBlockDevice, eduSpec, ideSpec, ne2000Spec, uartSpec, vgaSpec } from './switchable.ts';

/** Virtual nanoseconds per instruction in deterministic mode: a 100 MIPS machine. */
export const DETERMINISTIC_NS_PER_INSTRUCTION = 10;
/**
 * Wall-clock mode: virtual time never runs ahead of the instructions by more than this (a
 * 10 MIPS machine). When the host falls behind (a busy tab, a loaded machine), the guest's
 * clock slows down with it instead of jumping: otherwise periodic timers pile up inside
 * one slice and coalesce into lost ticks, and a kernel calibrating its TSC or local APIC
 * timer against them measures nonsense (seen: Linux marking the TSC unstable, then its
 * tick running at a fraction of the intended rate).
 */
export const WALL_CLOCK_MAX_NS_PER_INSTRUCTION = 100;
/** Instructions per slice at most: timers are checked at least this often. */
const SLICE = 20_000;
/** The date a deterministic guest's RTC starts at. */
export const DETERMINISTIC_EPOCH_MS = Date.UTC(2026, 0, 1);

export class Machine {
  readonly bus: PlatformBus;
  readonly cpu: Cpu;
  readonly pic = new I8259Pic();
  readonly pit = new Pit8254();
  readonly rtc: Mc146818Rtc;
  readonly com1 = new Uart16550A({ name: 'com1', port: 0x3f8, irq: 4 });
  readonly com2 = new Uart16550A({ name: 'com2', port: 0x2f8, irq: 3 });
  readonly debug = new DebugPorts();
  readonly port92 = new Port92();
  readonly i8042 = new I8042();
  readonly fwCfg = new FwCfg();
  readonly pci: PciBus;
  readonly hostBridge = new I440fxHostBridge();
  readonly isaBridge = new Piix3IsaBridge();
  readonly fpuError = new FpuErrorLatch();
  readonly vga: StdVga;
  readonly ide: Piix3Ide;
  readonly dma = new Dma8237();
  readonly fdc: Fdc82077;
  readonly lapic = new LocalApic();
  readonly ioapic = new IoApic82093();
  readonly acpi = new Piix4Pm();
  /** NICs, LANs and routers (none without config.network). */
  readonly network: MachineNetwork;
  /** The guest-visible VT-d unit (config.iommu), or null. */
  readonly iommu: IntelIommu | null = null;
  /** The VMM's fence for direct-assigned devices: maps exactly guest RAM (iommu/vmm-fence.ts). */
  readonly vmmFence: VmmFence;
  /** QEMU's edu test device (config.edu), or null. */
  readonly edu: EduDevice | null = null;
  /** Which path each switchable device is on (UARTs, IDE, VGA, NICs), and the live switch (bus/device-paths.ts). */
  readonly paths: DevicePaths;
  /** Host time (ms) when wall-clock virtual time started. */
  private wallStart = 0;
  private readonly deterministic: boolean;
  /** Set when a reset was requested from inside the run loop; applied between slices. */
  private pendingReset: string | null = null;
  /** Notes the virtual time a CPU slice starts at (for the clock's in-slice progress). */
  private markSlice: () => void = () => {};
  /** The guest can no longer make progress: halted with interrupts off and no timer. */
  stopped: string | null = null;

  constructor(readonly config: MachineConfig, private readonly events: MachineEvents = {}, env: MachineEnvironment = {}) {
    this.deterministic = config.deterministic;
    const ramBytes = config.memoryMiB << 20;
    this.bus = new PlatformBus(ramBytes);
    const bus = this.bus;
    bus.memory.setBios(config.bios);
    bus.log = (device, message) => events.log?.(`${device}: ${message}`);
    this.paths = new DevicePaths(bus, env.deviceModel, (message) => events.log?.(`device paths: ${message}`));
    // A failed round trip ends the CPU's slice; run() then returns with the machine paused.
    this.paths.onFailure = () => this.cpu.requestStop();
    this.paths.register(this.com1, uartSpec({ name: 'com1', port: 0x3f8, irq: 4 }));
    this.paths.register(this.com2, uartSpec({ name: 'com2', port: 0x2f8, irq: 3 }));
    this.vga = new StdVga({ vgaBios: config.vgaBios });
    this.paths.register(this.vga, vgaSpec(this.vga));
    // The drives' media can move to shared memory when the controller goes to the device model.
    const media = { hda: config.hda && new ShareableBlockDevice(config.hda), cdrom: config.cdrom && new ShareableBlockDevice(config.cdrom) };
    this.ide = new Piix3Ide(media);
    this.paths.register(this.ide, ideSpec(media));
    // The floppy controller gets channel 2's DREQ/DACK, not the DMA controller itself.
    this.fdc = new Fdc82077(config.fda ?? null, this.dma.channel(2));
    this.rtc = new Mc146818Rtc({ startMs: config.deterministic ? DETERMINISTIC_EPOCH_MS : Date.now() });

    const ferr = this.fpuError;

    this.cpu = new Cpu({
      memory: bus.memory,
      io: bus.io,
      // Interrupts reach the CPU through its local APIC (which passes the 8259's on as ExtINT).
      intrAcknowledge: () => this.lapic.acknowledge(),
      apicPresent: true,
      getApicBase: () => this.lapic.baseMsr,
      setApicBase: (v) => (this.lapic.baseMsr = v),
      // A 1 GHz time-stamp counter on virtual time.
      readTsc: () => Math.floor(bus.clock.now()),
      ferr: () => ferr.assert(),
      shutdown: (reason) => this.requestReset(reason),
    });
    this.cpu.fpu = new X87(this.cpu);
    if (config.blockCache !== false) this.cpu.enableBlockCache(undefined, (message) => events.log?.(`cpu: ${message}`));

    // Interrupt wiring: every ISA line to the 8259 pair, its INTR to the CPU.
    // Every ISA line goes to the 8259 pair and to the I/O APIC (IRQ 0 on pin 2, as in the
    // MP table SeaBIOS writes); the 8259's INTR is LINT0 of the local APIC.
    bus.irqSink = (line, level) => {
      if (line < 16) this.pic.setIrq(line, level);
      if (line === 0) this.ioapic.setPin(2, level);
      else if (line !== 2) this.ioapic.setPin(line, level);
    };
    this.pic.onIntr = (level) => this.lapic.picIntr(level);
    this.lapic.cpuIntr = (level) => this.cpu.setIntr(level);
    this.lapic.picAcknowledge = () => this.pic.acknowledge();
    this.lapic.onNmi = () => this.cpu.nmi();
    this.lapic.onEoi = (vector) => this.ioapic.eoi(vector);
    this.ioapic.send = (vector, mode, level, dest, logical) => this.lapic.deliver(vector, mode, level, dest, logical);

    for (const d of [this.pic, this.pit, this.rtc, this.i8042, this.com1, this.com2, this.port92, this.fwCfg, this.fpuError, this.dma, this.fdc, this.lapic, this.ioapic]) bus.attach(d);
    this.i8042.onA20 = (on) => bus.memory.setA20(on);
    this.i8042.onReset = () => this.requestReset('reset through the keyboard controller');
    this.debug.onBiosLog = (b) => events.biosLog?.(b);
    this.debug.onDebugcon = (b) => events.debugcon?.(b);
    this.debug.onPostCode = (c) => (bus.stats.postCode = c);
    if (events.debugExit) this.debug.onExit = (v) => events.debugExit?.(v);
    bus.attach(this.debug);
    this.com1.onTransmit = (b) => events.serial?.(0, b);
    this.com2.onTransmit = (b) => events.serial?.(1, b);
    this.port92.onA20 = (on) => bus.memory.setA20(on);
    this.port92.onReset = () => this.requestReset('reset through port 0x92');

    this.pci = new PciBus(bus);
    this.hostBridge.onPam = (i, v) => bus.memory.setPam(i, v);
    this.isaBridge.onPirq = (link, v) => this.pci.setPirq(link, v);
    this.pci.onResetControl = (v) => {
      if (v & 0x04) this.requestReset('reset through port 0xCF9');
    };
    this.pci.plug(this.hostBridge, 0);
    this.pci.plug(this.isaBridge, 1);
    this.pci.plug(this.ide, 1, 1);
    this.pci.plug(this.acpi, 1, 3);
    this.acpi.onPowerOff = () => {
      this.stopped = 'the guest powered the machine off (ACPI S5)';
      this.cpu.requestStop();
    };
    this.pci.plug(this.vga, 2);

    // NICs: the first PCI one at 00:03.0, as QEMU places it, the next ones after it.
    this.network = new MachineNetwork(config.network ?? { nics: [], netdevs: [] }, bus.clock, { log: events.log, ...env.network }, config.nicRom);
    let nicSlot = 3;
    for (const { nic, config: c } of this.network.nics) {
      this.paths.register(nic, ne2000Spec(nic));
      if (c.model === 'ne2k_pci') this.pci.plug(nic, nicSlot++);
      else bus.attach(nic);
    }
    if (config.edu) {
      this.edu = new EduDevice();
      this.paths.register(this.edu, eduSpec());
      this.pci.plug(this.edu, nicSlot);
    }
    // VT-d (issue 23): the unit in front of every PCI bus master and the ISA DMA; its fault
    // event is an MSI to the local APIC. The VMM's fence waits for a direct-assigned device.
    this.vmmFence = new VmmFence({ ramBytes, clock: bus.clock });
    if (config.iommu) {
      const iommu = new IntelIommu({ ramBytes });
      this.iommu = iommu;
      bus.attach(iommu);
      iommu.msi = (address, data) => deliverMsi(address, data, (v, mode, level, dest, logical) => this.lapic.deliver(v, mode, level, dest, logical));
      putBehindIommu(bus, iommu, [bus.rowOf(this.dma)]);
    }
    // A direct-assigned bus master reaches guest memory only through the VMM's fence (after
    // the guest's own VT-d, when there is one), as VFIO's host IOMMU domain confines an
    // assigned device; on the emulated path the device model's DMA is the VMM's own access
    // to guest memory, so only the guest's VT-d applies (issue 23 item 5).
    const dmaMasters = [this.ide, ...(this.edu ? [this.edu] : [])];
    const fenceFor = (row: number, name: string, path: 'direct' | 'emulated') => {
      const sid = bus.stats.devices[row]?.pci !== undefined ? sourceIdOf(bus.stats.devices[row].pci!) : null;
      const guest = this.iommu && sid !== null ? this.iommu.translator(sid) : null;
      bus.setDmaTranslate(row, path === 'direct' ? (guest ? this.vmmFence.behind(guest, name) : this.vmmFence.translator(name)) : guest);
    };
    for (const d of dmaMasters) fenceFor(bus.rowOf(d), d.name, this.paths.pathOf(d.name));
    this.paths.onPathChange = (row, name, path) => {
      if (dmaMasters.some((d) => d.name === name)) fenceFor(row, name, path);
    };

    // Time within a slice: by the instruction count, or by the host clock.
    let sliceStart = 0;
    this.markSlice = () => {
      // The CPU's count is of the slice about to start: a stale count from the last
      // slice would put now() (and so this slice's start) that far ahead.
      this.cpu.retired = 0;
      sliceStart = bus.clock.now();
    };
    bus.clock.progress = config.deterministic
      ? () => sliceStart + this.cpu.retired * DETERMINISTIC_NS_PER_INSTRUCTION
      : () => Math.max(sliceStart, Math.min((performance.now() - this.wallStart) * 1e6, sliceStart + this.cpu.retired * WALL_CLOCK_MAX_NS_PER_INSTRUCTION));
    this.rtc.fillCmos({ memoryBytes: ramBytes, boot: config.boot, floppy: config.fda !== undefined, hardDisk: config.hda !== undefined });
    configurePcFirmware(this.fwCfg, config, ramBytes);
    this.wallStart = performance.now();
  }

  private requestReset(reason: string): void {
    this.pendingReset = reason;
    this.cpu.requestStop();
  }

  /**
   * Every device, in the order a state load must follow: the interrupt controllers last,
   * so the lines the other devices drive again as they load invent no edges.
   */
  private get devices(): Device[] {
    return [this.pit, this.rtc, this.i8042, this.com1, this.com2, this.port92, this.fwCfg, this.debug, this.fpuError, this.dma, this.fdc, this.vga, this.ide, ...this.network.nics.map((n) => n.nic), ...(this.edu ? [this.edu] : []), ...(this.iommu ? [this.iommu] : []), this.acpi, this.hostBridge, this.isaBridge, this.ioapic, this.lapic, this.pic];
  }

  /** Hardware reset: the CPU and every device to their reset state; RAM is kept (as on a PC). */
  reset(reason: string): void {
    this.events.reset?.(reason);
    this.bus.memory.setA20(true);
    this.pci.reset();
    for (const d of this.devices) d.reset();
    this.cpu.reset();
    this.stopped = null;
  }

  /**
   * The whole machine as plain data (DESIGN.md seam 2): typed arrays and numbers only, so
   * it can be posted to another thread, stored in IndexedDB, or loaded into a machine
   * built from the same config. Taken between run() calls.
   */
  saveState(): MachineState {
    const devices: Record<string, DeviceState> = {};
    for (const d of this.devices) devices[d.name] = d.saveState();
    return {
      version: 1,
      memoryBytes: this.bus.memory.ram.length,
      clock: this.bus.clock.saveState(),
      cpu: this.cpu.saveState(),
      memory: this.bus.memory.saveState(),
      pci: this.pci.saveState(),
      devices,
    };
  }

  /** Load what saveState() returned (from a machine with the same config). */
  loadState(state: MachineState): void {
    if (state.version !== 1) throw new Error(`saved machine state version ${String(state.version)} is not one this emulator reads`);
    if (state.memoryBytes !== this.bus.memory.ram.length) throw new Error(`the saved machine has ${state.memoryBytes >> 20} MiB of RAM, this one ${this.bus.memory.ram.length >> 20} MiB`);
    const clock = this.bus.clock;
    clock.loadState(state.clock); // drops timers: each device re-arms its own as it loads
    this.bus.memory.loadState(state.memory);
    this.bus.releaseIrqLines();
    for (const d of this.devices) {
      const s = state.devices[d.name];
      if (!s) throw new Error(`the saved machine has no state for ${d.name}`);
      d.loadState(s);
      if (d === this.isaBridge) this.pci.loadState(state.pci);
    }
    this.cpu.loadState(state.cpu);
    this.pendingReset = null;
    this.stopped = null;
    this.wallStart = performance.now() - clock.now() / 1e6;
  }

  /**
   * Run for up to `maxInstructions` (or until the guest stops making progress); returns
   * the instructions executed. Deterministic mode: time is derived from the count, and
   * time the CPU spends halted counts against the budget as the instructions it would
   * have run (so a halted guest with a periodic timer still returns). Wall-clock mode:
   * returns early when the CPU halts; sleep `nextWakeMs()` and call again.
   */
  run(maxInstructions: number): number {
    const cpu = this.cpu;
    const clock = this.bus.clock;
    let done = 0;
    let idle = 0;
    // A device changes path only here, between slices: an instruction boundary with no ioreq in flight.
    if (this.paths.switchPending) this.paths.applyPending();
    while (done + idle < maxInstructions && this.stopped === null && this.paths.failure === null) {
      if (this.paths.switchPending) this.paths.applyPending();
      if (this.pendingReset !== null) {
        const why = this.pendingReset;
        this.pendingReset = null;
        this.reset(why);
      }
      // Wall-clock mode: a guest that sat in HLT since the last slice was asleep for that
      // host time, and its clock must show it before the next slice starts. Otherwise the
      // slice would start at the moment the guest fell asleep, and if something woke it (a
      // frame from a host socket, a key) and it then ran flat out to the end of the slice,
      // the whole sleep would be counted as lag below and erased: under load a network
      // transfer's guest saw a tenth of the host's time go by.
      if (!this.deterministic && cpu.halted) clock.advanceTo((performance.now() - this.wallStart) * 1e6);
      // A timer already due (a frame the network queued between runs) fires before the slice, not after it.
      if (clock.nextDeadline() <= clock.now()) clock.advanceTo(clock.now());
      let budget = Math.min(SLICE, maxInstructions - done - idle);
      if (this.deterministic) {
        const untilTimer = Math.ceil((clock.nextDeadline() - clock.now()) / DETERMINISTIC_NS_PER_INSTRUCTION);
        if (untilTimer > 0 && untilTimer < budget) budget = untilTimer;
      }
      this.markSlice();
      const start = clock.now();
      const n = cpu.run(Math.max(1, budget));
      done += n;
      if (this.deterministic) {
        clock.advanceTo(start + n * DETERMINISTIC_NS_PER_INSTRUCTION);
        if (cpu.halted && this.pendingReset === null) {
          if (this.haltedForGood()) break;
          // Idle: jump straight to the next timer; nothing else can wake the CPU.
          const next = clock.nextDeadline();
          if (next === Infinity) {
            this.stopped = 'the CPU halted with no timer left to wake it';
            break;
          }
          const now = clock.now();
          idle += Math.max(1, Math.ceil((next - now) / DETERMINISTIC_NS_PER_INSTRUCTION));
          clock.advanceTo(next);
        }
      } else {
        let target = (performance.now() - this.wallStart) * 1e6;
        if (!cpu.halted) {
          // Running flat out: at most what the instructions executed justify; the rest of the
          // host time is lag (wallStart moves up), so the guest's clock stays continuous.
          const cap = start + n * WALL_CLOCK_MAX_NS_PER_INSTRUCTION;
          if (target > cap) {
            this.wallStart += (target - cap) / 1e6;
            target = cap;
          }
        }
        clock.advanceTo(target);
        // A triple fault halts the CPU with a reset pending: that is not an idle HLT. Nor is
        // a HLT that a timer fired on the way here has already ended (a frame arrived, a key
        // was typed): sleeping now would delay that interrupt by the caller's whole sleep.
        if (cpu.halted && this.pendingReset === null && !(cpu.nmiDeliverable || ((cpu.flags & IF) !== 0 && cpu.intrLine))) {
          this.haltedForGood();
          break; // the caller sleeps until nextWakeMs()
        }
      }
    }
    if (this.network.nics.length > 0) this.network.publish(this.bus.stats, (nic) => this.bus.rowOf(nic));
    return done;
  }

  /**
   * For a worker or the CLI in wall-clock mode: run for about `hostMs` of host time (in
   * chunks of `chunk` instructions), stopping early when the CPU halts. Returns what the
   * caller needs to schedule the next call.
   */
  runSlice(hostMs: number, chunk = 100_000): { instructions: number; halted: boolean; sleepMs: number; stopped: string | null } {
    const end = performance.now() + hostMs;
    let instructions = 0;
    do {
      instructions += this.run(chunk);
    } while (!this.cpu.halted && this.stopped === null && this.paths.failure === null && this.pendingReset === null && performance.now() < end);
    const halted = this.cpu.halted && this.pendingReset === null;
    const sleepMs = halted && !this.deterministic ? this.nextWakeMs() : 0;
    // A failed device model pauses the machine: the host sees why instead of spinning on empty slices.
    return { instructions, halted, sleepMs, stopped: this.stopped ?? this.paths.failure };
  }

  /**
   * HLT with interrupts disabled (and no NMI waiting to be taken) is taken to mean the guest
   * is done (a kernel's final `cli; hlt`, a test's exit).
   */
  private haltedForGood(): boolean {
    const cpu = this.cpu;
    if ((cpu.flags & IF) !== 0 || cpu.nmiDeliverable) return false;
    this.stopped = 'the CPU halted with interrupts disabled';
    return true;
  }

  /** Wall-clock mode: milliseconds of host time until the next timer (for an idle guest). */
  nextWakeMs(): number {
    const next = this.bus.clock.nextDeadline();
    if (next === Infinity) return 100;
    return Math.max(0, next / 1e6 - (performance.now() - this.wallStart));
  }

  /**
   * Wall-clock mode, after the caller paused the machine: virtual time carries on from
   * where it stopped instead of jumping over the host time that passed (which would fire
   * every timer at once and tell the guest its clock jumped).
   */
  resumeWallClock(): void {
    this.wallStart = performance.now() - this.bus.clock.now() / 1e6;
  }

  /** Type into COM1; returns how many bytes fitted (the rest should be offered again later). */
  serialInput(bytes: ArrayLike<number>): number {
    return this.com1.receive(bytes);
  }
}

/** What Machine.saveState() returns: plain data (typed arrays, numbers, strings). */
export interface MachineState {
  version: 1;
  memoryBytes: number;
  clock: ReturnType<VirtualClock['saveState']>;
  cpu: ReturnType<Cpu['saveState']>;
  memory: ReturnType<PhysicalMemory['saveState']>;
  pci: ReturnType<PciBus['saveState']>;
  devices: Record<string, DeviceState>;
}

/**
 * FERR# of the x87 (CR0.NE = 0, the PC way): the coprocessor error latch raises IRQ13
 * until software writes port 0xF0 (IBM PC AT technical reference, "Math coprocessor").
 */
export class FpuErrorLatch implements Device {
  readonly name = 'fpu-error';
  state = { asserted: false };
  private line: IrqLine | null = null;
  attach(ctx: DeviceContext): void {
    this.line = ctx.irq(13);
    ctx.mapPorts(0xf0, 1, { read: () => 0xff, write: () => this.set(false) });
  }
  assert(): void {
    this.set(true);
  }
  private set(on: boolean): void {
    this.state.asserted = on;
    this.line?.set(on);
  }
  reset(): void {
    this.set(false);
  }
  saveState(): DeviceState {
    return FPU_ERROR_STATE.save(this.state);
  }
  loadState(s: DeviceState): void {
    this.set(FPU_ERROR_STATE.load(s, this.name).asserted);
  }
}

/** The latch holding FERR# (IRQ13) until port 0xF0 is written. */
export const FPU_ERROR_STATE = vmstate('fpu-error', 1, { asserted: bool });

/** What the host running the machine lends it beyond the config (not plain data: sockets, files). */
export interface MachineEnvironment {
  network?: NetworkEnvironment;
  /** Starts the device-model worker for devices switched to the emulated path (none: every device stays direct). */
  deviceModel?: DeviceModelConnector;
}

export function createMachine(config: MachineConfig, events: MachineEvents = {}, env: MachineEnvironment = {}): Machine {
  return new Machine(config, events, env);
}
