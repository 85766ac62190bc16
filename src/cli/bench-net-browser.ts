/**
 * The page's wget throughput (issue 24): the page itself, built and served by vite as
 * bench-paths-page.ts does, boots tiny-linux on the wall clock in Chromium with its uplink
 * set to fetch, gets a lease and wgets a 16 MiB file from the page's own origin
 * (http://10.0.2.2/...: the preview server's file, through the worker's fetch); then the
 * same with the uplink set to the test Wisp server on 127.0.0.1 and the file served by an
 * HTTP server of this process on 127.0.0.1 (http://10.0.2.2:PORT/...: 10.0.2.2 is 127.0.0.1
 * at the Wisp server). Each file is written to the guest's RAM and its sha256sum checked
 * after the clock stops, so the guest's hashing is not counted as network time.
 *
 * Two clocks: the guest's (its /proc/uptime read just before and after wget, on the host's
 * wall clock since the page runs in wall-clock mode; 10 ms resolution), which is the
 * figure, and the host's (from pressing Enter on the command to seeing its marker on the
 * page, polled every 100 ms: it also holds the shell's start of wget and the DNS-less
 * connect). The host's CPU and load average are printed with each figure: the machine is
 * shared and its load moves the figures.
 *
 * TRAPDOOR_BENCH_NET_BROWSER_MIB sets the size (default 16), TRAPDOOR_BENCH_NET_BROWSER_ONLY=fetch (or
 * wisp) runs one upstream when run alone. TRAPDOOR_BENCH_NET_BROWSER_PROFILE=DIR
 * records a CPU profile of the page's Web Worker (the machine's thread) during each wget
 * through the DevTools protocol, as DIR/net-browser-{fetch,wisp}.cpuprofile (open in
 * Chromium's DevTools, Performance panel). `npm run bench` calls it
 * (TRAPDOOR_BENCH_NET_BROWSER=0 skips it); `node bin/run.mjs src/cli/bench-net-browser.ts`
 * runs it alone.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, CDPSession, Page } from '@playwright/test';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { startWispServer } from './testing/wisp-server.ts';
import { guestThreadBetween, snapshot, type GuestThreadTime } from './thread-time.ts';

export type BrowserUpstream = 'fetch' | 'wisp';

export interface BrowserWgetFigures {
  via: BrowserUpstream;
  bytes: number;
  /** wget's time by the guest's clock (/proc/uptime around it). */
  guestSeconds: number;
  /** From Enter to the marker seen on the page. */
  hostSeconds: number;
  /** 10^6 bytes per host second: the figure. */
  mbPerSecond: number;
  /** 10^6 bytes per second of the guest's clock (which falls behind the host's when the emulator cannot keep up). */
  guestMbPerSecond: number;
  shaMatches: boolean;
  /** The host's 1-minute load average before and after the run. */
  loadBefore: number;
  loadAfter: number;
  /** The page's Web Worker thread (the machine's) from Enter to the marker: on a CPU, waiting for one; null without scheduler statistics. */
  worker: GuestThreadTime | null;
  /** Guest instructions from Enter to the marker (and up to 0.6 s after: the status line's tick), from the page's status line. */
  guestInstructions: number;
  /** Where the worker's CPU profile was written, when asked for. */
  profile?: string;
}

export interface BrowserNetBench {
  chromium: string;
  host: string;
  runs: (BrowserWgetFigures | { via: BrowserUpstream; error: string })[];
}

/** The host as the other bench parts name it: CPU model and count. */
export function hostDescription(): string {
  const cpuModel = os.cpus()[0]?.model.trim() || 'unknown CPU';
  return `${cpuModel}, ${os.cpus().length} CPUs`;
}

