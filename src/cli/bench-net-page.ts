/**
 * The browser's upstreams' throughput (issue 24): the guest's wget of a file through
 * fetch (10.0.2.2 as "the own origin", what the page does with its own server) and
 * through a Wisp server (the test server on loopback), in the CLI with
 * `-nic user,fetch=ORIGIN` and `-nic user,wisp=URL`: the same FetchHostNetwork and
 * WispHostNetwork the page's worker builds, on Node's fetch and `ws`. The figure in
 * Chromium is the page's own (bench-net-browser.ts drives the page with Playwright); this
 * one shows what the upstream code costs apart from the browser.
 *
 * The clock starts when the request reaches the HTTP server and stops when the guest
 * says it is done (as bench-net.ts's figures do). TRAPDOOR_BENCH_NET_PAGE_MIB sets the
 * size (default 16 MiB). `node bin/run.mjs src/cli/bench-net-page.ts` runs it alone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { startBulkServer } from './testing/bulk-server.ts';
import { startTrapdoor, type TestProcess } from './testing/process.ts';
import { startWispServer } from './testing/wisp-server.ts';

async function type(p: TestProcess, command: string, until: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const from = p.output().length;
  p.send(command + '\n');
  return p.waitFor(until, timeoutMs, from);
}

/** The guest's wget of `mib` MiB through one upstream, in MB/s (10^6 bytes). */
export async function benchUpstreamWget(via: 'fetch' | 'wisp', mib: number): Promise<{ mbPerSecond: number; seconds: number }> {
  const size = mib << 20;
  const server = await startBulkServer(size);
  const port = server.port;
  const wisp = via === 'wisp' ? await startWispServer() : null;
  const nic = via === 'fetch' ? `user,restrict=on,fetch=http://127.0.0.1:${port}` : `user,restrict=on,wisp=${wisp!.url}`;
  const url = via === 'fetch' ? 'http://10.0.2.2/blob' : `http://10.0.2.2:${port}/blob`;
  const p = startTrapdoor(['--image', 'tiny-linux', '-nic', nic, '--timeout', '900']);
  try {
    await p.waitFor(/TRAPDOOR GUEST READY/, 300_000);
    await type(p, 'udhcpc -i eth0 -q', /lease of 10\.0\.2\.15 obtained/, 60_000);
    await type(p, `wget -q -O /dev/null ${url} && echo WGET-$((1+1))`, /WGET-2/, 800_000);
    if (server.firstRequestAt === 0) throw new Error('the guest finished before its request reached the server');
    const seconds = (performance.now() - server.firstRequestAt) / 1000;
    return { mbPerSecond: size / 1e6 / seconds, seconds };
  } finally {
    p.kill();
    server.close();
    await wisp?.close();
  }
}

export async function benchUpstreams(): Promise<void> {
  if (!fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage'))) {
    process.stdout.write('net-page: skipped, no tiny-linux image (npm run images)\n');
    return;
  }
  const mib = Math.max(1, Number(process.env.TRAPDOOR_BENCH_NET_PAGE_MIB ?? 16));
  // The machine is shared: its load moves the figures, so each says what it was.
  process.stdout.write(`net-page: hosts: Node ${process.version}; ${os.cpus()[0]?.model.trim() || 'unknown CPU'}, ${os.cpus().length} CPUs\n`);
  for (const via of ['fetch', 'wisp'] as const) {
    try {
      const loadBefore = os.loadavg()[0];
      const r = await benchUpstreamWget(via, mib);
      process.stdout.write(`net-page: tiny-linux wget of ${mib} MiB through ${via === 'fetch' ? 'fetch (10.0.2.2 as the own origin)' : 'the test Wisp server'}, in the CLI: ${r.mbPerSecond.toFixed(2)} MB/s (${r.seconds.toFixed(1)} s; load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after)\n`);
    } catch (e) {
      process.stdout.write(`net-page: ${via} did NOT finish: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
}

if (process.argv[1]?.endsWith('bench-net-page.ts')) await benchUpstreams();
