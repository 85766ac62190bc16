/**
 * The device model (DESIGN.md seam 4, the QEMU/Xen side of the emulated path): answers
 * the ioreqs of src/emulator/bus/ioreq.ts with the same device classes the vCPU's thread
 * runs on the direct path. Each device gets a DeviceContext whose services go back to the
 * vCPU as callback requests inside the round trip in flight: IRQ levels, timers on the
 * vCPU's virtual clock (now() is the time the vCPU wrote with the request), DMA through
 * the vCPU's bus (so it is gated, translated by the IOMMU and counted as on the direct
 * path), log lines, and the device's outbound callbacks (a transmitted byte or frame).
 *
 * No DOM and no Node imports: the Node entry (device-model-node.ts) and a page's Web
 * Worker give it the shared page and a synchronous message pipe.
 */
import type { AccessSize, Device, DeviceContext, DeviceState, IrqLine, Mapping, RegisterBlock } from '../emulator/bus/device.ts';
import {
  CB_BUS_MASTER, CB_CANCEL_TIMER, CB_DMA_READ, CB_DMA_WRITE, CB_IRQ, CB_LOG, CB_MAP, CB_OUTBOUND, CB_SET_TIMER,
  IOREQ_READ, IOREQ_TYPE_CALL, IOREQ_TYPE_CONTROL, IOREQ_TYPE_COPY, IOREQ_TYPE_PCI_CONFIG, IOREQ_TYPE_PIO, IOREQ_TYPE_TIMER,
  IoreqPage, IoreqResponder, createIoreqBuffer, loadElement, storeElement, type Ioreq, type IoreqRequester,
} from '../emulator/bus/ioreq.ts';
import { BAR_KEY, type DeviceModelControl, type HandOver, type DeviceModelLink, type DeviceModelReply } from '../emulator/bus/device-paths.ts';
import { Uart16550A, type UartOptions } from '../emulator/devices/uart.ts';
import { Ne2000, type Ne2000Options } from '../emulator/devices/ne2000.ts';
import { Piix3Ide } from '../emulator/devices/ide/piix3-ide.ts';
import { EduDevice } from '../emulator/devices/edu.ts';
import { StdVga, type SharedVram } from '../emulator/devices/vga/std-vga.ts';
import { sharedMedium, type SharedMedium } from '../emulator/machine/switchable.ts';

/** The device classes the device model can run, by SwitchableSpec.kind. */
export const DEVICE_KINDS: Record<string, (config: unknown) => Device> = {
  uart: (config) => new Uart16550A(config as UartOptions),
  ne2000: (config) => new Ne2000(config as Ne2000Options),
  edu: () => new EduDevice(),
  // The VGA's video memory and dirty log are the vCPU's (shared memory): only its registers move here.
  vga: (config) => new StdVga({ shared: config as SharedVram }),
  // The drives' media are the vCPU's, moved to shared memory at the switch: both copies of the controller see one disk.
  ide: (config) => {
    const c = config as { hda?: SharedMedium; cdrom?: SharedMedium };
    return new Piix3Ide({ hda: c.hda && sharedMedium(c.hda), cdrom: c.cdrom && sharedMedium(c.cdrom) });
  },
};

interface ModelDevice {
  device: Device;
  /** Where the vCPU has each of the device's mappings, by ordinal (from the load message). */
  placed: { start: number; mapped: boolean }[];
  /** Forget the level each IRQ line was last sent at (before a state load: the vCPU's bus released them). */
  forgetLevels: (() => void)[];
  /**
   * Set while the device is built and attached, before its state is loaded: the levels it
   * drives then are those of a device at power-on, not of the one that moves here, whose
   * lines the vCPU's bus still holds. Sending them would put a glitch on a line held high.
   */
  building: boolean;
  blocks: Map<number, RegisterBlock>;
  timers: Map<number, () => void>;
  inbound: readonly string[];
  sabotage: 'throw' | 'hang' | null;
}

