/**
 * The network end to end, through the `trapdoor` command line as a user runs it: the
 * guest's own DHCP client, ping, wget and nc against real servers on the host's
 * loopback, hostfwd reached with curl, two emulators on one socket LAN, and Debian's
 * qemu-system-i386 as the peer. Every user network here is restricted (restrict=on), so
 * no test traffic can leave the machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startProcess, startTrapdoor, type TestProcess } from './testing/process.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { readPcap } from '../emulator/net/pcap.ts';
import { xorshiftWords } from '../emulator/testing/xorshift.ts';

const TINY = path.join(PUBLISH_DIR, 'tiny-linux');
const haveTiny = fs.existsSync(path.join(TINY, 'bzImage'));
const READY = /TRAPDOOR GUEST READY/;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-net-'));

// A second try per test. A CI run once saw two of these guests stop printing (after the
// first ping reply; at udhcpc's start in debian-686) until --timeout. Not reproduced here in
// about 50 runs; what was found since: the page's 'silent guest' was its test matching the echo
// of a command a kernel message had split, and in wall-clock mode a guest woken from HLT
// by a frame lost its sleep from its clock (fixed in machine.ts). A timeout prints where
// the machine stands (src/cli/run.ts), which is in the failure's message.
const RETRY = { retry: 1 };
const running: TestProcess[] = [];
const servers: net.Server[] = [];

/** A random blob served over HTTP on 127.0.0.1, and its SHA-256. */
let blob: Buffer;
let blobSha: string;
let httpPort = 0;

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function trapdoor(args: string[]): TestProcess {
  const p = startTrapdoor(args);
  running.push(p);
  return p;
}

/** Type a command at the guest's shell and wait for `until` in what follows. */
async function run(p: TestProcess, command: string, until: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  const from = p.output().length;
  p.send(command + '\n');
  return p.waitFor(until, timeoutMs, from);
}

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  // Deterministic bytes so a failure can be reproduced; random enough that nothing compresses them.
  blob = Buffer.from(xorshiftWords(16 << 20, 0x12345678));
  blobSha = sha256(blob);
  httpPort = await listen(http.createServer((req, res) => {
    if (req.url === '/blob') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      res.end(blob);
    } else {
      res.writeHead(404);
      res.end('not here\n');
    }
  }));
});

