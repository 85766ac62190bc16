/**
 * The machine's side of the worker protocol, independent of the host it runs in: a
 * browser module worker (machine-worker.ts) or a Node worker thread (node-worker.ts, used
 * by `npm run bench`). It builds the machine from a `boot` message, runs it in slices that
 * give the event loop back between them (so commands, keys and serial input get in),
 * sleeps while the guest idles until its next timer, batches serial output, renders the
 * screen once per animation frame while the page is visible and has drawn the last one,
 * and reports speed and failures in plain words.
 */
import type { Machine } from '../emulator/machine/machine.ts';
import { createMachine } from '../emulator/machine/machine.ts';
import { NetworkHost } from './network-host.ts';
import { DEFAULT_UPLINK } from './network-protocol.ts';
import type { WebSocketLike } from '../emulator/net/upstream.ts';
import { sourceIdOf } from '../emulator/iommu/wiring.ts';
import { buildMachineConfig, ImageConfigError, type MachineInputs } from '../emulator/machine/image-config.ts';
import { KernelImageError } from '../emulator/firmware/linux-boot.ts';
import { MAX_HEIGHT, MAX_WIDTH, VgaRenderer } from '../emulator/devices/vga/renderer.ts';
import type { BootRequest, DevicePathName, FromWorker, IommuView, MachinePhase, MachineStatus, ToWorker } from './protocol.ts';
import { DeviceModelSpawner } from './device-model-web-spawn.ts';

/**
 * How the host sends a message to the page. It takes no transfer list, on purpose: the
 * worker never transfers (detaches) an ArrayBuffer. The first detach in a V8 isolate
 * invalidates its "array buffer detaching" protector for good: every optimized function
 * that reads a typed array (the whole CPU) is thrown away at once, and all code compiled
 * after it checks for a detached buffer on each typed-array access. Transferring each
 * batch of serial output cost the Chromium worker about a tenth of its speed on a
 * tiny-linux boot (8 alternating boots each way). Messages are copied instead; they are
 * small (a serial batch), or rare and bounded (frames and counters, only without shared
 * memory).
 */
export type Post = (message: FromWorker) => void;

/** Host time a slice of guest execution may take before the event loop gets a turn. */
const SLICE_MS = 10;
/** Longest sleep while the guest idles (it also bounds how late a frame or a key can be). */
const MAX_SLEEP_MS = 16;
/** Least host time between two rendered frames (60 Hz). */
const FRAME_MS = 1000 / 60;
/**
 * Rendering may take at most this share of the worker's time: after a frame that took r
 * ms to draw the next waits r / RENDER_SHARE ms. An idle or text screen costs next to
 * nothing and stays at 60 Hz; a framebuffer console scrolling at full speed redraws
 * everything each frame and is shown at a lower rate rather than slowing the guest.
 */
const RENDER_SHARE = 0.04;
const STATUS_MS = 500;
/** Counter copies without shared memory: four a second, as the page reads them (DevicesPanel). */
const STATS_MS = 250;
/** Serial bytes are posted once per slice, or sooner when this many are waiting. */
const SERIAL_BATCH = 4096;

/** Make-then-break of Ctrl, Alt, Delete in scan code set 2 (Delete is E0 71). */
const CTRL_ALT_DEL = [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14];

const hasShared = typeof SharedArrayBuffer === 'function';

export class MachineHost {
  private machine: Machine | null = null;
  private renderer: VgaRenderer | null = null;
  private readonly frame: Uint8ClampedArray;
  private phase: MachinePhase = 'off';
  private generation = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private queued = false;
  private readonly channel: MessageChannel | null;
  private serialOut: number[][] = [[], []];
  private serialIn: number[] = [];
  private visible = false;
  /** The page drew the last frame (or none was sent yet). */
  private frameAcked = true;
  private nextFrame = 0;
  private lastStats = 0;
  // Speed accounting.
  /** Host time spent in the running phase before `runningSince`. */
  private runningMs = 0;
  private runningSince: number | null = null;
  private lastStatus = 0;
  private statusInstructions = 0;
  private statusBusyMs = 0;
  private statusAt = 0;
  private biosLine = '';
  /** BootRequest.pauseOn, and the tail of COM1's output it is looked for in. */
  private pauseOn: string | null = null;
  private serialTail = '';
  /** The machine's network as the page sees it: its uplink, the capture, the packet list (network-host.ts). */
  private net: NetworkHost | null = null;
  /**
   * The page's device-model worker (device-model-web-spawn.ts), started with each machine so
   * the first switch to emulated finds it ready. Null where workers cannot start workers
   * with shared memory (a Node host, a page without cross-origin isolation).
   */
  private readonly deviceModel: DeviceModelSpawner | null;
  /** A switch asked for and not made (or under way), per device, in words. */
  private readonly pathNotes = new Map<string, string>();

