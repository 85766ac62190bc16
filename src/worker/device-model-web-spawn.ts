/**
 * The vCPU's end of the page's device model (device-model-web.ts): starts the Web Worker
 * and gives DevicePaths its DeviceModelConnector (bus/device-paths.ts).
 *
 * Starting a worker in a browser is asynchronous (its script is fetched and compiled while
 * the starting thread goes on), but DevicePaths asks for a device model synchronously, at
 * the switch. So the worker is started ahead of need (`start()`, when the machine boots),
 * and `connector()` hands over one that is ready, or refuses in words ("still starting")
 * without waiting: the host awaits `ready()` before it switches, which does not hold up
 * the worker's event loop. A device model that is closed (it stopped answering and
 * DevicePaths gave up on it, or the machine was powered off) is replaced by a fresh one
 * started at once, so the next switch finds it ready.
 *
 * Replies come back through a shared mailbox (mailbox.ts) read synchronously, where Node
 * uses receiveMessageOnPort; control messages go by postMessage (they carry the IDE's
 * SharedArrayBuffer media).
 */
import { IoreqPage, createIoreqBuffer } from '../emulator/bus/ioreq.ts';
import type { DeviceModelConnector, DeviceModelLink } from '../emulator/bus/device-paths.ts';
import { MailboxReceiver, createMailbox } from './mailbox.ts';
import type { DeviceModelInit } from './device-model-web.ts';

/** What the spawner needs of a Worker (a browser Worker, or an adapter of Node's in tests). */
export interface WorkerLike {
  postMessage(message: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message?: string; preventDefault?: () => void }) => void) | null;
  terminate(): void;
}

/** The page's device-model worker, as vite bundles it. */
export function browserDeviceModelWorker(): WorkerLike {
  return new Worker(new URL('./device-model-web.ts', import.meta.url), { type: 'module', name: 'trapdoor-device-model' }) as unknown as WorkerLike;
}

/** How long a worker may take to start before the spawner gives up on it. */
const START_MS = 20_000;

interface Spare {
  worker: WorkerLike;
  page: IoreqPage;
  replies: SharedArrayBuffer;
  /** Why it failed to start, once it has. */
  failed: string | null;
  started: number;
}

export type SpawnerState = 'idle' | 'starting' | 'ready' | 'in use' | 'failed';

export class DeviceModelSpawner {
  private spare: Spare | null = null;
  /** Links handed out and not closed yet. */
  private readonly inUse = new Set<DeviceModelLink>();
  private waiters: (() => void)[] = [];
  private closed = false;

  /** `mailboxBytes`: the replies' data area (tests make it small, so that a state goes in several chunks). */
  constructor(private readonly makeWorker: () => WorkerLike = browserDeviceModelWorker, private readonly options: { mailboxBytes?: number } = {}) {}

  get state(): SpawnerState {
    if (this.spare) return this.spare.failed !== null ? 'failed' : this.spare.page.modelReady ? 'ready' : 'starting';
    return this.inUse.size > 0 ? 'in use' : 'idle';
  }

  /** Start a worker if none is starting, ready or in use. */
  start(): void {
    this.closed = false;
    if (this.spare && this.spare.failed === null) return;
    if (!this.spare && this.inUse.size > 0) return;
    const buffer = createIoreqBuffer();
    const replies = createMailbox(this.options.mailboxBytes);
    let worker: WorkerLike;
    const spare: Spare = { worker: null as unknown as WorkerLike, page: new IoreqPage(buffer), replies, failed: null, started: performance.now() };
    try {
      worker = this.makeWorker();
    } catch (e) {
      spare.failed = `the device-model worker could not be started: ${(e as Error).message}`;
      this.spare = spare;
      this.wake();
      return;
    }
    spare.worker = worker;
    worker.onmessage = (e) => {
      if ((e.data as { type?: string })?.type === 'ready') this.wake();
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      spare.failed = `the device-model worker failed: ${e.message || 'its script did not load or threw'}`;
      worker.terminate();
      this.wake();
    };
    const init: DeviceModelInit = { type: 'init', ioreq: buffer, replies };
    worker.postMessage(init);
    this.spare = spare;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Resolves with null once a device model is ready to hand over (or one is in use), or with
   * why not in words (it failed to start, or did not start within timeoutMs). Starts one if
   * needed.
   */
  async ready(timeoutMs = START_MS): Promise<string | null> {
    if (this.state === 'failed') this.spare = null;
    this.start();
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = this.state;
      if (s === 'ready' || s === 'in use') return null;
      if (s === 'failed') return this.spare!.failed;
      const left = deadline - performance.now();
      if (left <= 0) return `the device-model worker did not start within ${(timeoutMs / 1000).toFixed(0)} s`;
      // Woken by its 'ready' or an error; polled too, in case the page's flag is set before the message arrives.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 50));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.push(done);
      });
    }
  }

  /** For DevicePaths: the ready device model, or an Error saying why there is none yet. Never waits. */
  readonly connector: DeviceModelConnector = () => {
    const spare = this.spare;
    if (!spare || !spare.page.modelReady) {
      this.start();
      const why = spare?.failed ?? 'the device-model worker is still starting; try again in a moment';
      throw new Error(why);
    }
    this.spare = null;
    const replies = new MailboxReceiver(spare.replies);
    const worker = spare.worker;
    worker.onmessage = null;
    const link: DeviceModelLink = {
      page: spare.page,
      post: (m) => worker.postMessage(m),
      receive: () => replies.receive(),
      close: () => {
        if (!this.inUse.delete(link)) return;
        worker.terminate();
        // The next switch to emulated finds a fresh one ready.
        if (!this.closed) this.start();
      },
    };
    this.inUse.add(link);
    return link;
  };

  /** Stop the device models in use (their machine is gone); a fresh one starts for the next machine. */
  recycle(): void {
    for (const l of [...this.inUse]) l.close();
  }

  /** Stop every device model this spawner started; `start()` begins again. */
  close(): void {
    this.closed = true;
    for (const l of [...this.inUse]) l.close();
    this.spare?.worker?.terminate();
    this.spare = null;
    this.wake();
  }
}
