/**
 * The device model in a Node worker thread (worker_threads): started by
 * device-model-spawn.ts with the shared ioreq page and a MessagePort in workerData. Control
 * messages are read synchronously with receiveMessageOnPort when a CONTROL ioreq asks for
 * one, so the worker never returns to its event loop while it serves.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { IoreqPage } from '../emulator/bus/ioreq.ts';
import { DeviceModel } from './device-model.ts';

const data = workerData as { buffer: SharedArrayBuffer; port: MessagePort } | null;
if (!data) throw new Error('device-model-node.ts runs as a worker thread started by device-model-spawn.ts');
const { buffer, port } = data;
const model = new DeviceModel(
  new IoreqPage(buffer),
  () => receiveMessageOnPort(port)?.message,
  (reply) => port.postMessage(reply),
);
model.serve();
