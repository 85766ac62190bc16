/**
 * The same MachineHost as the browser's worker, in a Node worker thread: `npm run bench`
 * runs the guest through it to compare the worker's speed with the CLI's. Started with
 * `new Worker(url)` on this module's bundle; speaks the protocol of protocol.ts over
 * parentPort.
 */
import { parentPort } from 'node:worker_threads';
import { MachineHost } from './machine-host.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('node-worker.ts runs as a worker thread (new Worker(...)), not as a main module');
const host = new MachineHost((message: FromWorker) => port.postMessage(message));
port.on('message', (msg: ToWorker) => host.handle(msg));
