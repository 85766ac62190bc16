/**
 * Test support: the page's device-model worker (device-model-web.ts) in a Node worker
 * thread, its global scope played by parentPort, so device-model-web.test.ts can run the
 * browser's host code, loop and mailbox included, without a browser.
 */
import { parentPort } from 'node:worker_threads';
import { runWebDeviceModel, type DeviceModelPort } from './device-model-web.ts';

const port = parentPort;
if (!port) throw new Error('device-model-web.testing.ts runs as a worker thread');
const scope: DeviceModelPort = { postMessage: (m) => port.postMessage(m), onmessage: null };
port.on('message', (data: unknown) => scope.onmessage?.({ data }));
runWebDeviceModel(scope);
