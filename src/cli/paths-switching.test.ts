/**
 * Issue 22's switching run, through the `trapdoor` command line as a user runs it, in
 * deterministic mode: tiny-linux boots with its ISO as the CD, checksums every file on the
 * CD and the whole CD, and fetches a file over TCP from an HTTP server on the host's
 * loopback through the restricted user network (restrict=on), while the NE2000, the IDE
 * controller and the VGA move between the direct path and the device-model worker every
 * 20 ms of virtual time (--switch-every 20ms=ne2k,ide,vga). The guest must notice
 * nothing: the serial output byte for byte and the final screen (--screen-hash: the
 * framebuffer console's pixels) are those of the same run without switching; the NIC drops
 * no frame and the kernel logs no error.
 *
 * What the host's sockets bring enters the guest at host-dependent virtual times, so the
 * guest's TCP timing differs between the two runs: the commands print only what does not
 * depend on it (checksums, counts), and the fbcon cursor does not blink.
 *
 * The second test runs the switched guest on the host's clock (the same checksums, no drop,
 * no error; the output itself follows the host's timing).
 *
 * The transfer is 2 MiB here, so CI stays short; the issue's 64 MiB is the same test with
 * TRAPDOOR_SWITCH_MIB=64 (see docs/device-paths.md for how long it takes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTrapdoor, type TestProcess } from './testing/process.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { xorshiftWords } from '../emulator/testing/xorshift.ts';

const ISO = path.join(PUBLISH_DIR, 'tiny-linux-iso', 'tiny-linux.iso');
const have = fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage')) && fs.existsSync(ISO);
const MIB = Number(process.env.TRAPDOOR_SWITCH_MIB ?? 2);
const SWITCHED = ['ne2k', 'ide', 'vga'];
/** Host seconds one run may take: under a loaded machine the emulated halves' round trips dominate (docs/device-paths.md). */
const RUN_SECONDS = 900 + 300 * MIB;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-switching-'));
const running: TestProcess[] = [];
let server: http.Server;
let port = 0;
let blobSha = '';

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  // Deterministic bytes that do not compress, as network.test.ts serves.
  const blob = Buffer.from(xorshiftWords(MIB << 20, 0x2468ace1));
  blobSha = sha256(blob);
  server = http.createServer((req, res) => {
    if (req.url !== '/blob') {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(blob);
  });
  port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
});