/** This process's descendants (the Chromium it launched), from /proc: not another run's browser. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // The fields after the command's closing parenthesis: state, ppid, ...
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 64; p = parent.get(p), hops++) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

/** A file of `size` deterministic, incompressible bytes (a counter through SHA-256) and its sha256. */
function makeBlob(size: number): { bytes: Buffer; sha: string } {
  const bytes = Buffer.alloc(size);
  for (let i = 0, off = 0; off < size; i++, off += 32) crypto.createHash('sha256').update(`trapdoor-${i}`).digest().copy(bytes, off);
  return { bytes, sha: crypto.createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Record a CPU profile of the page's dedicated worker: attach to it through the browser's
 * DevTools session (flattened sessions, one per target) and drive its Profiler domain.
 */
async function workerProfiler(browser: Browser): Promise<{ start(): Promise<void>; stop(file: string): Promise<void>; detach(): Promise<void> } | null> {
  const cdp: CDPSession = await browser.newBrowserCDPSession();
  const { targetInfos } = await cdp.send('Target.getTargets');
  const worker = targetInfos.find((t) => t.type === 'worker');
  if (!worker) {
    await cdp.detach();
    return null;
  }
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: worker.targetId, flatten: false });
  // Without flattening, the worker's protocol travels inside Target.sendMessageToTarget and
  // comes back as Target.receivedMessageFromTarget events: a small request/answer layer.
  let nextId = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  cdp.on('Target.receivedMessageFromTarget', (e: { sessionId?: string; message: string }) => {
    if (e.sessionId !== sessionId) return;
    const m = JSON.parse(e.message) as { id?: number; result?: unknown; error?: { message: string } };
    if (m.id === undefined) return;
    const f = waiting.get(m.id);
    waiting.delete(m.id);
    f?.(m.error ? { error: m.error.message } : m.result);
  });
  const send = (method: string, params: object = {}): Promise<unknown> => {
    const id = nextId++;
    const answer = new Promise<unknown>((resolve) => waiting.set(id, resolve));
    void cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) });
    return answer;
  };
  return {
    async start() {
      await send('Profiler.enable');
      await send('Profiler.setSamplingInterval', { interval: 200 });
      await send('Profiler.start');
    },
    async stop(file: string) {
      const r = (await send('Profiler.stop')) as { profile?: unknown; error?: string };
      if (r.profile) fs.writeFileSync(file, JSON.stringify(r.profile));
    },
    async detach() {
      await cdp.detach();
    },
  };
}

