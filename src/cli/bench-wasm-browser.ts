/**
 * bench-wasm.ts's four forms of the CRC-32 loop (today's translator, js-locals, wasm-locals,
 * wasm-memory) in Chromium's dedicated worker, alternating with Node's bench-wasm.ts
 * (A B A B: a shared machine's slow minutes then hit both hosts), and the compile latency
 * of the wasm-locals module in both (issue 25, docs/cpu-speed.md "JavaScript or
 * WebAssembly").
 *
 * The worker (bench-wasm-worker.ts, bundled here by esbuild for the browser: the Node-only
 * modules the forms' file imports are stubbed, none is called in the worker) is served from
 * a small node:http server on 127.0.0.1 with COOP/COEP, so the page is cross-origin
 * isolated and the worker's performance.now() has its fine resolution. The translator's
 * guest program is assembled here (nasm) and posted to the worker. Every form must end
 * with the CRC and the per-pass instruction count Node's run printed: a mismatch fails the
 * bench. The worker's MIPS are per second on a CPU, from the DedicatedWorker thread's
 * scheduler time (thread-time.ts) over the request (warm-up passes included in both the
 * instructions and the time); Node's are bench-wasm.ts's own (thread time of the timed part).
 *
 *     node bin/run.mjs src/cli/bench-wasm-browser.ts [SECONDS per form] [ROUNDS]
 *
 * Needs Debian's chromium (or TRAPDOOR_CHROMIUM) and nasm.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { assemble } from '../emulator/cpu/testing/nasm.ts';
import { translatorSource } from './bench-wasm.ts';
import { compileLatency, type CompileLatency, type FormRun, type WorkerReply, type WorkerRequest } from './bench-wasm-worker.ts';
import { guestThreadBetween, snapshot } from './thread-time.ts';

/** The repository: the nearest folder above this file (src/cli, or .build/ when run from its bundle) with a package.json. */
const ROOT = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

interface NodeForm {
  form: string;
  mips: number;
  onCpu: boolean;
  crc: number;
  n: number;
}

/** One run of Node's bench-wasm.ts in its own process, as its users run it. */
function nodeRound(seconds: number): NodeForm[] {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'run.mjs'), 'src/cli/bench-wasm.ts', String(seconds)], { cwd: ROOT, encoding: 'utf8' });
  const forms: NodeForm[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\S+): (\d+) MIPS( on a CPU)? \(CRC ([0-9a-f]+), (\d+) instructions a pass\)$/.exec(line.trim());
    if (m) forms.push({ form: m[1], mips: Number(m[2]), onCpu: Boolean(m[3]), crc: parseInt(m[4], 16), n: Number(m[5]) });
  }
  if (forms.length !== 4) throw new Error(`bench-wasm.ts printed ${forms.length} forms:\n${out}`);
  return forms;
}

/** The worker as one classic script for the browser: node:* imports become empty modules (never called there). */
async function workerBundle(): Promise<string> {
  const result = await build({
    entryPoints: [path.join(ROOT, 'src', 'cli', 'bench-wasm-worker.ts')],
    bundle: true, format: 'iife', platform: 'browser', target: 'es2022', write: false, logLevel: 'error',
    plugins: [{
      name: 'node-stubs',
      setup(b) {
        b.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path, namespace: 'node-stub' }));
        b.onLoad({ filter: /.*/, namespace: 'node-stub' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
      },
    }],
  });
  return result.outputFiles[0].text;
}

