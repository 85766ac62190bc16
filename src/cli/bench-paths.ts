/**
 * The two paths' figures (issue 22), for a person or `npm run bench` to call:
 *   node bin/run.mjs src/cli/bench-paths.ts
 * tiny-linux in deterministic mode (so every run does the same work) with every switchable
 * device (COM1, COM2, the VGA, the IDE controller, the NE2000) on one path, then on the
 * other, through these phases, each timed in host seconds with the statistics cleared
 * before it:
 *   - boot: to the shell prompt (COM1 and COM2 are exercised here);
 *   - cd: `dd` of the whole CD (the IDE controller's throughput, MB/s of host time);
 *   - scroll: `seq 10000 > /dev/tty0`, 10,000 lines scrolled on the framebuffer console
 *     (the VGA: fbcon on Linux's bochs DRM driver draws into the LFB, plain memory on both
 *     paths, so its registers are seldom touched);
 *   - wget: the guest's wget of TRAPDOOR_BENCH_PATHS_MIB MiB (default 4) from an HTTP server
 *     on the host's loopback through the restricted user network (the NE2000's MB/s).
 * Per device, from the phase that exercises it: traps and direct accesses, traps per host
 * second, and the round trip's median, 99th percentile and maximum (histogram bucket
 * edges); `phases` has every device's figures in every phase. One JSON object per path on stdout. Figures are measurements: nothing is tuned to
 * widen a gap.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { INITRD } from '../../images/tiny-linux/recipe.ts';
import { createMachine } from '../emulator/machine/machine.ts';
import { MemoryBlockDevice } from '../emulator/devices/block-device.ts';
import { defaultMac } from '../emulator/net/ethernet.ts';
import type { DevicePath, DevicePathInfo } from '../emulator/bus/device-paths.ts';
import { nodeDeviceModelConnector } from '../worker/device-model-spawn.ts';
import { nodeHostNetwork } from './node-host-network.ts';
import { bundle } from '../../bin/bundle.mjs';
import { startBulkServer } from './testing/bulk-server.ts';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));
const DEVICES = ['com1', 'com2', 'vga', 'ide', 'ne2k'];
/** Which phase exercises each device: its figures are that phase's. */
const PHASE_OF: Record<string, Phase> = { com1: 'boot', com2: 'boot', vga: 'scroll', ide: 'cd', ne2k: 'wget' };
type Phase = 'boot' | 'cd' | 'scroll' | 'wget';
/** The 10,000 lines; TRAPDOOR_BENCH_PATHS_LINES sets fewer for a quick look at the other phases. */
const SCROLL_LINES = Number(process.env.TRAPDOOR_BENCH_PATHS_LINES ?? 10_000);

export interface DeviceFigures {
  traps: number;
  directAccesses: number;
  trapsPerSecond: number;
  rttMedianUs: number;
  rtt99Us: number;
  rttMaxUs: number;
}

function figures(list: DevicePathInfo[], seconds: number): Record<string, DeviceFigures> {
  return Object.fromEntries(list.map((d) => [d.name, {
    traps: d.traps, directAccesses: d.directAccesses, trapsPerSecond: Math.round(d.traps / seconds),
    rttMedianUs: d.rttMedianNs / 1000, rtt99Us: d.rtt99Ns / 1000, rttMaxUs: Math.round(d.rttMaxNs) / 1000,
  }]));
}

export async function benchPaths(path_: DevicePath, wgetMiB = Number(process.env.TRAPDOOR_BENCH_PATHS_MIB ?? 4)): Promise<Record<string, unknown>> {
  const size = wgetMiB << 20;
  const server = await startBulkServer(size);
  const port = server.port;
  const deviceModel = nodeDeviceModelConnector(await bundle('src/worker/device-model-node.ts'));
  const host = nodeHostNetwork();
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
    { deviceModel, network: { host } },
  );
  try {
    await m.network.start();
    for (const d of DEVICES) m.paths.switchNow(d, path_);
    /** Type `command` (if any) and run until `re` shows on the console; host seconds taken. */
    const phase = async (command: string, re: RegExp, virtualSeconds: number): Promise<number> => {
      m.bus.stats.clear();
      let pending = Array.from(command, (c) => c.charCodeAt(0));
      const from = serial.length;
      const t0 = performance.now();
      const limit = m.bus.clock.now() + virtualSeconds * 1e9;
      while (!re.test(serial.slice(from)) && m.bus.clock.now() < limit && !m.stopped && m.paths.failure === null) {
        if (pending.length) pending = pending.slice(m.serialInput(pending));
        m.run(500_000);
        // The host's sockets (the HTTP server, the user network's relays) move between turns.
        await new Promise<void>((r) => setImmediate(r));
      }
      if (!re.test(serial.slice(from))) throw new Error(`bench-paths (${path_}): no /${re.source}/ (${m.paths.failure ?? m.stopped ?? 'virtual time ran out'})`);
      return (performance.now() - t0) / 1000;
    };
    const seconds: Record<Phase, number> = { boot: 0, cd: 0, scroll: 0, wget: 0 };
    const perPhase: Partial<Record<Phase, Record<string, DeviceFigures>>> = {};
    seconds.boot = await phase('', /trapdoor:\/# /, 120);
    perPhase.boot = figures(m.paths.list(), seconds.boot);
    // Markers the shell computes, so the echo of the typed line cannot match them.
    seconds.cd = await phase('dd if=/dev/sr0 of=/dev/null bs=64k; echo DD-$((40+2))\n', /DD-42\r?\n/, 120);
    perPhase.cd = figures(m.paths.list(), seconds.cd);
    seconds.scroll = await phase(`seq ${SCROLL_LINES} > /dev/tty0; echo SCROLL-$((40+2))\n`, /SCROLL-42\r?\n/, 300);
    perPhase.scroll = figures(m.paths.list(), seconds.scroll);
    await phase('udhcpc -i eth0 -q >/dev/null 2>&1; echo LEASE-$((40+2))\n', /LEASE-42\r?\n/, 60);
    seconds.wget = await phase(`wget -q -O /dev/null http://10.0.2.2:${port}/blob; echo WGET-$? $((40+2))\n`, /WGET-0 42\r?\n/, 600);
    perPhase.wget = figures(m.paths.list(), seconds.wget);
    const devices = Object.fromEntries(DEVICES.map((d) => [d, perPhase[PHASE_OF[d]]![d]]));
    return {
      path: path_,
      bootSeconds: +seconds.boot.toFixed(2),
      cdReadMBps: +(iso.length / 1e6 / seconds.cd).toFixed(2), ddSeconds: +seconds.cd.toFixed(2),
      scrollSeconds: +seconds.scroll.toFixed(2), scrollLines: SCROLL_LINES,
      wgetMBps: +(size / 1e6 / seconds.wget).toFixed(2), wgetSeconds: +seconds.wget.toFixed(2), wgetMiB,
      devices,
      // Every device in every phase (the VGA's registers, say, are busy at boot and idle while fbcon scrolls).
      phases: perPhase,
    };
  } finally {
    m.paths.close();
    m.network.close();
    host.close();
    server.close();
  }
}

if (process.argv[1]?.endsWith('bench-paths.ts')) {
  // TRAPDOOR_BENCH_PATHS_ONLY=direct (or emulated) runs one path.
  const only = process.env.TRAPDOOR_BENCH_PATHS_ONLY;
  for (const p of ['direct', 'emulated'] as const) if (!only || only === p) process.stdout.write(JSON.stringify(await benchPaths(p)) + '\n');
  process.exit(0);
}
