/**
 * The browser half of bench-wasm-browser.ts: a dedicated worker that runs bench-wasm.ts's
 * four forms of the CRC-32 loop on request, and the compile-latency measurement both hosts
 * share (Node calls compileLatency directly; the worker runs it on request).
 *
 * Messages in: `{ type: 'init', code }` (the translator's guest program, assembled by
 * Node: the worker has no nasm), `{ type: 'run', form, seconds }`, `{ type: 'compile',
 * count }`. Each gets one reply (WorkerReply); a failure replies `{ type: 'error' }`.
 */
import { loopForms, regionModule, type LoopForm, type Region } from './bench-wasm.ts';

/** One form run in the worker: the timed part, and everything the worker's thread did for it. */
export interface FormRun {
  form: string;
  crc: number;
  /** Guest instructions in one pass (the figure Node's bench prints). */
  n: number;
  /** Instructions and wall-clock seconds of the timed passes (after the warm-up). */
  timedInstructions: number;
  timedSeconds: number;
  /** Instructions of the warm-up and the timed passes together: what the thread's CPU time covers. */
  allInstructions: number;
}

/** Microseconds per module, `count` samples each. */
export interface CompileLatency {
  /** new WebAssembly.Module(bytes) alone: median of single timings. */
  compileOnly: number;
  /** new WebAssembly.Module(bytes) + new WebAssembly.Instance: median of single timings. */
  compileInstantiate: number;
  /** The same plus the first call of the function (V8 may compile a function lazily, on its first call). */
  withFirstCall: number;
  /** compileInstantiate as the mean over one batch of `count` (for a coarse timer). */
  batchMean: number;
  /** The shortest nonzero interval measured, µs: an upper bound on the timer's step (a browser coarsens performance.now()). */
  timerStep: number;
  moduleBytes: number;
}

export type WorkerRequest =
  | { type: 'init'; code: number[] }
  | { type: 'run'; form: string; seconds: number }
  | { type: 'compile'; count: number };
export type WorkerReply =
  | { type: 'ready'; forms: string[] }
  | ({ type: 'ran' } & FormRun)
  | ({ type: 'compiled' } & CompileLatency)
  | { type: 'error'; message: string };

/** As bench-wasm.ts's measure(): 200 passes to warm up, then passes in fifties for `seconds` of wall clock. */
export function runForm(f: LoopForm, seconds: number): FormRun {
  let all = 0, crc = 0, n = 0;
  for (let i = 0; i < 200; i++) {
    ({ crc, n } = f.pass());
    all += n;
  }
  const t0 = performance.now();
  let timed = 0;
  while (performance.now() - t0 < seconds * 1000) {
    for (let i = 0; i < 50; i++) ({ crc, n } = f.pass());
    timed += 50 * n;
  }
  const timedSeconds = (performance.now() - t0) / 1000;
  return { form: f.form, crc: crc >>> 0, n, timedInstructions: timed, timedSeconds, allInstructions: all + timed };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Compile latency of the wasm-locals module (each sample a fresh Module from the same bytes). */
export function compileLatency(count: number): CompileLatency {
  const bytes = regionModule(true);
  const single: number[] = [], first: number[] = [], compile: number[] = [];
  let step = Infinity;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const module = new WebAssembly.Module(bytes);
    const tm = performance.now();
    // Instantiating allocates the module's own 17-page memory (the real design would import one shared memory).
    const instance = new WebAssembly.Instance(module);
    const t1 = performance.now();
    (instance.exports.run as Region)(0, 0); // leaves at the first budget check
    const t2 = performance.now();
    compile.push(tm - t0);
    single.push(t1 - t0);
    first.push(t2 - t0);
    for (const d of [t1 - t0, t2 - t1]) if (d > 0 && d < step) step = d;
  }
  const b0 = performance.now();
  for (let i = 0; i < count; i++) new WebAssembly.Instance(new WebAssembly.Module(bytes));
  const batch = (performance.now() - b0) / count;
  return {
    compileOnly: median(compile) * 1000, compileInstantiate: median(single) * 1000, withFirstCall: median(first) * 1000, batchMean: batch * 1000,
    timerStep: step * 1000, moduleBytes: bytes.length,
  };
}

// In a worker (a browser's, not Node's importing this file for compileLatency): answer requests.
if (typeof process === 'undefined' && 'WorkerGlobalScope' in globalThis) {
  let forms: LoopForm[] = [];
  const reply = (m: WorkerReply) => self.postMessage(m);
  self.onmessage = (e: MessageEvent<WorkerRequest>) => {
    try {
      const m = e.data;
      if (m.type === 'init') {
        forms = loopForms(new Uint8Array(m.code));
        reply({ type: 'ready', forms: forms.map((f) => f.form) });
      } else if (m.type === 'run') {
        const f = forms.find((x) => x.form === m.form);
        if (!f) reply({ type: 'error', message: `no form ${m.form} (init first)` });
        else reply({ type: 'ran', ...runForm(f, m.seconds) });
      } else if (m.type === 'compile') {
        reply({ type: 'compiled', ...compileLatency(m.count) });
      }
    } catch (err) {
      reply({ type: 'error', message: err instanceof Error ? `${err.message}\n${err.stack}` : String(err) });
    }
  };
}