export class DeviceModel {
  private readonly devices = new Map<number, ModelDevice>();
  private readonly responder: IoreqResponder;
  private nextTimer = 1;
  /** The virtual time effects are stamped with: the request's, or a buffered write's own. */
  private now = 0;
  running = true;

  constructor(
    private readonly page: IoreqPage,
    private readonly take: () => unknown,
    private readonly post: (reply: DeviceModelReply) => void,
    wait?: (state: number, timeoutMs: number) => number,
  ) {
    this.responder = new IoreqResponder(page, wait);
  }

  /** Serve requests until stopped (the worker's loop). */
  serve(): void {
    this.page.markModelReady();
    while (this.running) this.serveOne(1_000);
  }

  /** Wait up to timeoutMs for one request and answer it; false if none came. */
  serveOne(timeoutMs: number): boolean {
    if (!this.responder.take(timeoutMs)) return false;
    const t0 = performance.now();
    const r = this.page.readRequest();
    this.now = this.page.now;
    let answer: number;
    try {
      // Xen's rule: buffered writes are older than any answered request, so they go first.
      this.page.drainBuffered((device, key, offset, size, value, at) => {
        this.now = at;
        this.block(device, key).write(offset, size as AccessSize, value);
      });
      this.now = this.page.now;
      answer = this.handle(r);
    } catch (err) {
      this.responder.fail(`${this.describe(r)}: ${err instanceof Error ? err.message : String(err)}`);
      return true;
    }
    this.responder.respond(answer, (performance.now() - t0) * 1e6);
    return true;
  }

  private describe(r: Ioreq): string {
    return this.devices.get(r.device)?.device.name ?? `device ${r.device}`;
  }

  private device(id: number): ModelDevice {
    const d = this.devices.get(id);
    if (!d) throw new Error(`no device ${id} in the device model`);
    return d;
  }

  private block(id: number, key: number): RegisterBlock {
    const b = this.device(id).blocks.get(key);
    if (!b) throw new Error(`${this.device(id).device.name} has no register block ${key}`);
    return b;
  }

  private handle(r: Ioreq): number {
    switch (r.type) {
      case IOREQ_TYPE_PIO:
      case IOREQ_TYPE_COPY:
        return this.access(r);
      case IOREQ_TYPE_TIMER: {
        const d = this.device(r.device);
        const cb = d.timers.get(r.addr);
        d.timers.delete(r.addr);
        cb?.();
        return 0;
      }
      case IOREQ_TYPE_CALL: {
        const d = this.device(r.device);
        const name = d.inbound[r.addr];
        const fn = (d.device as unknown as Record<string, unknown>)[name];
        if (typeof fn !== 'function') throw new Error(`${d.device.name} has no method ${name}`);
        const v: unknown = (fn as (b: Uint8Array) => unknown).call(d.device, this.page.data.slice(0, this.page.length));
        return typeof v === 'number' ? v : 0;
      }
      case IOREQ_TYPE_CONTROL:
        return this.control(this.take() as DeviceModelControl | undefined);
      case IOREQ_TYPE_PCI_CONFIG: {
        const spec = (this.device(r.device).device as unknown as { pci?: { configRead?(o: number, s: number): number | undefined; configWrite?(o: number, s: number, v: number): boolean } }).pci;
        if (r.dir === IOREQ_READ) return spec?.configRead?.(r.addr, r.size) ?? NaN;
        return spec?.configWrite?.(r.addr, r.size, r.data) ? 1 : 0;
      }
      default:
        throw new Error(`unknown ioreq type ${r.type}`);
    }
  }

