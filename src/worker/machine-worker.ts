/**
 * The browser's machine worker (a module worker the page starts with `new Worker(new
 * URL('./machine-worker.ts', import.meta.url), { type: 'module' })`): binds the
 * host-agnostic MachineHost to the worker's message port. Anything that escapes it is
 * reported to the page in words rather than dying silently.
 */
import { MachineHost } from './machine-host.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  addEventListener(type: 'error' | 'unhandledrejection', listener: (e: Event) => void): void;
}

const scope = globalThis as unknown as WorkerScope;
const post = (message: FromWorker) => scope.postMessage(message);
const host = new MachineHost(post);
scope.onmessage = (e) => host.handle(e.data);
const report = (what: string) => post({ type: 'error', message: `The machine's worker failed: ${what}`, hint: 'Reload the page to start again.' });
scope.addEventListener('error', (e) => report((e as ErrorEvent).message));
scope.addEventListener('unhandledrejection', (e) => report(String((e as PromiseRejectionEvent).reason)));