/** This process's descendants (the Chromium it launched), from /proc: not another session's browser. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

interface BrowserForm extends FormRun {
  /** MIPS per second on a CPU (the worker thread's scheduler time), or null without it. */
  cpuMips: number | null;
  wallMips: number;
  /** The worker thread's seconds waiting for a CPU during the request. */
  waiting: number | null;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 2);
  const rounds = Math.max(1, Number(process.argv[3] ?? 2));
  const executablePath = process.env.TRAPDOOR_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath} (set TRAPDOOR_CHROMIUM)`);
  const code = Array.from(assemble(translatorSource()));
  const script = await workerBundle();
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
  const server = http.createServer((req, res) => {
    if (req.url === '/worker.js') res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' }).end(script);
    else if (req.url === '/') res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end('<!doctype html><title>bench-wasm</title>');
    else res.writeHead(404, headers).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const { chromium } = await import('@playwright/test');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const isolated = await page.evaluate(() => self.crossOriginIsolated);
    await page.evaluate(() => {
      const w = new Worker('/worker.js');
      (window as unknown as { ask: (m: WorkerRequest) => Promise<WorkerReply> }).ask = (m) =>
        new Promise((resolve) => {
          w.onmessage = (e: MessageEvent<WorkerReply>) => resolve(e.data);
          w.onerror = (e) => resolve({ type: 'error', message: e.message });
          w.postMessage(m);
        });
    });
    const ask = async (m: WorkerRequest): Promise<WorkerReply> => {
      const r = await page.evaluate((msg) => (window as unknown as { ask: (m: WorkerRequest) => Promise<WorkerReply> }).ask(msg), m);
      if (r.type === 'error') throw new Error(`worker: ${r.message}`);
      return r;
    };
    const ready = await ask({ type: 'init', code });
    if (ready.type !== 'ready') throw new Error('worker did not start');
    const host = `Chromium ${browser.version()} (dedicated worker${isolated ? ', cross-origin isolated' : ''}) and Node ${process.versions.node} (V8 ${process.versions.v8}) on ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.cpus().length} CPUs`;
    process.stdout.write(`${host}\n${seconds} s per form, ${rounds} rounds, Node then Chromium in each\n`);
    const table = new Map<string, { node: number[]; chromium: number[]; chromiumWall: number[] }>();
    for (let round = 1; round <= rounds; round++) {
      const load0 = os.loadavg()[0];
      const node = nodeRound(seconds);
      const browserForms: BrowserForm[] = [];
      for (const f of ready.forms) {
        const before = snapshot(descendants(process.pid));
        const r = await ask({ type: 'run', form: f, seconds });
        const thread = guestThreadBetween(before, snapshot(descendants(process.pid)), /^DedicatedWorker/);
        if (r.type !== 'ran') throw new Error(`worker answered ${r.type} to run`);
        browserForms.push({
          ...r, wallMips: r.timedInstructions / r.timedSeconds / 1e6,
          cpuMips: thread && thread.onCpu > 0 ? r.allInstructions / thread.onCpu / 1e6 : null, waiting: thread?.waiting ?? null,
        });
      }
      const load1 = os.loadavg()[0];
      process.stdout.write(`round ${round} (load average ${load0.toFixed(2)} → ${load1.toFixed(2)}):\n`);
      for (const b of browserForms) {
        const n = node.find((x) => x.form === b.form);
        if (!n) throw new Error(`Node printed no ${b.form}`);
        // The same bytes must give the same answer in both hosts: anything else is a bug, not a figure.
        if (n.crc !== b.crc || n.n !== b.n) {
          throw new Error(`${b.form}: Chromium ended with CRC ${b.crc.toString(16)} after ${b.n} instructions, Node with ${n.crc.toString(16)} after ${n.n}`);
        }
        const row = table.get(b.form) ?? { node: [], chromium: [], chromiumWall: [] };
        row.node.push(n.mips);
        row.chromium.push(b.cpuMips ?? b.wallMips);
        row.chromiumWall.push(b.wallMips);
        table.set(b.form, row);
        const wait = b.waiting !== null ? `, worker waited ${b.waiting.toFixed(2)} s for a CPU` : '';
        process.stdout.write(
          `  ${b.form.padEnd(12)} Node ${String(n.mips).padStart(5)} MIPS${n.onCpu ? ' on a CPU' : ''}   ` +
            `Chromium ${(b.cpuMips ?? b.wallMips).toFixed(0).padStart(5)} MIPS${b.cpuMips !== null ? ' on a CPU' : ''} (${b.wallMips.toFixed(0)} wall${wait})` +
            `   CRC ${b.crc.toString(16)}, ${b.n} instructions a pass in both\n`,
        );
      }
    }
    process.stdout.write('\n| form | Node MIPS (rounds) | Chromium worker MIPS (rounds) | Chromium / Node |\n| --- | --- | --- | --- |\n');
    for (const [form, row] of table) {
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      process.stdout.write(`| ${form} | ${row.node.join(', ')} | ${row.chromium.map((x) => x.toFixed(0)).join(', ')} | ${(mean(row.chromium) / mean(row.node)).toFixed(2)} |\n`);
    }
    // Compile latency, alternating hosts as well.
    const count = 200;
    const fmt = (c: CompileLatency) =>
      `${c.compileOnly.toFixed(0)} µs compile (median), ${c.compileInstantiate.toFixed(0)} µs compile+instantiate (median), ${c.withFirstCall.toFixed(0)} µs with the first call, ` +
      `${c.batchMean.toFixed(0)} µs mean of ${count} in a row; shortest interval seen ${c.timerStep.toFixed(1)} µs; ${c.moduleBytes}-byte module`;
    process.stdout.write('\nwasm-locals module:\n');
    for (let round = 1; round <= rounds; round++) {
      process.stdout.write(`  Node:     ${fmt(compileLatency(count))}\n`);
      const c = await ask({ type: 'compile', count });
      if (c.type !== 'compiled') throw new Error(`worker answered ${c.type} to compile`);
      process.stdout.write(`  Chromium: ${fmt(c)}\n`);
    }
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-wasm-browser: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