  constructor(private readonly post: Post, options: { deviceModel?: DeviceModelSpawner | null } = {}) {
    this.deviceModel = options.deviceModel !== undefined ? options.deviceModel : typeof Worker === 'function' && hasShared ? new DeviceModelSpawner() : null;
    const bytes = MAX_WIDTH * MAX_HEIGHT * 4;
    this.frame = new Uint8ClampedArray(hasShared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    // A message to ourselves runs the next slice right after pending events, without the
    // 4 ms clamp browsers put on nested setTimeout(0).
    this.channel = typeof MessageChannel === 'function' ? new MessageChannel() : null;
    if (this.channel) {
      this.channel.port1.onmessage = () => this.tick();
      // Node's MessagePort keeps the thread alive only while started; unref lets a Node host exit.
      (this.channel.port1 as unknown as { unref?: () => void }).unref?.();
    }
  }

  handle(msg: ToWorker): void {
    try {
      this.dispatch(msg);
    } catch (e) {
      this.fail(e);
    }
  }

  private dispatch(msg: ToWorker): void {
    const m = this.machine;
    switch (msg.type) {
      case 'boot':
        this.boot(msg.request);
        return;
      case 'power-off':
        this.powerOff();
        return;
      case 'reset':
        if (m) {
          m.reset('the reset button');
          this.renderer?.invalidate();
          if (this.phase === 'stopped') this.setPhase('running');
          this.wake();
        }
        return;
      case 'pause':
        if (m && this.phase === 'running') this.setPhase('paused');
        return;
      case 'resume':
        if (m && this.phase === 'paused') {
          if (!m.config.deterministic) m.resumeWallClock();
          this.setPhase('running');
          this.wake();
        }
        return;
      case 'serial-in':
        for (const b of msg.data) this.serialIn.push(b);
        this.feedSerial();
        this.wake();
        return;
      case 'key':
        m?.i8042.keyboard(msg.scancodes);
        this.wake();
        return;
      case 'mouse':
        m?.i8042.mouse(msg.dx, msg.dy, msg.buttons, msg.wheel);
        this.wake();
        return;
      case 'ctrl-alt-del':
        m?.i8042.keyboard(CTRL_ALT_DEL);
        this.wake();
        return;
      case 'visibility':
        this.visible = msg.visible;
        if (msg.visible) {
          // A page that comes back may have dropped the frame it was sent while hidden.
          this.frameAcked = true;
          this.renderer?.invalidate();
          this.maybeRender(performance.now());
        }
        return;
      case 'frame-ack':
        this.frameAcked = true;
        return;
      case 'network':
        this.post({ type: 'network', view: this.net?.view() ?? null, packets: this.net?.takePackets() ?? null });
        return;
      case 'pcap': {
        const p = this.net?.pcap();
        this.post(p ? { type: 'pcap', file: p.file, packets: p.packets } : { type: 'pcap', file: null, packets: 0, reason: 'no machine is on' });
        return;
      }
      case 'describe':
        if (m) this.post({ type: 'machine', ...m.pci.describe(), iommu: describeIommu(m) });
        return;
      case 'device-path':
        void this.switchPath(msg.name, msg.path, msg.resume === true);
        return;
    }
  }

  // -------------------------------------------------------------------------------------
  // Power
  // -------------------------------------------------------------------------------------

  /** The network for a boot request's uplink, with what this host (a browser worker, or Node) offers it. */
  private makeNetwork(r: BootRequest): NetworkHost {
    const g = globalThis as unknown as { location?: { origin: string }; WebSocket?: new (url: string) => unknown; crypto: Crypto };
    const WS = g.WebSocket;
    return new NetworkHost({
      uplink: r.network ?? DEFAULT_UPLINK,
      wake: () => this.wake(),
      origin: g.location?.origin ?? null,
      fetch: typeof fetch === 'function' ? (url, init) => fetch(url, init) : null,
      createWebSocket: WS ? (url) => new WS(url) as WebSocketLike : null,
      memberId: g.crypto.randomUUID().slice(0, 8),
      since: Date.now(),
      random: (n) => g.crypto.getRandomValues(new Uint8Array(n)),
      epochNs: Date.now() * 1e6,
    });
  }

  private boot(r: BootRequest): void {
    this.powerOff();
    const bytes = (f: { bytes: ArrayBuffer } | undefined) => (f ? new Uint8Array(f.bytes) : undefined);
    const net = this.makeNetwork(r);
    const inputs: MachineInputs = {
      memoryMiB: r.memoryMiB,
      bios: new Uint8Array(r.bios.bytes),
      vgaBios: bytes(r.vgaBios),
      kernel: bytes(r.kernel),
      initrd: bytes(r.initrd),
      append: r.append,
      cdrom: bytes(r.cdrom),
      hda: bytes(r.hda),
      fda: bytes(r.fda),
      boot: r.boot,
      deterministic: r.deterministic,
      // The NIC and the user network a QEMU user gets by default, with the uplink the
      // user chose in the machine's settings (network-host.ts).
      network: net.config(),
      iommu: r.iommu,
      names: { bios: r.bios.name, kernel: r.kernel?.name, initrd: r.initrd?.name, cdrom: r.cdrom?.name, hda: r.hda?.name, fda: r.fda?.name },
    };
    let machine: Machine;
    try {
      const config = buildMachineConfig(inputs);
      // edu (issue 23): on its default direct path, so its DMA meets the VMM's fence.
      if (r.edu) config.edu = true;
      const generation = this.generation;
      machine = createMachine(config, {
        serial: (index, byte) => {
          const q = this.serialOut[index];
          q.push(byte);
          if (q.length >= SERIAL_BATCH) this.flushSerial();
        },
        reset: (reason) => {
          if (generation !== this.generation) return;
          this.renderer?.invalidate();
          this.post({ type: 'reset', reason });
        },
        biosLog: (byte) => this.biosLog(byte),
        log: (message) => this.post({ type: 'log', message }),
      }, { deviceModel: this.deviceModel?.connector, network: net.environment((message) => this.post({ type: 'log', message })) });
    } catch (e) {
      net.close();
      if (e instanceof ImageConfigError || e instanceof KernelImageError) {
        this.post({ type: 'error', message: `This machine cannot start: ${e.message}`, hint: 'Choose another file, or another role for it (CD, hard disk, floppy, kernel).' });
        this.setPhase('off');
        return;
      }
      throw e;
    }
    this.machine = machine;
    net.attach(machine);
    this.net = net;
    this.deviceModel?.start();
    this.pathNotes.clear();
    // The page marks each switch on the device's plot: when it happened, in both times.
    const fence = machine.paths.onPathChange;
    machine.paths.onPathChange = (row, name, path) => {
      fence?.(row, name, path);
      this.post({ type: 'path-switch', name, path, virtualNs: machine.bus.clock.now(), at: performance.timeOrigin + performance.now() });
    };
    this.renderer = new VgaRenderer(machine.vga);
    this.frameAcked = true;
    this.runningMs = 0;
    this.runningSince = null;
    this.statusInstructions = 0;
    this.statusBusyMs = 0;
    this.statusAt = performance.now();
    this.biosLine = '';
    this.pauseOn = r.pauseOn || null;
    this.serialTail = '';
    const layout = machine.bus.stats.layout();
    const shared = (b: ArrayBufferLike) => (hasShared && b instanceof SharedArrayBuffer ? b : null);
    this.post({
      type: 'ready',
      label: r.label,
      memoryMiB: machine.config.memoryMiB,
      deterministic: machine.config.deterministic,
      stats: { buffer: shared(layout.buffer), fields: layout.fields, stride: layout.stride, devices: layout.devices },
      ram: shared(machine.bus.memory.ram.buffer),
      vram: shared(machine.vga.vram.buffer),
      frame: shared(this.frame.buffer),
    });
    this.postPaths();
    this.setPhase('running');
    this.wake();
  }

  private powerOff(): void {
    this.generation++;
    this.cancel();
    this.flushSerial();
    this.machine = null;
    this.net?.close();
    this.net = null;
    // Devices the last machine had in its device model go with it.
    this.deviceModel?.recycle();
    this.renderer = null;
    this.serialIn = [];
    if (this.phase !== 'off') this.setPhase('off');
  }

  private setPhase(phase: MachinePhase): void {
    const now = performance.now();
    if (this.runningSince !== null) this.runningMs += now - this.runningSince;
    this.runningSince = phase === 'running' ? now : null;
    this.phase = phase;
    this.reportStatus(performance.now(), true);
  }

  // -------------------------------------------------------------------------------------
  // The run loop
  // -------------------------------------------------------------------------------------

  private cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Run the next slice as soon as the event loop allows (cancelling an idle sleep). */
  private wake(): void {
    if (this.phase !== 'running' || !this.machine) return;
    this.cancel();
    if (this.queued) return;
    this.queued = true;
    if (this.channel) this.channel.port2.postMessage(null);
    else this.timer = setTimeout(() => this.tick(), 0);
  }

  private sleep(ms: number): void {
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wake();
    }, ms);
  }

  private tick(): void {
    this.queued = false;
    const m = this.machine;
    if (!m || this.phase !== 'running') return;
    try {
      this.feedSerial();
      const start = performance.now();
      const r = m.runSlice(SLICE_MS);
      const end = performance.now();
      this.statusBusyMs += end - start;
      this.statusInstructions += r.instructions;
      this.flushSerial();
      if (this.machine !== m) return; // powered off from inside (cannot happen today, but cheap)
      if (this.pauseOn !== null && this.serialTail.includes(this.pauseOn)) {
        this.pauseOn = null;
        this.setPhase('paused');
        return;
      }
      this.maybeRender(end);
      this.maybeStats(end);
      this.reportStatus(end, false);
      if (m.paths.failure !== null) {
        // A device model threw or stopped answering: paused, not stopped; its card offers direct.
        this.postPaths();
        this.post({ type: 'error', message: `A device model failed: ${m.paths.failure}.`, hint: 'Switch the device to direct on its card in the Devices panel, then resume.' });
        this.setPhase('paused');
        return;
      }
      if (r.stopped !== null) {
        this.post({
          type: 'error',
          message: `The guest stopped the machine: ${r.stopped}.`,
          hint: 'This is how some guests end (a kernel panic or a finished test halts with interrupts off). Reset the machine or power it off.',
        });
        this.setPhase('stopped');
        return;
      }
      if (r.halted && r.sleepMs > 0) this.sleep(Math.min(MAX_SLEEP_MS, r.sleepMs));
      else this.wake();
    } catch (e) {
      this.fail(e);
    }
  }

  // -------------------------------------------------------------------------------------
  // Device paths (issue 22)
  // -------------------------------------------------------------------------------------

  /**
   * The monitor's `device_path NAME PATH`, asked for from a device's card. It runs here, in
   * a message handler: between CPU slices, an instruction boundary with no ioreq in flight.
   * A switch to emulated first waits (without blocking this worker's event loop) for the
   * device-model worker to be up; one that cannot be made is said in words on the card.
   */
  private async switchPath(name: string, path: DevicePathName, resume: boolean): Promise<void> {
    const m = this.machine;
    if (!m) return;
    if (!m.paths.has(name)) {
      this.post({ type: 'error', message: `${name} cannot change path (switchable: ${m.paths.names().join(', ')}).` });
      return;
    }
    if (path === 'emulated' && m.paths.pathOf(name) !== 'emulated') {
      let why = this.emulationUnavailable();
      if (why === null) {
        this.pathNotes.set(name, 'waiting for the device-model worker to start');
        this.postPaths();
        why = await this.deviceModel!.ready();
      }
      if (this.machine !== m) return;
      if (why) {
        this.pathNotes.set(name, `${name} stays direct: ${why}`);
        this.postPaths();
        return;
      }
    }
    try {
      m.paths.switchNow(name, path);
      this.pathNotes.delete(name);
    } catch (e) {
      this.pathNotes.set(name, `${name} stays ${m.paths.pathOf(name)}: ${(e as Error).message}`);
    }
    this.postPaths();
    if (resume && m.paths.failure === null && this.phase === 'paused') {
      if (!m.config.deterministic) m.resumeWallClock();
      this.setPhase('running');
    }
    this.wake();
  }

  /** Why this host cannot run a device model, or null when it can. */
  private emulationUnavailable(): string | null {
    if (this.deviceModel) return null;
    return hasShared ? 'this host cannot start a device-model worker' : 'the page is not cross-origin isolated, so there is no shared memory for the device model';
  }

  private postPaths(): void {
    const m = this.machine;
    if (!m) return;
    this.post({
      type: 'paths',
      devices: m.paths.list().map((d) => ({ name: d.name, path: d.path, failed: d.failed, note: this.pathNotes.get(d.name) ?? null })),
      failure: m.paths.failure,
      emulation: this.emulationUnavailable(),
    });
  }

  private feedSerial(): void {
    const m = this.machine;
    if (!m || this.serialIn.length === 0) return;
    const n = m.serialInput(this.serialIn);
    if (n > 0) this.serialIn.splice(0, n);
  }

  private flushSerial(): void {
    for (let i = 0; i < 2; i++) {
      const q = this.serialOut[i];
      if (q.length === 0) continue;
      const data = Uint8Array.from(q);
      this.serialOut[i] = [];
      if (i === 0 && this.pauseOn !== null) {
        this.serialTail = (this.serialTail + String.fromCharCode(...data.subarray(-1024))).slice(-2048);
      }
      this.post({ type: 'serial-out', index: i, data });
    }
  }

  /** SeaBIOS's log (port 0x402), watched line by line for the one failure users hit. */
  private biosLog(byte: number): void {
    if (byte !== 10) {
      if (this.biosLine.length < 200) this.biosLine += String.fromCharCode(byte);
      return;
    }
    const line = this.biosLine.trim();
    this.biosLine = '';
    if (line.startsWith('No bootable device')) {
      this.post({
        type: 'error',
        message: 'The BIOS found nothing to boot: no bootable floppy, hard disk or CD (it retries every few seconds).',
        hint: 'Choose a guest from the list, or drop a bootable image (an ISO as CD, a raw disk image as hard disk).',
      });
    }
  }

  private maybeRender(now: number): void {
    const m = this.machine;
    const renderer = this.renderer;
    if (!m || !renderer || !this.visible || !this.frameAcked || now < this.nextFrame) return;
    const info = renderer.render(this.frame, m.bus.clock.now());
    const took = performance.now() - now;
    this.nextFrame = now + Math.max(FRAME_MS, took / RENDER_SHARE);
    this.frameAcked = false;
    const text = info.mode === 'text' && info.rects.length > 0 ? m.vga.textLines() : undefined;
    if (hasShared) {
      this.post({ type: 'frame', info, text });
    } else {
      this.post({ type: 'frame', info, pixels: this.frame.slice(0, info.width * info.height * 4).buffer, text });
    }
  }

  private maybeStats(now: number): void {
    const m = this.machine;
    if (hasShared || !m || now - this.lastStats < STATS_MS) return;
    this.lastStats = now;
    this.post({ type: 'stats', counters: m.bus.stats.counters.slice() });
  }

  private reportStatus(now: number, force: boolean): void {
    if (!force && now - this.lastStatus < STATUS_MS) return;
    const m = this.machine;
    const interval = now - this.statusAt;
    const status: MachineStatus = {
      phase: this.phase,
      mips: interval > 0 ? this.statusInstructions / interval / 1e3 : 0,
      busyMips: this.statusBusyMs > 0 ? this.statusInstructions / this.statusBusyMs / 1e3 : 0,
      instructions: m ? m.cpu.instructionCount : 0,
      virtualSeconds: m ? m.bus.clock.now() / 1e9 : 0,
      realSeconds: (this.runningMs + (this.runningSince !== null ? now - this.runningSince : 0)) / 1000,
    };
    this.lastStatus = now;
    this.statusAt = now;
    this.statusInstructions = 0;
    this.statusBusyMs = 0;
    this.post({ type: 'status', status });
  }

  /** An exception out of the emulator: stop this machine and say so, never a silent hang. */
  private fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.post({ type: 'log', message: err.stack ?? err.message });
    this.post({
      type: 'error',
      message: `The emulator stopped on an internal error: ${err.message}`,
      hint: 'Reset the machine or power it off and on again; if it happens again with the same guest, please report it with the guest\'s name.',
    });
    this.cancel();
    if (this.machine) this.setPhase('stopped');
  }
}