  private access(r: Ioreq): number {
    const d = this.device(r.device);
    if (d.sabotage === 'throw') {
      d.sabotage = null;
      throw new Error('sabotaged for a test');
    }
    if (d.sabotage === 'hang') {
      // Stop answering, as a device model stuck in a loop would.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    }
    const block = this.block(r.device, r.key);
    const size = r.size as AccessSize;
    if (r.count > 1) {
      // String I/O: every element in the data area, in the order the CPU moves them, little-endian.
      const data = this.page.data;
      if (r.dir === IOREQ_READ) {
        for (let i = 0, o = 0; i < r.count; i++, o += size) storeElement(data, o, size, block.read(r.addr, size));
      } else {
        for (let i = 0, o = 0; i < r.count; i++, o += size) block.write(r.addr, size, loadElement(data, o, size));
      }
      return 0;
    }
    if (r.dir === IOREQ_READ) return block.read(r.addr, size);
    block.write(r.addr, size, r.data);
    return 0;
  }

  private control(m: DeviceModelControl | undefined): number {
    if (!m) throw new Error('a control request came without its message');
    switch (m.op) {
      case 'load': {
        const make = DEVICE_KINDS[m.kind];
        if (!make) throw new Error(`the device model cannot run a '${m.kind}'`);
        const device = make(m.config);
        const d: ModelDevice = { device, placed: m.mappings, forgetLevels: [], building: true, blocks: new Map(), timers: new Map(), inbound: m.inbound, sabotage: null };
        this.devices.set(m.id, d);
        device.attach(this.context(d));
        const pci = device as Device & { attachPci?: (ctx: { intx: IrqLine; busMasterEnabled(): boolean }) => void; pci?: { bars: readonly { index: number; block: RegisterBlock }[] } };
        if (m.pci && pci.attachPci && pci.pci) {
          for (const bar of pci.pci.bars) d.blocks.set(BAR_KEY + bar.index, bar.block);
          pci.attachPci({ intx: this.irqLine(d, -1), busMasterEnabled: () => this.responder.callback(CB_BUS_MASTER, 0, 0, 0) === 1 });
        }
        m.outbound.forEach((name, index) => {
          (device as unknown as Record<string, unknown>)[name] = (v: number | Uint8Array) => {
            if (typeof v === 'number') return this.responder.callback(CB_OUTBOUND, index, v, -1);
            const n = Math.min(v.length, this.page.data.length);
            this.page.data.set(v.subarray(0, n));
            return this.responder.callback(CB_OUTBOUND, index, 0, n);
          };
        });
        d.building = false;
        if (m.handOver) handOver(device).loadHandOver(m.state);
        else device.loadState(m.state);
        return 0;
      }
      case 'save': {
        const d = this.device(m.id);
        this.post({ op: 'state', id: m.id, state: m.handOver ? handOver(d.device).saveHandOver() : d.device.saveState() });
        return 0;
      }
      case 'remove':
        this.devices.delete(m.id);
        return 0;
      case 'restore': {
        // The machine loads a snapshot: its bus let go of every line first, so each level is sent again.
        const d = this.device(m.id);
        for (const f of d.forgetLevels) f();
        d.device.loadState(m.state);
        return 0;
      }
      case 'reset':
        this.device(m.id).device.reset();
        return 0;
      case 'sabotage':
        this.device(m.id).sabotage = m.mode;
        return 0;
      case 'get': {
        const v: unknown = (this.device(m.id).device as unknown as Record<string, unknown>)[m.name];
        this.post({ op: 'value', id: m.id, value: v });
        return 0;
      }
    }
  }

  /** An IRQ line whose level changes go to the vCPU; the first set after a load always goes. */
  private irqLine(d: ModelDevice, line: number): IrqLine {
    let level: boolean | null = null;
    d.forgetLevels.push(() => (level = null));
    const set = (v: boolean) => {
      if (d.building || v === level) return;
      level = v;
      this.responder.callback(CB_IRQ, line, v ? 1 : 0, 0);
    };
    return { set, raise: () => set(true), lower: () => set(false), pulse: () => { set(true); set(false); } };
  }

  private context(d: ModelDevice): DeviceContext {
    let ordinal = 0;
    const page = this.page;
    const lines = new Map<number, IrqLine>();
    const mapping = (start: number, length: number, block: RegisterBlock): Mapping => {
      const index = ordinal++;
      d.blocks.set(index, block);
      // The guest's address space is the vCPU's: its bus decodes addresses and names the
      // block. This copy starts where the vCPU's mapping is, and moves it by callback.
      const placed = d.placed[index] ?? { start, mapped: true };
      let at = placed.start;
      let mapped = placed.mapped;
      return {
        get start() { return at; },
        get length() { return length; },
        get mapped() { return mapped; },
        move: (to) => {
          this.responder.callback(CB_MAP, index, to, 0);
          at = to;
          mapped = true;
        },
        unmap: () => {
          if (!mapped) return;
          this.responder.callback(CB_MAP, index, -1, 0);
          mapped = false;
        },
      };
    };
    const dmaChunk = page.data.length;
    return {
      clock: {
        now: () => this.now,
        setTimer: (atNs, callback) => {
          const id = this.nextTimer++;
          d.timers.set(id, callback);
          this.responder.callback(CB_SET_TIMER, atNs, id, 0);
          return id;
        },
        cancelTimer: (id) => {
          if (!d.timers.delete(id)) return;
          this.responder.callback(CB_CANCEL_TIMER, 0, id, 0);
        },
      },
      mapPorts: (start, length, block) => mapping(start, length, block),
      mapMmio: (start, length, block) => mapping(start, length, block),
      irq: (line) => {
        let l = lines.get(line);
        if (!l) lines.set(line, (l = this.irqLine(d, line)));
        return l;
      },
      dma: {
        read: (addr, dst) => {
          for (let done = 0; done < dst.length; done += dmaChunk) {
            const n = Math.min(dmaChunk, dst.length - done);
            if (!this.responder.callback(CB_DMA_READ, (addr + done) >>> 0, 0, n)) return false;
            dst.set(page.data.subarray(0, n), done);
          }
          return true;
        },
        write: (addr, src) => {
          for (let done = 0; done < src.length; done += dmaChunk) {
            const n = Math.min(dmaChunk, src.length - done);
            page.data.set(src.subarray(done, done + n));
            if (!this.responder.callback(CB_DMA_WRITE, (addr + done) >>> 0, 0, n)) return false;
          }
          return true;
        },
      },
      log: (message) => {
        page.writeText(message);
        this.responder.callback(CB_LOG, 0, 0, page.length);
      },
    };
  }

  /** For tests: the state of a device the model holds. */
  stateOf(id: number): DeviceState {
    return this.device(id).device.saveState();
  }
}

/** A device whose memory the vCPU shares with it (SwitchableSpec.sharedMemory): at a switch only the rest moves. */
function handOver(device: Device): HandOver {
  const d = device as Device & Partial<HandOver>;
  if (typeof d.saveHandOver !== 'function' || typeof d.loadHandOver !== 'function') throw new Error(`${device.name} has no hand-over state`);
  return d as HandOver;
}

/**
 * A device model in the vCPU's own thread, over the same shared page and protocol: the
 * vCPU's wait runs the device model, and the device model's wait services its callback
 * requests. For tests (deterministic and fast) and hosts without workers; the round trip
 * then costs no thread switch, so it measures the protocol, not the trap.
 */
export function inThreadDeviceModel(): DeviceModelLink & { model: DeviceModel } {
  const page = new IoreqPage(createIoreqBuffer());
  const toModel: DeviceModelControl[] = [];
  const toVcpu: DeviceModelReply[] = [];
  let requester: IoreqRequester | null = null;
  const model = new DeviceModel(page, () => toModel.shift(), (r) => toVcpu.push(structuredClone(r)), () => {
    requester?.serviceCallback();
    return page.state;
  });
  page.markModelReady();
  return {
    model,
    page,
    post: (m) => toModel.push(structuredClone(m)),
    receive: () => toVcpu.shift(),
    close: () => {
      model.running = false;
    },
    wait: () => {
      model.serveOne(0);
      return page.state;
    },
    bind: (r) => (requester = r),
  };
}
