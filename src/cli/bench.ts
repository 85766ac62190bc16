/**
 * `npm run bench`: the numbers the project tracks. CPU MIPS on a CPU-bound guest
 * (interpreted, and with translated blocks), then
 * the time tiny-linux and debian-686 take to their ready markers, deterministic and
 * wall-clock, each boot in a fresh process as the CLI has it (TRAPDOOR_BENCH_IMAGES=a,b
 * picks the images; TRAPDOOR_BENCH_BOOT=0 skips the boots), then the same boot in the
 * CLI against the page's worker code in a Node worker thread and in Chromium (bench-worker.ts; set
 * TRAPDOOR_BENCH_WORKER=0 to skip, TRAPDOOR_BENCH_BROWSER=0 to skip Chromium only).
 * Before the worker comparison, each image's wall-clock boot against v86's on the same
 * files (bench-v86.ts; TRAPDOOR_BENCH_V86=0 skips it), interleaved, with the ratio, and
 * tiny-linux's fork/exec shell loop in both (bench-fork.ts; TRAPDOOR_BENCH_FORK=0 skips it).
 * TRAPDOOR_BENCH_REPEAT=N runs N rounds of each comparison and reports medians. Then the two
 * device paths (bench-paths.ts; TRAPDOOR_BENCH_PATHS=0 skips it) and the emulated path's round trip
 * in Chromium (bench-paths-page.ts; TRAPDOOR_BENCH_PATHS_PAGE=0 skips it), the CD read with VT-d off
 * and on (bench-iommu.ts; TRAPDOOR_BENCH_IOMMU=0 skips it). Last, the
 * network's throughput, host to guest and guest to guest (bench-net.ts; TRAPDOOR_BENCH_NET=0 skips it), the
 * browser's upstreams' code in the CLI (bench-net-page.ts; TRAPDOOR_BENCH_NET_PAGE=0 skips it) and the
 * page's wget in Chromium through fetch and Wisp (bench-net-browser.ts; TRAPDOOR_BENCH_NET_BROWSER=0 skips it).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchCpu } from './bench-cpu.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import type { CliBootRun } from './bench-worker.ts';
import type { GuestThreadTime, Snapshot } from './thread-time.ts';

const seconds = Number(process.env.TRAPDOOR_BENCH_SECONDS ?? 5);
for (const blocks of [false, true]) {
  const cpu = benchCpu(seconds, blocks);
  const onCpu = cpu.cpuMips === null ? '' : `, ${cpu.cpuMips.toFixed(1)} MIPS on a CPU`;
  process.stdout.write(`cpu: ${cpu.mips.toFixed(1)} MIPS (${cpu.instructions} instructions in ${cpu.seconds.toFixed(2)} s${onCpu}; flat protected mode with paging, ${blocks ? 'translated blocks' : 'interpreter'})\n`);
}

if (process.env.TRAPDOOR_BENCH_BOOT !== '0') {
  // Each image as the manifest boots it (VGA BIOS, both consoles), to its ready marker:
  // deterministic (virtual time from the instruction count) and wall-clock (the guest's
  // own timers on the host's clock, idle time really waited), each in a fresh process as
  // the CLI runs it (bench-cli-boot.ts).
  const images = (process.env.TRAPDOOR_BENCH_IMAGES ?? 'tiny-linux,debian-686').split(',').filter(Boolean);
  const { benchCliProcess } = await import('./bench-worker.ts');
  const bootRepeat = Math.max(1, Number(process.env.TRAPDOOR_BENCH_REPEAT ?? 1));
  for (const image of images) {
    if (!fs.existsSync(path.join(PUBLISH_DIR, 'manifest.json'))) {
      process.stdout.write('boot: skipped, no images (npm run images)\n');
      break;
    }
    for (const deterministic of [true, false]) {
      // TRAPDOOR_BENCH_REPEAT=N boots N times each way and reports the median.
      const runs: CliBootRun[] = [];
      for (let i = 0; i < bootRepeat; i++) {
        const r = benchCliProcess(image, deterministic);
        if (r) runs.push(r);
      }
      const mode = deterministic ? 'deterministic' : 'wall-clock';
      if (runs.length < bootRepeat) {
        process.stdout.write(`boot: ${image} did NOT reach its marker (${mode})\n`);
        continue;
      }
      runs.sort((a, b) => a.seconds - b.seconds);
      const r = runs[Math.floor(runs.length / 2)];
      const all = runs.length > 1 ? `, median of [${runs.map((x) => x.seconds.toFixed(1)).join(', ')}] s` : '';
      const inBlocks = r.compiledBlocks ? `, ${(100 * r.inBlocks).toFixed(0)}% in ${r.compiledBlocks} translated blocks` : '';
      process.stdout.write(`boot: ${image} reached its marker in ${r.seconds.toFixed(1)} s wall, ${r.virtualSeconds.toFixed(2)} s virtual, ${(r.instructions / 1e6).toFixed(0)} M instructions (${r.mips.toFixed(1)} MIPS; ${mode}${inBlocks}${all})\n`);
    }
  }
}

if (process.env.TRAPDOOR_BENCH_V86 !== '0') {
  // Trapdoor against v86 (bench-v86.ts) on the same files to the same marker: each round
  // boots each image once in each emulator, each boot in a fresh process, the order
  // alternating from round to round (a shared machine's slow minutes then hit both).
  // Trapdoor boots on the wall clock as `npx trapdoor` does, since v86 always does.
  const { benchV86Process, v86Version } = await import('./bench-v86.ts');
  const { benchCliProcess } = await import('./bench-worker.ts');
  const version = v86Version();
  const images = (process.env.TRAPDOOR_BENCH_IMAGES ?? 'tiny-linux,debian-686').split(',').filter(Boolean);
  const repeat = Math.max(1, Number(process.env.TRAPDOOR_BENCH_REPEAT ?? 1));
  if (version === null) process.stdout.write('v86: skipped, the v86 package is not installed (npm install)\n');
  else if (!fs.existsSync(path.join(PUBLISH_DIR, 'manifest.json'))) process.stdout.write('v86: skipped, no images (npm run images)\n');
  else {
    const cpuModel = os.cpus()[0]?.model.trim() || 'unknown CPU';
    process.stdout.write(`v86: hosts: Node ${process.version}, v86 ${version} (its WebAssembly JIT); ${cpuModel}, ${os.cpus().length} CPUs\n`);
    const middle = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const list = (xs: number[], digits = 1) => (xs.length > 1 ? ` [${xs.map((x) => x.toFixed(digits)).join(', ')}]` : '');
    for (const image of images) {
      const ours: CliBootRun[] = [];
      const theirs: { seconds: number; instructions: number; rss: number; cpuSeconds: number }[] = [];
      const ratios: number[] = [];
      const cpuRatios: number[] = [];
      for (let i = 0; i < repeat; i++) {
        let a: CliBootRun | null, b: ReturnType<typeof benchV86Process>;
        if (i % 2 === 0) {
          a = benchCliProcess(image, false);
          b = benchV86Process(image);
        } else {
          b = benchV86Process(image);
          a = benchCliProcess(image, false);
        }
        if (a) ours.push(a);
        if (b) theirs.push(b);
        if (a && b) {
          ratios.push(a.seconds / b.seconds);
          cpuRatios.push(a.cpuSeconds / b.cpuSeconds);
        }
      }
      if (ours.length < repeat || theirs.length < repeat) {
        process.stdout.write(`v86: ${image}: ${ours.length < repeat ? 'Trapdoor' : 'v86'} did NOT reach the marker\n`);
        continue;
      }
      const t = ours.map((r) => r.seconds), v = theirs.map((r) => r.seconds);
      const mb = (xs: number[]) => (middle(xs) / 2 ** 20).toFixed(0);
      process.stdout.write(`v86: ${image} to its marker (wall clock${repeat > 1 ? `, medians of ${repeat} rounds` : ''}): Trapdoor ${middle(t).toFixed(2)} s${list(t, 2)}, ` +
        `v86 ${middle(v).toFixed(2)} s${list(v, 2)}: Trapdoor/v86 = ${middle(ratios).toFixed(2)}${list(ratios, 2)}; ` +
        `${(middle(ours.map((r) => r.instructions)) / 1e6).toFixed(0)} M against ${(middle(theirs.map((r) => r.instructions)) / 1e6).toFixed(0)} M instructions; ` +
        `resident memory Trapdoor ${mb(ours.map((r) => r.rss))} MB, v86 ${mb(theirs.map((r) => r.rss))} MB\n`);
      // CPU time of each process, every thread counted, from the machine's creation to the
      // marker: the work each emulator did, which a loaded machine's waits do not inflate.
      const tc = ours.map((r) => r.cpuSeconds), vc = theirs.map((r) => r.cpuSeconds);
      process.stdout.write(`v86: ${image}: CPU time of the process: Trapdoor ${middle(tc).toFixed(2)} s${list(tc, 2)}, v86 ${middle(vc).toFixed(2)} s${list(vc, 2)}: ` +
        `Trapdoor/v86 = ${middle(cpuRatios).toFixed(2)}${list(cpuRatios, 2)}\n`);
    }
  }
}

if (process.env.TRAPDOOR_BENCH_V86 !== '0' && process.env.TRAPDOOR_BENCH_FORK !== '0') {
  // Process creation: tiny-linux's shell forking and exec'ing in a loop (bench-fork.ts), its
  // passes per second of the guest's clock over TRAPDOOR_BENCH_FORK_SECONDS (10), each
  // emulator in its own process, alternating first from round to round.
  const { benchForkLoop, FORK_LOOP } = await import('./bench-fork.ts');
  const { v86Version } = await import('./bench-v86.ts');
  const seconds = Number(process.env.TRAPDOOR_BENCH_FORK_SECONDS ?? 10);
  const repeat = Math.max(1, Number(process.env.TRAPDOOR_BENCH_REPEAT ?? 1));
  if (v86Version() !== null && fs.existsSync(path.join(PUBLISH_DIR, 'manifest.json'))) {
    const ours: number[] = [], theirs: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const order = i % 2 === 0 ? (['trapdoor', 'v86'] as const) : (['v86', 'trapdoor'] as const);
      for (const which of order) {
        const r = benchForkLoop('tiny-linux', which, seconds);
        if (r) (which === 'trapdoor' ? ours : theirs).push(r.perSecond);
      }
    }
    const middle = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const list = (xs: number[]) => (xs.length > 1 ? ` [${xs.map((x) => x.toFixed(1)).join(', ')}]` : '');
    if (ours.length < repeat || theirs.length < repeat) process.stdout.write(`fork: the loop did NOT run in ${ours.length < repeat ? 'Trapdoor' : 'v86'}\n`);
    else {
      process.stdout.write(`fork: tiny-linux, \`${FORK_LOOP.trim()}\` over ${seconds} s of the guest's clock (wall clock)${repeat > 1 ? `, medians of ${repeat} rounds` : ''}: ` +
        `Trapdoor ${middle(ours).toFixed(1)} passes/s${list(ours)}, v86 ${middle(theirs).toFixed(1)}${list(theirs)}: Trapdoor/v86 = ${(middle(ours) / middle(theirs)).toFixed(2)}\n`);
    }
  }
}

if (process.env.TRAPDOOR_BENCH_WORKER !== '0') {
  // Worker against CLI on the image as the manifest boots it (with the VGA BIOS and both
  // consoles). TRAPDOOR_BENCH_REPEAT=N runs N rounds, each host once per round in turn
  // (each round starting with the next host), and reports medians, and the median of each
  // round's worker/CLI ratio: on a shared machine whose speed drifts by a third from
  // minute to minute, one run says little, and a ratio taken within a round holds better
  // than one taken across rounds.
  const { imageInputs, benchCliProcess, benchNodeWorker, openChromium } = await import('./bench-worker.ts');
  const { snapshot, processesNamed, guestThreadBetween } = await import('./thread-time.ts');
  type Run = { instructions: number; seconds: number; mips: number; thread: GuestThreadTime | null };
  type Host = 'cli' | 'node' | 'chromium' | 'page';
  const image = 'tiny-linux';
  const repeat = Math.max(1, Number(process.env.TRAPDOOR_BENCH_REPEAT ?? 1));
  if (!fs.existsSync(path.join(PUBLISH_DIR, 'manifest.json'))) {
    process.stdout.write('worker: skipped, no images (npm run images)\n');
  } else {
    const { inputs, marker } = imageInputs(image);
    const runs: Record<Host, Run[]> = { cli: [], node: [], chromium: [], page: [] };
    const ratios: Record<Host, number[]> = { cli: [], node: [], chromium: [], page: [] };
    /** Per round: the guest thread's instructions per second on a CPU, against the CLI's. */
    const cpuRatios: Record<Host, number[]> = { cli: [], node: [], chromium: [], page: [] };
    let skipped = '';
    const browser = process.env.TRAPDOOR_BENCH_BROWSER !== '0' ? await openChromium(image, marker) : null;
    if (typeof browser === 'string') skipped = browser;
    // The guest thread of a worker run: the busiest worker thread of this process (Node) or
    // of Chromium's processes, between snapshots taken around the run (thread-time.ts).
    // The second snapshot is taken at the marker, while the worker's thread still exists. A
    // worker's time on a CPU so includes its start (loading its module, taking the boot
    // request), the CLI's its machine's creation: the workers' figure errs on the low side.
    const measured = async (pids: () => number[], name: RegExp, boot: (atMarker: () => void) => Promise<Omit<Run, 'thread'> | null>): Promise<Run | null> => {
      const before = snapshot(pids());
      const at: { marker?: Snapshot } = {};
      const r = await boot(() => {
        at.marker = snapshot(pids());
      });
      return r && { ...r, thread: at.marker ? guestThreadBetween(before, at.marker, name) : null };
    };
    const chromiumPids = () => processesNamed(/^chrom/i);
    /** Instructions per second the guest thread spent on a CPU (0 when not measured). */
    const perCpu = (x: Run) => (x.thread && x.thread.onCpu > 0 ? x.instructions / x.thread.onCpu : 0);
    try {
      const hosts: [Host, () => Promise<Run | null>][] = [
        ['cli', async () => benchCliProcess(image)],
        ['node', () => measured(() => [process.pid], /./, (atMarker) => benchNodeWorker(inputs, marker, atMarker))],
      ];
      if (browser && typeof browser !== 'string') {
        hosts.push(
          ['chromium', () => measured(chromiumPids, /^DedicatedWorker/, (atMarker) => browser.worker(atMarker))],
          ['page', () => measured(chromiumPids, /^DedicatedWorker/, (atMarker) => browser.page(atMarker))],
        );
      }
      for (let i = 0; i < repeat; i++) {
        // Each round starts one host later: on this machine a run late in a round was
        // seen slower than an early one, and rotating spreads that over every host.
        const round: Partial<Record<Host, Run | null>> = {};
        for (let j = 0; j < hosts.length; j++) {
          const [host, run] = hosts[(i + j) % hosts.length];
          round[host] = await run();
        }
        const cli = round.cli;
        for (const host of Object.keys(round) as Host[]) {
          const r = round[host];
          if (!r) continue;
          runs[host].push(r);
          if (host === 'cli' || !cli) continue;
          ratios[host].push(r.mips / cli.mips);
          if (perCpu(r) > 0 && perCpu(cli) > 0) cpuRatios[host].push(perCpu(r) / perCpu(cli));
        }
      }
    } finally {
      if (browser && typeof browser !== 'string') await browser.close();
    }
    const middle = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const median = (rs: Run[]) => [...rs].sort((a, b) => a.mips - b.mips)[Math.floor(rs.length / 2)];
    const percents = (xs: number[]) => `${(middle(xs) * 100).toFixed(0)}%${xs.length > 1 ? ` [${xs.map((x) => (x * 100).toFixed(0)).join(', ')}]` : ''}`;
    const line = (what: string, host: Host) => {
      const rs = runs[host];
      if (rs.length === 0) return process.stdout.write(`worker: ${what}: did NOT reach the marker\n`);
      const r = median(rs);
      const all = rs.length > 1 ? ` [${rs.map((x) => x.mips.toFixed(1)).join(', ')}]` : '';
      const ratio = ratios[host].length ? ` = ${percents(ratios[host])} of the CLI` : '';
      process.stdout.write(`worker: ${what}: ${(r.instructions / 1e6).toFixed(0)} M instructions in ${r.seconds.toFixed(1)} s, ${r.mips.toFixed(1)} MIPS${all}${ratio}\n`);
      // Where the wall-clock time went (Linux): the guest thread on a CPU compares the code;
      // its wait for a CPU is what the host's other threads cost it (their own time on a
      // CPU follows); steal is the hypervisor's.
      const timed = rs.filter((x) => x.thread !== null);
      if (timed.length === 0) return;
      const t = (f: (g: GuestThreadTime) => number) => middle(timed.map((x) => f(x.thread!))).toFixed(1);
      const cpu = cpuRatios[host].length ? ` (instructions per second on a CPU: ${percents(cpuRatios[host])} of the CLI's)` : '';
      process.stdout.write(`worker:   its guest thread${timed.length > 1 ? ', medians' : ''}: ${t((g) => g.onCpu)} s on a CPU${cpu}, ${t((g) => g.waiting)} s waiting for one; the host's other threads ${t((g) => g.others)} s on a CPU; steal ${t((g) => g.steal)} s\n`);
    };
    process.stdout.write(`worker: ${image} to its marker, deterministic, ${repeat > 1 ? `${repeat} rounds, medians` : 'one run each'}\n`);
    // The ratio depends on the JavaScript engines and the machine, not on this code alone:
    // the same worker bundle ran at 79% of the CLI on one machine of the project's kind and
    // at 99% on another, with Chromium 156.0.8078.114 (perf: the instruction fetch called
    // as a function of its own, not inlined by TurboFan, in 11% of the guest thread's
    // samples on the first, 4% on the second). So the report says what was measured.
    const cpuModel = os.cpus()[0]?.model.trim() || 'unknown CPU';
    const chromiumVersion = browser && typeof browser !== 'string' ? `, Chromium ${browser.version}` : '';
    process.stdout.write(`worker: hosts: Node ${process.version}${chromiumVersion}; ${cpuModel}, ${os.cpus().length} CPUs\n`);
    line('cli', 'cli');
    line('node-worker (MachineHost in a worker thread)', 'node');
    if (skipped) process.stdout.write(`worker: chromium: skipped, ${skipped}\n`);
    else if (browser) {
      line('chromium worker (the page\'s worker module from a blank page)', 'chromium');
      line('chromium page (the whole page: screen, serial console, devices panel drawn)', 'page');
    }
  }
}