afterAll(() => {
  for (const p of running) p.kill();
  for (const s of servers) s.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!haveTiny)('tiny-linux on the user network (CLI, real sockets on loopback)', RETRY, () => {
  it('gets a lease, pings the router and fetches 16 MiB over HTTP intact', { timeout: 300_000 }, async () => {
    const pcap = path.join(tmp, 'wget.pcap');
    const p = trapdoor([
      '--image', 'tiny-linux', '-nic', 'user,restrict=on', '--pcap', pcap,
      '--until', 'TRAPDOOR GUEST READY',
      '--send', `udhcpc -i eth0 -q && ping -c 3 10.0.2.2 && wget -O /tmp/f http://10.0.2.2:${httpPort}/blob && sha256sum /tmp/f\\n`,
      '--until', blobSha, '--timeout', '280', '--stats', path.join(tmp, 'wget-stats.json'),
    ]);
    const code = await p.exit;
    expect(code, p.output().slice(-3000)).toBe(0);
    expect(p.output()).toMatch(/lease of 10\.0\.2\.15 obtained/);
    expect(p.output()).toMatch(/3 packets transmitted, 3 packets received/);
    const stats = JSON.parse(fs.readFileSync(path.join(tmp, 'wget-stats.json'), 'utf8')) as { network: { nics: { counters: Record<string, number> }[] } };
    const nic = stats.network.nics[0].counters;
    expect(Object.entries(nic).filter(([k, v]) => /^drop/.test(k) && v > 0)).toEqual([]);
    // The capture: what tcpdump reads without complaint, with the DHCP exchange and the transfer in it.
    const cap = readPcap(new Uint8Array(fs.readFileSync(pcap)));
    expect(cap.packets.length).toBeGreaterThan(11_000);
    const dump = execFileSync('tcpdump', ['-nn', '-r', pcap, '-v'], { maxBuffer: 512 << 20, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    expect(dump).not.toMatch(/malformed|truncated|bad cksum|invalid/i);
    expect(dump).toMatch(/BOOTP\/DHCP, Request/);
    expect(dump).toMatch(/BOOTP\/DHCP, Reply/);
    expect(dump).toMatch(new RegExp(`10\\.0\\.2\\.2\\.${httpPort} > 10\\.0\\.2\\.15\\.\\d+: Flags \\[\\.\\]`));
  });

  it('moves 1 MiB each way through nc to a host echo server over a link that loses 5% of frames', { timeout: 300_000 }, async () => {
    const size = 1 << 20;
    let received = Buffer.alloc(0);
    const echoPort = await listen(net.createServer((s) => {
      const chunks: Buffer[] = [];
      let n = 0;
      s.on('data', (d) => {
        chunks.push(d);
        n += d.length;
        s.write(d);
        // The whole file is back: close, so the guest's nc sees the end of the stream.
        if (n >= size) {
          received = Buffer.concat(chunks);
          s.end();
        }
      });
      s.on('error', () => {});
    }));
    const p = trapdoor(['--image', 'tiny-linux', '-nic', 'user,restrict=on,loss=0.05,lossseed=7', '--stats', path.join(tmp, 'nc-stats.json'), '--timeout', '280']);
    await p.waitFor(READY, 120_000);
    await run(p, 'udhcpc -i eth0 -q', /lease of 10\.0\.2\.15 obtained/);
    await run(p, 'dd if=/dev/urandom of=/tmp/a bs=1024 count=1024 2>/dev/null; echo MADE-$((1+1))', /MADE-2/);
    await run(p, `nc 10.0.2.2 ${echoPort} < /tmp/a > /tmp/b; echo NC-DONE $?`, /NC-DONE \d/, 240_000);
    const m = await run(p, 'sha256sum /tmp/a /tmp/b', /([0-9a-f]{64})\s+\/tmp\/a\r?\n([0-9a-f]{64})\s+\/tmp\/b/);
    expect(m[1]).toBe(m[2]);
    expect(received.length).toBe(size);
    expect(sha256(received)).toBe(m[1]);
    p.send('\x01x');
    await p.exit;
    const stats = JSON.parse(fs.readFileSync(path.join(tmp, 'nc-stats.json'), 'utf8')) as { network: { lans: { ports: { name: string; dropLoss: number }[] }[] } };
    // The link really lost frames, and TCP on both sides made up for them.
    expect(stats.network.lans[0].ports.find((x) => x.name === 'ne2k')!.dropLoss).toBeGreaterThan(50);
  });

  it('a refused host connection is a reset to the guest, and a non-loopback address is refused when restricted', { timeout: 200_000 }, async () => {
    const closed = await freePort();
    const p = trapdoor(['--image', 'tiny-linux', '-nic', 'user,restrict=on', '--timeout', '180']);
    await p.waitFor(READY, 120_000);
    await run(p, 'udhcpc -i eth0 -q', /lease of 10\.0\.2\.15 obtained/);
    await run(p, `wget -O /dev/null http://10.0.2.2:${closed}/x; echo RC-$?`, /Connection refused[\s\S]*RC-1/);
    // (Not `wget -T`: Debian's busybox 1.35 wget segfaults with it, in QEMU too.)
    await run(p, 'wget -O /dev/null http://192.0.2.1/x; echo RC-$?', /Connection refused[\s\S]*RC-1/);
    p.kill();
  });

  it('hostfwd reaches the guest\'s busybox httpd from the host with curl', { timeout: 200_000 }, async () => {
    const port = await freePort();
    const p = trapdoor(['--image', 'tiny-linux', '-nic', `user,restrict=on,hostfwd=tcp::${port}-:80`, '--timeout', '180']);
    await p.waitFor(READY, 120_000);
    await run(p, 'udhcpc -i eth0 -q && echo "hello from the guest $((6*7))" > /var/www/hello.txt && httpd -h /var/www && echo HTTPD-$((40+2))', /HTTPD-42/);
    const body = execFileSync('curl', ['-sS', '--max-time', '30', `http://127.0.0.1:${port}/hello.txt`]).toString();
    expect(body).toBe('hello from the guest 42\n');
    p.kill();
  });
});

describe.skipIf(!fs.existsSync(path.join(PUBLISH_DIR, 'ipxe', 'ipxe.lkrn')))('network boot with iPXE over the user network\'s TFTP', RETRY, () => {
  const tftp = path.join(PUBLISH_DIR, 'ipxe', 'tftp');
  it('--boot n: the NIC\'s option ROM gets a lease, loads tiny-linux by TFTP and boots it', { timeout: 300_000 }, async () => {
    const p = trapdoor(['--boot', 'n', '-nic', `user,restrict=on,tftp=${tftp},bootfile=boot.ipxe`, '--until', 'TRAPDOOR GUEST READY', '--timeout', '280', '--stats', path.join(tmp, 'pxe-stats.json')]);
    expect(await p.exit, p.output().slice(-2000)).toBe(0);
    const stats = JSON.parse(fs.readFileSync(path.join(tmp, 'pxe-stats.json'), 'utf8')) as { network: { routers: { stats: { tftp: { completed: number }; dhcp: { ack: number } } }[] } };
    // boot.ipxe, the kernel and the initramfs, each a finished transfer.
    expect(stats.network.routers[0].stats.tftp.completed).toBeGreaterThanOrEqual(3);
    expect(stats.network.routers[0].stats.dhcp.ack).toBeGreaterThanOrEqual(1);
  });

  it('--kernel ipxe.lkrn does the same', { timeout: 300_000 }, async () => {
    const p = trapdoor(['--kernel', path.join(PUBLISH_DIR, 'ipxe', 'ipxe.lkrn'), '-nic', `user,restrict=on,tftp=${tftp},bootfile=boot.ipxe`, '--until', 'TRAPDOOR GUEST READY', '--timeout', '280']);
    expect(await p.exit, p.output().slice(-2000)).toBe(0);
  });
});

const DEBIAN = path.join(PUBLISH_DIR, 'debian-686');
describe.skipIf(!fs.existsSync(path.join(DEBIAN, 'vmlinuz')))('debian-686 on the user network', RETRY, () => {
  it('its own ne2k-pci module gets a lease and fetches the 16 MiB file intact', { timeout: 400_000 }, async () => {
    const p = trapdoor([
      '--image', 'debian-686', '-nic', 'user,restrict=on', '--until', 'TRAPDOOR GUEST READY',
      '--send', `udhcpc -i eth0 -q && wget -O /tmp/f http://10.0.2.2:${httpPort}/blob && sha256sum /tmp/f\\n`,
      '--until', blobSha, '--timeout', '380',
    ]);
    expect(await p.exit, p.output().slice(-3000)).toBe(0);
    expect(p.output()).toMatch(/lease of 10\.0\.2\.15 obtained/);
  });
});

describe.skipIf(!haveTiny)('a socket LAN (QEMU\'s -netdev socket)', RETRY, () => {
  // The markers are computed by the shell, so the echo of the typed command cannot match them.
  const guestSetup = (ip: string) => `ip addr add ${ip}/24 dev eth0 && ip link set eth0 up && echo UP-$((1+1))-${ip}`;

  it('two trapdoor processes ping each other and move a file with nc', { timeout: 300_000 }, async () => {
    const port = await freePort();
    const a = trapdoor(['--image', 'tiny-linux', '-nic', `socket,listen=127.0.0.1:${port}`, '--timeout', '280']);
    const b = trapdoor(['--image', 'tiny-linux', '-nic', `socket,connect=127.0.0.1:${port},mac=52:54:00:12:34:57`, '--timeout', '280']);
    await Promise.all([a.waitFor(READY, 150_000), b.waitFor(READY, 150_000)]);
    await run(a, guestSetup('10.0.3.1'), /UP-2-10\.0\.3\.1/);
    await run(b, guestSetup('10.0.3.2'), /UP-2-10\.0\.3\.2/);
    await run(b, 'ping -c 3 10.0.3.1', /3 packets transmitted, 3 packets received/, 60_000);
    await run(a, 'ping -c 3 10.0.3.2', /3 packets transmitted, 3 packets received/, 60_000);
    await run(a, 'dd if=/dev/urandom of=/tmp/f bs=1024 count=512 2>/dev/null; sha256sum /tmp/f; nc -l -p 5000 < /tmp/f &', /[0-9a-f]{64}\s+\/tmp\/f/);
    const sent = /([0-9a-f]{64})\s+\/tmp\/f/.exec(a.output())![1];
    const m = await run(b, 'nc 10.0.3.1 5000 > /tmp/g; sha256sum /tmp/g', /([0-9a-f]{64})\s+\/tmp\/g/, 120_000);
    expect(m[1]).toBe(sent);
  });

  it('a peer that sends what is not a frame is counted and cut off; the guest carries on', { timeout: 200_000 }, async () => {
    const port = await freePort();
    const statsFile = path.join(tmp, 'garbage-stats.json');
    const a = trapdoor(['--image', 'tiny-linux', '-nic', `socket,listen=127.0.0.1:${port}`, '--stats', statsFile, '--timeout', '180']);
    await a.waitFor(READY, 120_000);
    const frame = (len: number) => {
      const b = Buffer.alloc(4 + len);
      b.writeUInt32BE(len, 0);
      b.fill(0xff, 4, Math.min(10, 4 + len)); // broadcast
      return b;
    };
    const send = (chunks: Buffer[]) => new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        for (const x of chunks) c.write(x);
        c.end();
      });
      c.on('close', () => resolve());
      c.on('error', () => resolve());
    });
    // A runt, an oversized frame, a good one, then a length prefix cut short.
    await send([frame(5), frame(20_000), frame(60), Buffer.from([0, 0])]);
    // A length no frame can have: the stream is out of step and is dropped.
    await send([Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])]);
    await run(a, 'echo still-$((40+2))', /still-42/);
    a.send('\x01x');
    await a.exit;
    const up = (JSON.parse(fs.readFileSync(statsFile, 'utf8')) as { network: { uplinks: Record<string, number>[] } }).network.uplinks[0];
    expect(up).toMatchObject({ connections: 2, frames: 1, dropShort: 1, dropOversized: 1, truncated: 1, corrupt: 1 });
  });

  const qemu = '/usr/bin/qemu-system-i386';
  it.skipIf(!fs.existsSync(qemu))('trapdoor and Debian\'s qemu-system-i386 ping each other and move a file both ways', { timeout: 400_000 }, async () => {
    const port = await freePort();
    const t = trapdoor(['--image', 'tiny-linux', '-nic', `socket,listen=127.0.0.1:${port}`, '--timeout', '380']);
    await t.waitFor(READY, 150_000);
    const q = startProcess(qemu, [
      '-M', 'pc', '-accel', 'tcg', '-m', '128', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
      '-kernel', path.join(TINY, 'bzImage'), '-initrd', path.join(TINY, 'initramfs.cpio'), '-append', 'console=ttyS0',
      '-netdev', `socket,id=n0,connect=127.0.0.1:${port}`, '-device', 'ne2k_pci,netdev=n0,mac=52:54:00:12:34:99',
    ]);
    running.push(q);
    await q.waitFor(READY, 200_000);
    await run(t, guestSetup('10.0.3.1'), /UP-2-10\.0\.3\.1/);
    await run(q, guestSetup('10.0.3.9'), /UP-2-10\.0\.3\.9/);
    await run(q, 'ping -c 3 10.0.3.1', /3 packets transmitted, 3 packets received/, 60_000);
    await run(t, 'ping -c 3 10.0.3.9', /3 packets transmitted, 3 packets received/, 60_000);
    // Trapdoor -> QEMU
    await run(t, 'dd if=/dev/urandom of=/tmp/f bs=1024 count=512 2>/dev/null; sha256sum /tmp/f; nc -l -p 5000 < /tmp/f &', /([0-9a-f]{64})\s+\/tmp\/f/);
    const fromT = /([0-9a-f]{64})\s+\/tmp\/f/.exec(t.output())![1];
    expect((await run(q, 'nc 10.0.3.1 5000 > /tmp/g; sha256sum /tmp/g', /([0-9a-f]{64})\s+\/tmp\/g/, 120_000))[1]).toBe(fromT);
    // QEMU -> Trapdoor
    const qFrom = q.output().length;
    q.send('dd if=/dev/urandom of=/tmp/h bs=1024 count=512 2>/dev/null; sha256sum /tmp/h; nc -l -p 5001 < /tmp/h &\n');
    const fromQ = (await q.waitFor(/([0-9a-f]{64})\s+\/tmp\/h/, 60_000, qFrom))[1];
    expect((await run(t, 'nc 10.0.3.9 5001 > /tmp/k; sha256sum /tmp/k', /([0-9a-f]{64})\s+\/tmp\/k/, 120_000))[1]).toBe(fromQ);
  });
});