afterAll(() => {
  for (const p of running) p.kill();
  server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  output: string;
  serial: string;
  screen: string;
  stats: {
    devices: { name: string; traps: number; directAccesses: number; pathSwitches: number }[];
    network: { nics: { counters: Record<string, number> }[] };
  };
}

async function run(label: string, extra: string[], deterministic = true): Promise<Run> {
  const serialFile = path.join(tmp, `${label}.serial`);
  const statsFile = path.join(tmp, `${label}.json`);
  // The CD first (its kernel messages come at deterministic times), then the transfer,
  // whose timing depends on the host: after it, only checksums and counts are printed.
  const command = [
    'echo 0 > /sys/class/graphics/fbcon/cursor_blink',
    'mkdir -p /mnt && mount -t iso9660 -o ro /dev/sr0 /mnt && sha256sum /mnt/*/*',
    'dd if=/dev/sr0 bs=64k 2>/dev/null | sha256sum',
    'udhcpc -i eth0 -q',
    `wget -q -O - http://10.0.2.2:${port}/blob | sha256sum`,
    'echo IDE-ERRORS $(dmesg | grep -ci error)',
    'echo END-$((6*7))',
  ].join('; ');
  const p = startTrapdoor([
    '--image', 'tiny-linux', '--cdrom', ISO, ...(deterministic ? ['--deterministic'] : []), '-nic', 'user,restrict=on',
    '--serial', serialFile, '--stats', statsFile, '--screen-hash', ...extra,
    '--until', 'TRAPDOOR GUEST READY', '--send', `${command}\\n`, '--until', 'END-42', '--timeout', String(RUN_SECONDS),
  ]);
  running.push(p);
  const code = await p.exit;
  const output = p.output();
  const stats = fs.existsSync(statsFile) ? JSON.parse(fs.readFileSync(statsFile, 'utf8')) as Run['stats'] : { devices: [], network: { nics: [] } };
  return { code, output, serial: fs.readFileSync(serialFile, 'latin1'), screen: /trapdoor: (screen .*)/.exec(output)?.[1] ?? '', stats };
}

describe.skipIf(!have)(`tiny-linux reading its CD and ${MIB} MiB over TCP, the NE2000, IDE and VGA switched every 20 ms`, () => {
  it('gives the same serial output and the same final screen as the run without switching', { timeout: 2 * RUN_SECONDS * 1000 + 60_000 }, async () => {
    const plain = await run('plain', []);
    expect(plain.code, plain.output.slice(-3000)).toBe(0);
    const switched = await run('switched', ['--switch-every', `20ms=${SWITCHED.join(',')}`]);
    expect(switched.code, switched.output.slice(-3000)).toBe(0);

    // The run did what it says: the CD's kernel checksummed intact, the whole blob came.
    const kernelSum = sha256(fs.readFileSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage')));
    expect(plain.serial).toContain(`${kernelSum}  /mnt/boot/bzImage`);
    expect(plain.serial).toContain(`${sha256(fs.readFileSync(ISO))}  -`);
    expect(plain.serial).toContain(`${blobSha}  -`);
    expect(plain.serial).toMatch(/IDE-ERRORS 0\r?\n/);
    expect(plain.screen).toMatch(/^screen graphics \d+x\d+ sha256=[0-9a-f]{64}$/);

    expect(switched.serial).toBe(plain.serial);
    expect(switched.screen).toBe(plain.screen);

    for (const r of [plain, switched]) {
      const nic = r.stats.network.nics[0].counters;
      expect(Object.entries(nic).filter(([k, v]) => /^drop/.test(k) && v > 0)).toEqual([]);
    }
    const row = (r: Run, name: string) => r.stats.devices.find((d) => d.name === name)!;
    for (const name of SWITCHED) {
      expect(row(plain, name).traps, name).toBe(0);
      expect(row(plain, name).pathSwitches, name).toBe(0);
      expect(row(switched, name).traps, name).toBeGreaterThan(0);
      expect(row(switched, name).directAccesses, name).toBeGreaterThan(0);
      expect(row(switched, name).pathSwitches, name).toBeGreaterThan(50);
    }
  });

  it('in wall-clock mode too: the checksums match, no frame is dropped, no IDE error, each device answered on both paths', { timeout: RUN_SECONDS * 1000 + 60_000 }, async () => {
    // The same guest commands on the host's clock, as a user runs it: the output is not
    // compared byte for byte (the kernel's timestamps follow the host), what it says is.
    const r = await run('wall-clock', ['--switch-every', `20ms=${SWITCHED.join(',')}`], false);
    expect(r.code, r.output.slice(-3000)).toBe(0);
    const kernelSum = sha256(fs.readFileSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage')));
    expect(r.serial).toContain(`${kernelSum}  /mnt/boot/bzImage`);
    expect(r.serial).toContain(`${sha256(fs.readFileSync(ISO))}  -`);
    expect(r.serial).toContain(`${blobSha}  -`);
    expect(r.serial).toMatch(/IDE-ERRORS 0\r?\n/);
    const nic = r.stats.network.nics[0].counters;
    expect(Object.entries(nic).filter(([k, v]) => /^drop/.test(k) && v > 0)).toEqual([]);
    for (const name of SWITCHED) {
      const row = r.stats.devices.find((d) => d.name === name)!;
      expect(row.traps, name).toBeGreaterThan(0);
      expect(row.directAccesses, name).toBeGreaterThan(0);
      expect(row.pathSwitches, name).toBeGreaterThan(10);
    }
  });
});