if (process.env.TRAPDOOR_BENCH_PATHS !== '0' && fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux-iso'))) {
  // The two paths of issue 22 (bench-paths.ts): tiny-linux, deterministic, with COM1, COM2,
  // the VGA, the IDE controller and the NE2000 all direct, then all emulated (the device model
  // in a worker thread): host seconds to the prompt, the CD read by dd, 10,000 lines scrolled
  // on the framebuffer console, a wget from the host, and per device its traps per second and
  // the ioreq round trip in the phase that exercises it (upper edges of the histogram's
  // buckets, or the maximum where that is lower). Measurements, not targets.
  const { benchPaths } = await import('./bench-paths.ts');
  for (const p of ['direct', 'emulated'] as const) {
    try {
      const r = await benchPaths(p);
      const devices = r.devices as Record<string, { traps: number; trapsPerSecond: number; rttMedianUs: number; rtt99Us: number }>;
      const per = Object.entries(devices)
        .filter(([, d]) => d.traps > 0)
        .map(([n, d]) => `${n} ${d.trapsPerSecond} traps/s, round trip median < ${+d.rttMedianUs.toFixed(1)} us, p99 < ${+d.rtt99Us.toFixed(1)} us`)
        .join('; ');
      process.stdout.write(`paths: every switchable device ${p}: tiny-linux to its prompt in ${String(r.bootSeconds)} s, the CD read at ${String(r.cdReadMBps)} MB/s, ${String(r.scrollLines)} lines scrolled on the framebuffer console in ${String(r.scrollSeconds)} s, wget of ${String(r.wgetMiB)} MiB at ${String(r.wgetMBps)} MB/s${per ? `; ${per}` : ''}\n`);
    } catch (e) {
      process.stdout.write(`paths: ${p}: did NOT finish: ${(e as Error).message.split('\n')[0]}\n`);
    }
  }
}