/** One boot and one wget through `via` in a fresh browser context. */
async function oneRun(
  browser: Browser,
  pageUrl: string,
  via: BrowserUpstream,
  blob: { size: number; sha: string },
  guestUrl: string,
  wispUrl: string | null,
  profileDir: string | null,
  limitMs: number,
): Promise<BrowserWgetFigures> {
  const context = await browser.newContext();
  try {
    // The uplink is a machine setting the page keeps in localStorage (network-settings.ts):
    // set before the page's code reads it, so ?boot powers on with it.
    const setting = { kind: via, wispUrl: wispUrl ?? 'wss://', relayUrl: 'wss://', channel: 'trapdoor-lan' };
    await context.addInitScript((s) => localStorage.setItem('trapdoor.network', s), JSON.stringify(setting));
    const page: Page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    for (let i = 0; ; i++) {
      try {
        await page.goto(pageUrl);
        break;
      } catch (e) {
        if (i > 50) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const serialText = () => page.evaluate(() => document.querySelector('[data-testid="serial-text"]')?.textContent ?? '');
    const waitFor = (pattern: string, timeout = limitMs) =>
      page.waitForFunction((p) => new RegExp(p).test(document.querySelector('[data-testid="serial-text"]')?.textContent ?? ''), pattern, { polling: 100, timeout });
    const type = async (line: string) => {
      await page.getByTestId('serial-terminal').click();
      await page.keyboard.type(line);
      await page.keyboard.press('Enter');
    };
    await waitFor('trapdoor:/# ');
    // Markers computed by the guest's shell: the echo of the typed line never matches them.
    await type('udhcpc -i eth0 -q >/dev/null 2>&1; ip -4 addr show eth0 | grep -q 10.0.2.15 && echo LEASE-$((3*3))');
    await waitFor('LEASE-9', 60_000);
    const profiler = profileDir ? await workerProfiler(browser) : null;
    // The command is typed first and the clocks start at its Enter: the typing (each key a
    // message to the worker and an echo back) is not the network's time.
    await page.getByTestId('serial-terminal').click();
    await page.keyboard.type(`read a x < /proc/uptime; wget -q -O /tmp/f ${guestUrl}; read b x < /proc/uptime; echo "WGOT $a $b END-$((6*7))"`);
    await profiler?.start();
    const loadBefore = os.loadavg()[0];
    const instructions = async () => Number(await page.getByTestId('speed').getAttribute('data-instructions'));
    const instructionsBefore = await instructions();
    const threadsBefore = snapshot(descendants(process.pid));
    const t0 = performance.now();
    await page.keyboard.press('Enter');
    await waitFor('WGOT [0-9.]+ [0-9.]+ END-42');
    const hostSeconds = (performance.now() - t0) / 1000;
    const worker = guestThreadBetween(threadsBefore, snapshot(descendants(process.pid)), /^DedicatedWorker/);
    const loadAfter = os.loadavg()[0];
    // The status line's count moves on the page's half-second tick: one more, so the last slices are in.
    await page.waitForTimeout(600);
    const guestInstructions = (await instructions()) - instructionsBefore;
    let profile: string | undefined;
    if (profiler && profileDir) {
      profile = path.join(profileDir, `net-browser-${via}.cpuprofile`);
      await profiler.stop(profile);
      await profiler.detach();
    }
    const m = /WGOT ([0-9.]+) ([0-9.]+) END-42/.exec(await serialText());
    const guestSeconds = Number(m![2]) - Number(m![1]);
    await type('sha256sum /tmp/f; rm -f /tmp/f; echo SUMMED-$((5*5))');
    await waitFor('SUMMED-25', 120_000);
    const shaMatches = (await serialText()).includes(`${blob.sha}  /tmp/f`);
    if (errors.length) throw new Error(`the page threw: ${errors[0]}`);
    if (!(guestSeconds > 0)) throw new Error(`no guest time read (${m?.[0] ?? 'no marker'})`);
    return { via, bytes: blob.size, guestSeconds, hostSeconds, mbPerSecond: blob.size / 1e6 / hostSeconds, guestMbPerSecond: blob.size / 1e6 / guestSeconds, shaMatches, loadBefore, loadAfter, worker, guestInstructions, profile };
  } finally {
    await context.close();
  }
}

/** Run the bench: both upstreams, or why it could not run. */
export async function benchNetBrowser(options: { mib?: number; profileDir?: string | null; limitMs?: number; only?: BrowserUpstream[] } = {}): Promise<BrowserNetBench | string> {
  const executablePath = process.env.TRAPDOOR_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) return `no Chromium at ${executablePath} (set TRAPDOOR_CHROMIUM)`;
  if (!fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage'))) return 'no tiny-linux image (npm run images)';
  const mib = options.mib ?? 16;
  const limitMs = options.limitMs ?? 600_000;
  const profileDir = options.profileDir ?? null;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const root = path.resolve(PUBLISH_DIR, '..', '..');
  const { bytes, sha } = makeBlob(mib << 20);
  // A build of its own (another run's `vite build` into dist/ cannot change it underfoot),
  // with the file beside the page: the preview server serves it as the page's own origin.
  const out = path.join(root, '.build', `bench-net-browser-${process.pid}`);
  // A profile names functions as the source does: unminified then.
  execFileSync('npx', ['vite', 'build', '--logLevel', 'error', '--outDir', out, '--emptyOutDir', ...(profileDir ? ['--minify', 'false'] : [])], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  fs.mkdirSync(path.join(out, 'bench-net'), { recursive: true });
  fs.writeFileSync(path.join(out, 'bench-net', 'blob.bin'), bytes);
  const port = 5300 + (process.pid % 500);
  const preview = spawn('npx', ['vite', 'preview', '--strictPort', '--port', String(port), '--outDir', out], { cwd: root, stdio: 'ignore', detached: true });
  // The Wisp run's file: an HTTP server of this process on loopback, reached through the Wisp server.
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': bytes.length, 'content-type': 'application/octet-stream' });
    res.end(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const filePort = (server.address() as net.AddressInfo).port;
  const wisp = await startWispServer();
  const { chromium } = await import('@playwright/test');
  const browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const runs: BrowserNetBench['runs'] = [];
    for (const via of options.only ?? (['fetch', 'wisp'] as const)) {
      const guestUrl = via === 'fetch' ? 'http://10.0.2.2/bench-net/blob.bin' : `http://10.0.2.2:${filePort}/blob.bin`;
      try {
        runs.push(await oneRun(browser, `http://127.0.0.1:${port}/?boot=tiny-linux`, via, { size: bytes.length, sha }, guestUrl, via === 'wisp' ? wisp.url : null, profileDir, limitMs));
      } catch (e) {
        runs.push({ via, error: (e as Error).message.split('\n')[0] });
      }
    }
    return { chromium: browser.version(), host: hostDescription(), runs };
  } finally {
    await browser.close();
    server.close();
    await wisp.close();
    if (preview.pid) {
      try {
        process.kill(-preview.pid);
      } catch {
        // already gone
      }
    }
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** The bench's lines. */
export function formatNetBrowser(r: BrowserNetBench): string[] {
  const lines = [`net-browser: hosts: Chromium ${r.chromium}; ${r.host}`];
  for (const x of r.runs) {
    const what = x.via === 'fetch' ? "fetch from the page's own origin (http://10.0.2.2/)" : 'the test Wisp server on 127.0.0.1 to an HTTP server on 127.0.0.1';
    if ('error' in x) {
      lines.push(`net-browser: tiny-linux wget through ${what} did NOT finish: ${x.error}`);
      continue;
    }
    let w = '';
    if (x.worker) {
      // The rest of the host time the worker neither ran nor waited for a CPU: it slept (its
      // guest idle, waiting for the network). Without the other load its time would have been
      // on-CPU + asleep: the figure a machine of its own would show, roughly.
      const asleep = Math.max(0, x.hostSeconds - x.worker.onCpu - x.worker.waiting);
      const mips = x.worker.onCpu > 0 ? ` (${(x.guestInstructions / 1e6 / x.worker.onCpu).toFixed(0)} MIPS on it)` : '';
      w = `; the page's worker thread ${x.worker.onCpu.toFixed(1)} s on a CPU${mips}, ${x.worker.waiting.toFixed(1)} s waiting for one, ${asleep.toFixed(1)} s asleep: ` +
        `${(x.bytes / 1e6 / (x.worker.onCpu + asleep)).toFixed(2)} MB/s without the wait`;
    }
    lines.push(`net-browser: tiny-linux wget of ${(x.bytes / 2 ** 20).toFixed(0)} MiB in the page (Chromium, wall clock) through ${what}: ${x.mbPerSecond.toFixed(2)} MB/s ` +
      `(${x.hostSeconds.toFixed(1)} s host time, Enter to marker; the guest's clock saw ${x.guestSeconds.toFixed(1)} s, ${x.guestMbPerSecond.toFixed(2)} MB/s; ` +
      `${(x.guestInstructions / 1e6).toFixed(0)} M guest instructions, ${(x.guestInstructions / x.bytes).toFixed(1)} per byte), sha256 ${x.shaMatches ? 'matches' : 'DOES NOT MATCH'}; ` +
      `load average ${x.loadBefore.toFixed(1)} before, ${x.loadAfter.toFixed(1)} after${w}${x.profile ? `; worker profile ${x.profile}` : ''}`);
  }
  return lines;
}

if (process.argv[1]?.endsWith('bench-net-browser.ts')) {
  const only = process.env.TRAPDOOR_BENCH_NET_BROWSER_ONLY?.split(',').filter((x): x is BrowserUpstream => x === 'fetch' || x === 'wisp');
  const r = await benchNetBrowser({
    mib: Math.max(1, Number(process.env.TRAPDOOR_BENCH_NET_BROWSER_MIB ?? 16)),
    profileDir: process.env.TRAPDOOR_BENCH_NET_BROWSER_PROFILE ?? null,
    only: only?.length ? only : undefined,
  });
  if (typeof r === 'string') process.stdout.write(`net-browser: skipped, ${r}\n`);
  else for (const line of formatNetBrowser(r)) process.stdout.write(line + '\n');
}
