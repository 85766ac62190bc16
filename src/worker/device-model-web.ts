/**
 * The device model in the page: a module Web Worker the machine's worker starts
 * (device-model-web-spawn.ts), running the same DeviceModel as the Node host
 * (device-model-node.ts) over the same shared ioreq page. Issue 22; docs/device-paths.md,
 * "The page".
 *
 * What differs from Node is the message pipe. Node reads a MessagePort synchronously
 * (receiveMessageOnPort) on both sides; a browser worker has no such call, and a worker
 * that waits in Atomics.wait does not run its event loop, so a posted message would sit
 * undelivered. So:
 *   - the vCPU's control messages (load a device with its state, save it, remove it) still
 *     come by postMessage, which carries the IDE's SharedArrayBuffer media as they are:
 *     when a CONTROL ioreq arrives before its message has been delivered, this loop hands
 *     its thread back to the event loop (the vCPU keeps waiting for the answer meanwhile)
 *     and handles the request when the message is in;
 *   - the device model's replies (a saved state, a property's value) go back through a
 *     shared mailbox (mailbox.ts) the vCPU reads with Atomics, since the vCPU's thread is
 *     blocked in the round trip and then reads the reply before it returns to its loop.
 * Between requests the loop waits synchronously (polling, then Atomics.wait: ioreq.ts's
 * RequestPoller), as the Node host does, so an answered round trip costs the same thread switch; while idle it
 * gives the event loop a turn once a second.
 *
 * Messages: the first is `{ type: 'init', ioreq, replies }` (the two SharedArrayBuffers);
 * the worker answers `{ type: 'ready' }` once its loop runs. Every later message is a
 * DeviceModelControl.
 */
import { IOREQ_TYPE_CONTROL, IoreqPage, RequestPoller, STATE_READY } from '../emulator/bus/ioreq.ts';
import { DeviceModel } from './device-model.ts';
import { MailboxSender } from './mailbox.ts';

/** What the worker needs of its global scope (a DedicatedWorkerGlobalScope, or an adapter in tests). */
export interface DeviceModelPort {
  postMessage(message: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
}

export interface DeviceModelInit {
  type: 'init';
  ioreq: SharedArrayBuffer;
  replies: SharedArrayBuffer;
}

/** How long the loop waits for a request before it gives the event loop a turn (ms). */
const IDLE_MS = 1_000;
/** How long a CONTROL request waits for its message (the vCPU gives up after DevicePaths.timeoutMs). */
const MESSAGE_MS = 10_000;
/** How long a reply's later chunks wait for the vCPU to take the earlier ones. */
const FLUSH_MS = 5_000;

/** Run the device model on `port`: wait for `init`, then serve ioreqs until the worker is terminated. */
export function runWebDeviceModel(port: DeviceModelPort): void {
  const inbox: unknown[] = [];
  let delivered: (() => void) | null = null;
  let started = false;
  port.onmessage = (e) => {
    if (!started) {
      const init = e.data as DeviceModelInit;
      if (init?.type !== 'init') return;
      started = true;
      void serve(init);
      return;
    }
    inbox.push(e.data);
    delivered?.();
  };

  const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  const message = () => new Promise<void>((resolve) => {
    const timer = setTimeout(done, MESSAGE_MS);
    function done() {
      clearTimeout(timer);
      delivered = null;
      resolve();
    }
    delivered = done;
  });

  async function serve(init: DeviceModelInit): Promise<void> {
    const page = new IoreqPage(init.ioreq);
    const replies = new MailboxSender(init.replies);
    const model = new DeviceModel(page, () => inbox.shift(), (reply) => replies.send(reply));
    const poller = new RequestPoller(page);
    page.markModelReady();
    port.postMessage({ type: 'ready' });
    for (;;) {
      if (!poller.wait(IDLE_MS)) {
        await turn();
        continue;
      }
      // A control request's message was posted before it, but is delivered only by the event loop.
      if (page.readRequest().type === IOREQ_TYPE_CONTROL && inbox.length === 0) await message();
      model.serveOne(0);
      // A reply longer than one chunk: the rest as the vCPU reads it (it reads right after the answer).
      if (replies.pending) replies.flush(FLUSH_MS, () => page.state === STATE_READY);
    }
  }
}

// In a browser worker, serve on the worker's own scope.
declare const WorkerGlobalScope: (new () => unknown) | undefined;
if (typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope) {
  runWebDeviceModel(globalThis as unknown as DeviceModelPort);
}