if (process.env.TRAPDOOR_BENCH_PATHS_PAGE !== '0' && process.env.TRAPDOOR_BENCH_BROWSER !== '0') {
  // The emulated path's round trip in Chromium: the page's Web Worker device model (bench-paths-page.ts).
  const { benchPathsPage, formatPagePaths } = await import('./bench-paths-page.ts');
  try {
    const r = await benchPathsPage();
    if (typeof r === 'string') process.stdout.write(`paths-page: skipped, ${r}\n`);
    else for (const d of r.devices) process.stdout.write(formatPagePaths(r.chromium, d) + '\n');
  } catch (e) {
    process.stdout.write(`paths-page: did NOT finish: ${(e as Error).message.split('\n')[0]}\n`);
  }
}

if (process.env.TRAPDOOR_BENCH_IOMMU !== '0' && fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux-iso'))) {
  // The CD read through bus-master DMA with the VT-d unit off, then on (bench-iommu.ts).
  const { benchIsoRead } = await import('./bench-iommu.ts');
  for (const on of [false, true]) {
    try {
      const r = benchIsoRead(on);
      const c = r.counters;
      const unit = c ? `; translation ${r.translation ? 'on' : 'OFF'}, ${c.translations} pages translated, IOTLB ${c.iotlbHits} hits / ${c.iotlbMisses} misses, ${c.faults} faults` : '';
      process.stdout.write(`iommu: tiny-linux reads its ISO (dd of /dev/sr0, IDE bus-master DMA) with VT-d ${on ? 'on' : 'off'}: ${r.mbPerSecond.toFixed(2)} MB/s (${r.seconds.toFixed(2)} s)${unit}\n`);
    } catch (e) {
      process.stdout.write(`iommu: VT-d ${on ? 'on' : 'off'}: did NOT finish: ${(e as Error).message}\n`);
    }
  }
}

