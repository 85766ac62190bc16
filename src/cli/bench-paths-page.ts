/**
 * The emulated path's round trip in Chromium (issue 22): the page itself, built and served
 * by vite, boots tiny-linux in wall-clock mode; COM1 and then the NE2000 are put on the
 * emulated path from their cards (the device model in the page's Web Worker,
 * device-model-web.ts) while the guest works them: 3,000 lines printed on the serial console,
 * then 50 pings of 1400 bytes to the router. Each card's figures are read: the ioreqs
 * answered, the time they took per second of host time, and the round trip's median and 99th
 * percentile (upper edges of the log2 histogram's buckets, as everywhere else). Measurements,
 * not targets. `npm run bench` calls it (TRAPDOOR_BENCH_PATHS_PAGE=0 skips it);
 * `node bin/run.mjs src/cli/bench-paths-page.ts` runs it alone.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PUBLISH_DIR } from '../../images/paths.ts';

export interface PagePathFigures {
  device: string;
  traps: number;
  rttMedianUs: number;
  rtt99Us: number;
  seconds: number;
}

/** Run the page bench; the figures per device, or why it could not run. */
export async function benchPathsPage(limitMs = 300_000): Promise<{ chromium: string; devices: PagePathFigures[] } | string> {
  const executablePath = process.env.TRAPDOOR_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) return `no Chromium at ${executablePath} (set TRAPDOOR_CHROMIUM)`;
  if (!fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage'))) return 'no tiny-linux image (npm run images)';
  const root = path.resolve(PUBLISH_DIR, '..', '..');
  // A build of its own: another run's `vite build` into dist/ cannot change it underfoot.
  const out = path.join(root, '.build', `bench-paths-page-${process.pid}`);
  execFileSync('npx', ['vite', 'build', '--logLevel', 'error', '--outDir', out, '--emptyOutDir'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const port = 4800 + (process.pid % 500);
  const preview = spawn('npx', ['vite', 'preview', '--strictPort', '--port', String(port), '--outDir', out], { cwd: root, stdio: 'ignore', detached: true });
  const { chromium } = await import('@playwright/test');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    for (let i = 0; ; i++) {
      try {
        await page.goto(`http://127.0.0.1:${port}/?boot=tiny-linux`);
        break;
      } catch (e) {
        if (i > 50) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const waitFor = (text: string) => page.waitForFunction((t) => document.querySelector('[data-testid="serial-text"]')?.textContent?.includes(t) === true, text, { polling: 500, timeout: limitMs });
    const type = async (line: string) => {
      await page.getByTestId('serial-terminal').click();
      await page.keyboard.type(line);
      await page.keyboard.press('Enter');
    };
    const value = async (id: string) => Number(await page.getByTestId(id).getAttribute('data-value'));
    await waitFor('trapdoor:/# ');
    await type('udhcpc -i eth0 -q >/dev/null 2>&1; echo LEASE-$((3*3))');
    await waitFor('LEASE-9');
    const devices: PagePathFigures[] = [];
    const measure = async (device: string, command: string, marker: string) => {
      await page.getByTestId(`path-switch-${device}`).click();
      await page.waitForFunction((d) => document.querySelector(`[data-testid="path-now-${d}"]`)?.textContent === 'emulated', device, { polling: 200, timeout: 60_000 });
      const t0 = performance.now();
      await type(command);
      await waitFor(marker);
      const seconds = (performance.now() - t0) / 1000;
      // The card's counters move on the page's tick: one more tick, so the last answers are in.
      await page.waitForTimeout(600);
      const rtt = (await page.getByTestId(`stat-${device}-rtt`).textContent()) ?? '';
      const m = /(\d+) \/ (\d+) µs/.exec(rtt);
      devices.push({ device, traps: await value(`stat-${device}-traps`), rttMedianUs: Number(m?.[1] ?? NaN), rtt99Us: Number(m?.[2] ?? NaN), seconds });
      await page.getByTestId(`path-switch-${device}`).click();
      await page.waitForFunction((d) => document.querySelector(`[data-testid="path-now-${d}"]`)?.textContent === 'direct', device, { polling: 200, timeout: 60_000 });
    };
    await measure('com1', 'seq 1 3000; echo SEQ-$((4*4))', 'SEQ-16');
    await measure('ne2k', 'ping -q -c 50 -s 1400 -i 0.02 10.0.2.2; echo PING-$((5*5))', 'PING-25');
    return { chromium: browser.version(), devices };
  } finally {
    await browser.close();
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

if (process.argv[1]?.endsWith('bench-paths-page.ts')) {
  const r = await benchPathsPage();
  if (typeof r === 'string') process.stdout.write(`paths-page: skipped, ${r}\n`);
  else for (const d of r.devices) process.stdout.write(formatPagePaths(r.chromium, d) + '\n');
}

export function formatPagePaths(chromium: string, d: PagePathFigures): string {
  return `paths-page: ${d.device} emulated in Chromium ${chromium} (the page's Web Worker device model): ${d.traps} ioreqs in ${d.seconds.toFixed(1)} s, round trip median < ${d.rttMedianUs} us, p99 < ${d.rtt99Us} us (histogram bucket edges)`;
}
