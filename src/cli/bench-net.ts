/**
 * The network's figures for `npm run bench`: what the guest's own wget gets from an HTTP
 * server on the host's loopback through the user-mode router (host to guest), and what
 * nc moves between two Trapdoor processes on one socket LAN (guest to guest). Each run is
 * the CLI as a user starts it, in wall-clock mode; the clock starts when the request
 * reaches the server (or the command is typed) and stops when the guest says it is done.
 *
 * TRAPDOOR_BENCH_NET_MIB sets the transfer size (default 64 MiB host to guest, a quarter
 * of it guest to guest); TRAPDOOR_BENCH_NET=0 skips this part.
 */
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startBulkServer } from './testing/bulk-server.ts';
import { startTrapdoor, type TestProcess } from './testing/process.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';

const READY = /TRAPDOOR GUEST READY/;

async function type(p: TestProcess, command: string, until: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const from = p.output().length;
  p.send(command + '\n');
  return p.waitFor(until, timeoutMs, from);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Host to guest: the guest's wget of `mib` MiB from the host's loopback, in MB/s (10^6 bytes). */
export async function benchWget(mib: number): Promise<{ mbPerSecond: number; seconds: number }> {
  const size = mib << 20;
  const server = await startBulkServer(size);
  const port = server.port;
  const p = startTrapdoor(['--image', 'tiny-linux', '-nic', 'user,restrict=on', '--timeout', '900']);
  try {
    await p.waitFor(READY, 300_000);
    await type(p, 'udhcpc -i eth0 -q', /lease of 10\.0\.2\.15 obtained/, 60_000);
    // Markers the shell computes: the echo of the typed line cannot match them.
    await type(p, `wget -q -O /dev/null http://10.0.2.2:${port}/blob && echo WGET-$((1+1))`, /WGET-2/, 800_000);
    if (server.firstRequestAt === 0) throw new Error('the guest finished before its request reached the server');
    const seconds = (performance.now() - server.firstRequestAt) / 1000;
    return { mbPerSecond: size / 1e6 / seconds, seconds };
  } finally {
    p.kill();
    server.close();
  }
}

/** Guest to guest over a socket LAN between two processes: nc of `mib` MiB, in MB/s. */
export async function benchSocketLan(mib: number): Promise<{ mbPerSecond: number; seconds: number }> {
  const port = await freePort();
  const a = startTrapdoor(['--image', 'tiny-linux', '-nic', `socket,listen=127.0.0.1:${port}`, '--timeout', '900']);
  const b = startTrapdoor(['--image', 'tiny-linux', '-nic', `socket,connect=127.0.0.1:${port},mac=52:54:00:12:34:57`, '--timeout', '900']);
  try {
    await Promise.all([a.waitFor(READY, 300_000), b.waitFor(READY, 300_000)]);
    await type(a, 'ip addr add 10.0.3.1/24 dev eth0 && ip link set eth0 up && echo UP-$((1+1))', /UP-2/, 30_000);
    await type(b, 'ip addr add 10.0.3.2/24 dev eth0 && ip link set eth0 up && echo UP-$((1+1))', /UP-2/, 30_000);
    await type(b, 'ping -c 1 10.0.3.1', /1 packets received/, 60_000);
    // The listener gets a second to start before the sender is typed (the clock starts then).
    await type(a, '(nc -l -p 5000 > /dev/null; echo RECEIVED-$((1+1))) & sleep 1; echo LISTENING-$((1+1))', /LISTENING-2/, 30_000);
    const start = performance.now();
    const from = a.output().length;
    b.send(`dd if=/dev/zero bs=65536 count=${mib * 16} 2>/dev/null | nc 10.0.3.1 5000\n`);
    await a.waitFor(/RECEIVED-2/, 800_000, from);
    const seconds = (performance.now() - start) / 1000;
    return { mbPerSecond: (mib << 20) / 1e6 / seconds, seconds };
  } finally {
    a.kill();
    b.kill();
  }
}

export async function benchNetwork(): Promise<void> {
  if (!fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage'))) {
    process.stdout.write('net: skipped, no tiny-linux image (npm run images)\n');
    return;
  }
  const mib = Math.max(1, Number(process.env.TRAPDOOR_BENCH_NET_MIB ?? 64));
  try {
    const w = await benchWget(mib);
    process.stdout.write(`net: host to guest (tiny-linux wget from the host's loopback through the user network, ne2k_pci): ${mib} MiB in ${w.seconds.toFixed(1)} s, ${w.mbPerSecond.toFixed(2)} MB/s\n`);
  } catch (e) {
    process.stdout.write(`net: host to guest: did NOT finish: ${(e as Error).message.split('\n')[0]}\n`);
  }
  const lanMib = Math.max(1, Math.round(mib / 4));
  try {
    const l = await benchSocketLan(lanMib);
    process.stdout.write(`net: guest to guest (two trapdoor processes on a socket LAN, nc): ${lanMib} MiB in ${l.seconds.toFixed(1)} s, ${l.mbPerSecond.toFixed(2)} MB/s\n`);
  } catch (e) {
    process.stdout.write(`net: guest to guest: did NOT finish: ${(e as Error).message.split('\n')[0]}\n`);
  }
}