if (process.env.TRAPDOOR_BENCH_NET !== '0') {
  const { benchNetwork } = await import('./bench-net.ts');
  await benchNetwork();
}

if (process.env.TRAPDOOR_BENCH_NET_PAGE !== '0') {
  // The browser's upstreams' code in the CLI (bench-net-page.ts): wget through -nic user,fetch= and wisp=.
  const { benchUpstreams } = await import('./bench-net-page.ts');
  await benchUpstreams();
}

if (process.env.TRAPDOOR_BENCH_NET_BROWSER !== '0' && process.env.TRAPDOOR_BENCH_BROWSER !== '0') {
  // The page's wget in Chromium through fetch from its own origin and through Wisp (bench-net-browser.ts).
  const { benchNetBrowser, formatNetBrowser } = await import('./bench-net-browser.ts');
  try {
    const r = await benchNetBrowser({ mib: Math.max(1, Number(process.env.TRAPDOOR_BENCH_NET_BROWSER_MIB ?? 16)) });
    if (typeof r === 'string') process.stdout.write(`net-browser: skipped, ${r}\n`);
    else for (const line of formatNetBrowser(r)) process.stdout.write(line + '\n');
  } catch (e) {
    process.stdout.write(`net-browser: did NOT finish: ${(e as Error).message.split('\n')[0]}\n`);
  }
}
