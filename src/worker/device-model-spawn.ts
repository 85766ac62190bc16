/**
 * Start a device-model worker in Node (worker_threads) and return the vCPU's end of it
 * (bus/device-paths.ts's DeviceModelLink). `url` is the bundle of device-model-node.ts
 * (bin/bundle.mjs makes it; the CLI and the tests bundle it before the machine starts, so
 * starting the worker itself is synchronous). Waits until the worker's loop runs.
 */
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { IoreqPage, createIoreqBuffer } from '../emulator/bus/ioreq.ts';
import type { DeviceModelConnector, DeviceModelLink } from '../emulator/bus/device-paths.ts';

/** How long a new worker may take to load its bundle. */
const START_MS = 20_000;

export function spawnNodeDeviceModel(url: string | URL): DeviceModelLink {
  const buffer = createIoreqBuffer();
  const page = new IoreqPage(buffer);
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL(url), { workerData: { buffer, port: port2 }, transferList: [port2] });
  let exited: string | null = null;
  worker.on('error', (err) => (exited = `the device-model worker failed: ${err.message}`));
  worker.on('exit', (code) => (exited ??= `the device-model worker exited (code ${code})`));
  // The worker's thread loads on its own: blocking this thread does not hold it up.
  if (!page.waitModelReady(START_MS)) {
    void worker.terminate();
    throw new Error(exited ?? `the device-model worker did not start within ${START_MS / 1000} s`);
  }
  worker.unref();
  return {
    page,
    post: (m) => port1.postMessage(m),
    receive: () => receiveMessageOnPort(port1)?.message,
    close: () => {
      port1.close();
      void worker.terminate();
    },
  };
}

export function nodeDeviceModelConnector(url: string | URL): DeviceModelConnector {
  return () => spawnNodeDeviceModel(url);
}
