/**
 * The page's end of the worker: starts the machine's module worker, sends it typed
 * commands (protocol.ts) and fans its messages out: state changes to the store (through
 * `onMessage`), serial bytes and frames to the components that subscribed, without
 * passing high-rate data through React state.
 */
import type { FromWorker, ToWorker } from '../worker/protocol.ts';

type FrameMessage = Extract<FromWorker, { type: 'frame' }>;

export class MachineClient {
  private worker: Worker | null = null;
  private readonly serialListeners = new Set<(data: Uint8Array) => void>();
  private readonly clearListeners = new Set<() => void>();
  private readonly frameListeners = new Set<(m: FrameMessage) => void>();
  /** State changes for the store; set once by the store. */
  onMessage: (m: FromWorker) => void = () => {};
  /** The worker died (script error, out of memory): the store tells the user. */
  onCrash: (message: string) => void = () => {};

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('../worker/machine-worker.ts', import.meta.url), { type: 'module', name: 'trapdoor-machine' });
    w.onmessage = (e: MessageEvent<FromWorker>) => this.route(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      this.worker?.terminate();
      this.worker = null;
      this.onCrash(e.message || 'the worker script failed to load or threw');
    };
    w.onmessageerror = () => this.onCrash('a message from the worker could not be read');
    this.worker = w;
    w.postMessage({ type: 'visibility', visible: document.visibilityState === 'visible' } satisfies ToWorker);
    return w;
  }

  send(msg: ToWorker, transfer: Transferable[] = []): void {
    // Power-off needs no worker; every other command starts one if needed.
    if (!this.worker && msg.type !== 'boot') return;
    this.ensure().postMessage(msg, transfer);
  }

  private route(m: FromWorker): void {
    switch (m.type) {
      case 'serial-out':
        if (m.index === 0) for (const l of this.serialListeners) l(m.data);
        return;
      case 'frame':
        if (this.frameListeners.size === 0) this.send({ type: 'frame-ack' });
        for (const l of this.frameListeners) l(m);
        return;
      case 'ready':
        for (const l of this.clearListeners) l();
        break;
    }
    this.onMessage(m);
  }

  /** COM1 output; `onClear` runs when a new machine powers on. Returns the unsubscribe function. */
  subscribeSerial(onData: (data: Uint8Array) => void, onClear: () => void): () => void {
    this.serialListeners.add(onData);
    this.clearListeners.add(onClear);
    return () => {
      this.serialListeners.delete(onData);
      this.clearListeners.delete(onClear);
    };
  }

  /** Rendered frames; the subscriber must send `frame-ack` once it has drawn one. */
  subscribeFrames(onFrame: (m: FrameMessage) => void): () => void {
    this.frameListeners.add(onFrame);
    return () => this.frameListeners.delete(onFrame);
  }
}

export const client = new MachineClient();