/** The page's view of the guest's VT-d unit and of the VMM's fence (IommuView). */
function describeIommu(m: Machine): IommuView {
  const unit = m.iommu;
  let vtd: IommuView['vtd'] = null;
  if (unit) {
    const d = unit.describe();
    const contexts = d.translation
      ? m.pci.describe().functions.flatMap((f) => {
        const sid = sourceIdOf(f.bdf);
        if (sid === null) return [];
        // A bounded walk: a context mapping all of RAM page by page is summarised, not listed.
        const c = unit.describeContext(sid, 8192);
        return [{ bdf: f.bdf, device: f.name, present: c.present, fault: c.fault, domain: c.domain, levels: c.levels, runs: c.runs.slice(0, 16), truncated: c.truncated || c.runs.length > 16 }];
      })
      : [];
    vtd = {
      translation: d.translation,
      rootTable: d.rootTable,
      counters: { ...d.counters },
      records: d.records,
      faults: d.faults.slice(-32).map((f) => ({ atNs: f.atNs, source: f.source, addr: f.addr, write: f.write, reasonText: f.reasonText, outcome: f.outcome })),
      contexts,
    };
  }
  const fence = m.vmmFence.describe();
  return { vtd, fence: { counters: fence.counters, faults: fence.faults.slice(-32) } };
}
