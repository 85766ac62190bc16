/**
 * The two paths' figures (issue 22), for a person or `npm run bench` to call:
 *   node bin/run.mjs src/cli/bench-paths.ts
 * tiny-linux in deterministic mode (so every run does the same work) with every switchable
 * device (COM1, COM2, the IDE controller, the NE2000) on one path, then on the other: host
 * seconds to the shell prompt, then `dd` of the whole CD (the IDE's throughput in MB/s of
 * host time); per device, traps and direct accesses, traps per host second, and the
 * round trip's median, 99th percentile and maximum (histogram bucket edges). One JSON
 * object per path on stdout. Figures are measurements: nothing is tuned to widen a gap.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { INITRD } from '../../images/tiny-linux/recipe.ts';
import { createMachine } from '../emulator/machine/machine.ts';
import { MemoryBlockDevice } from '../emulator/devices/block-device.ts';
import { defaultMac } from '../emulator/net/ethernet.ts';
import type { DevicePath } from '../emulator/bus/device-paths.ts';
import { nodeDeviceModelConnector } from '../worker/device-model-spawn.ts';
import { bundle } from '../../bin/bundle.mjs';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));
const DEVICES = ['com1', 'com2', 'ide', 'ne2k'];

export async function benchPaths(path_: DevicePath): Promise<Record<string, unknown>> {
  const deviceModel = nodeDeviceModelConnector(await bundle('src/worker/device-model-node.ts'));
  let serial = '';
  const iso = read('tiny-linux-iso/tiny-linux.iso');
  const m = createMachine(
    {
      memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true,
      kernel: read('tiny-linux/bzImage'), initrd: read(`tiny-linux/${INITRD}`), append: 'console=ttyS0', boot: 'c',
      cdrom: new MemoryBlockDevice(iso, true),
      network: { netdevs: [{ kind: 'user', id: 'user.0', restrict: true, hostfwd: [] }], nics: [{ model: 'ne2k_pci', mac: defaultMac(0), netdev: 'user.0' }] },
    },
    { serial: (i, b) => { if (i === 0) serial += String.fromCharCode(b); } },
    { deviceModel },
  );
  for (const d of DEVICES) m.paths.switchNow(d, path_);
  const runUntil = (re: RegExp, virtualSeconds: number) => {
    const limit = m.bus.clock.now() + virtualSeconds * 1e9;
    while (!re.test(serial) && m.bus.clock.now() < limit && !m.stopped && m.paths.failure === null) m.run(500_000);
    if (!re.test(serial)) throw new Error(`bench-paths (${path_}): no /${re.source}/ (${m.paths.failure ?? m.stopped ?? 'virtual time ran out'})`);
  };
  const t0 = performance.now();
  runUntil(/trapdoor:\/# /, 120);
  const bootSeconds = (performance.now() - t0) / 1000;
  m.bus.stats.clear();
  let pending = Array.from('dd if=/dev/sr0 of=/dev/null bs=64k; echo DD-$((40+2))\n', (c) => c.charCodeAt(0));
  const t1 = performance.now();
  const limit = m.bus.clock.now() + 120e9;
  while (!/DD-42\r?\n/.test(serial) && m.bus.clock.now() < limit && m.paths.failure === null) {
    if (pending.length) pending = pending.slice(m.serialInput(pending));
    m.run(500_000);
  }
  const ddSeconds = (performance.now() - t1) / 1000;
  const devices = Object.fromEntries(m.paths.list().map((d) => [d.name, {
    traps: d.traps, directAccesses: d.directAccesses, trapsPerSecond: Math.round(d.traps / ddSeconds),
    rttMedianUs: d.rttMedianNs / 1000, rtt99Us: d.rtt99Ns / 1000, rttMaxUs: Math.round(d.rttMaxNs) / 1000,
  }]));
  m.paths.close();
  return { path: path_, bootSeconds: +bootSeconds.toFixed(2), cdReadMBps: +(iso.length / 1e6 / ddSeconds).toFixed(2), ddSeconds: +ddSeconds.toFixed(2), devices };
}

if (process.argv[1]?.endsWith('bench-paths.ts')) {
  for (const p of ['direct', 'emulated'] as const) process.stdout.write(JSON.stringify(await benchPaths(p)) + '\n');
  process.exit(0);
}
