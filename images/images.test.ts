/**
 * Every published image boots to its ready marker in Debian's qemu-system-i386 (TCG):
 * then a later failure in Trapdoor is the emulator's, not the image's.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkManifest, findImage, type ImageEntry } from './manifest.ts';
import { readManifest } from './read-manifest.ts';
import { PUBLISH_DIR } from './paths.ts';

const skip = process.env.TRAPDOOR_SKIP_IMAGE_CHECK === '1';
const QEMU = 'qemu-system-i386';
const BOOT_TIMEOUT_MS = 120_000;

/** The 80x25 VGA text screen as text (character bytes of the B8000 buffer). */
function textScreen(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const ch = bytes[i];
    out += ch >= 32 && ch < 127 ? String.fromCharCode(ch) : ' ';
    if ((i / 2) % 80 === 79) out += '\n';
  }
  return out;
}

/**
 * QEMU's user network, restricted (no packet leaves it: only its own DHCP, TFTP and the
 * host forwards given), with the Ne2000 PCI the guests drive. `rom` is the NIC's option
 * ROM ('' for none, so SeaBIOS runs no PXE unless a test asks for it).
 */
function nicArgs(o: { tftp?: string; bootfile?: string; hostfwd?: string[]; rom?: string } = {}): string[] {
  const netdev = ['user', 'id=n', 'restrict=on'];
  if (o.tftp) netdev.push(`tftp=${o.tftp}`);
  if (o.bootfile) netdev.push(`bootfile=${o.bootfile}`);
  for (const f of o.hostfwd ?? []) netdev.push(`hostfwd=${f}`);
  return ['-netdev', netdev.join(','), '-device', `ne2k_pci,netdev=n,romfile=${o.rom ?? ''}`];
}

function bootInQemu(image: ImageEntry, bios: string, extra: { nic?: string[]; boot?: string } = {}): Promise<string> {
  const b = image.boot;
  const at = (p: string) => path.join(PUBLISH_DIR, p);
  const onScreen = image.markerOn === 'screen';
  const args = ['-M', 'pc', '-accel', 'tcg', '-cpu', 'pentium3', '-m', String(b.memoryMiB ?? 128), '-no-reboot', '-bios', bios];
  // Serial markers: serial on stdout. Screen markers: the monitor on stdin/stdout dumps
  // the VGA text buffer (pmemsave) once a second.
  if (onScreen) args.push('-display', 'none', '-serial', 'null', '-monitor', 'stdio');
  else args.push('-nographic', '-monitor', 'none', '-serial', 'stdio');
  if (b.kernel) args.push('-kernel', at(b.kernel));
  if (b.initrd) args.push('-initrd', at(b.initrd));
  if (b.append) args.push('-append', b.append);
  if (b.cdrom) args.push('-cdrom', at(b.cdrom));
  if (b.fda) args.push('-drive', `file=${at(b.fda)},if=floppy,format=raw,readonly=on`);
  if (b.hda) args.push('-drive', `file=${at(b.hda)},if=ide,format=raw,snapshot=on`);
  const boot = extra.boot ?? b.boot;
  if (boot) args.push('-boot', boot);
  // A network-booting image gets its TFTP folder served, as its manifest entry says.
  args.push(...(extra.nic ?? nicArgs({ tftp: b.tftp && at(b.tftp), bootfile: b.bootfile })));
  const dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-vga-'));
  const dump = path.join(dumpDir, 'b8000.bin');
  return new Promise((resolve, reject) => {
    const qemu = spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let poll: NodeJS.Timeout | undefined;
    const finish = (error?: Error) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      qemu.kill('SIGKILL');
      fs.rmSync(dumpDir, { recursive: true, force: true });
      if (error) reject(error);
      else resolve(out);
    };
    const timer = setTimeout(() => {
      finish(new Error(`${image.name}: no '${image.readyMarker}' within ${BOOT_TIMEOUT_MS / 1000} s; output ended with:\n${out.slice(-1500)}`));
    }, BOOT_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      if (!onScreen) out += d.toString('latin1');
      if (out.includes(image.readyMarker)) finish();
    };
    if (onScreen) {
      poll = setInterval(() => {
        if (fs.existsSync(dump)) {
          out = textScreen(fs.readFileSync(dump));
          if (out.includes(image.readyMarker)) return finish();
        }
        // The file name is quoted: the monitor would read '/' as division in an expression.
        qemu.stdin.write(`pmemsave 0xb8000 4000 "${dump}"\n`);
      }, 1000);
    }
    qemu.stdout.on('data', onData);
    qemu.stderr.on('data', onData);
    qemu.on('error', (e) => finish(e));
    qemu.on('exit', (code) => {
      if (!out.includes(image.readyMarker)) finish(new Error(`${image.name}: qemu exited (${code}) before '${image.readyMarker}':\n${out.slice(-1500)}`));
    });
  });
}

/**
 * A QEMU guest driven through its serial console: `run` types a command and waits for
 * the line a shell `echo` adds after it, so the result is what the command printed.
 */
class QemuConsole {
  private out = '';
  private seen = 0;
  private commands = 0;
  private exit: string | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly qemu: ChildProcessWithoutNullStreams;

  constructor(args: string[]) {
    this.qemu = spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const onData = (d: Buffer) => {
      this.out += d.toString('latin1').replace(/\r/g, '');
      this.waiters.forEach((w) => w());
    };
    this.qemu.stdout.on('data', onData);
    this.qemu.stderr.on('data', onData);
    this.qemu.on('exit', (code) => {
      this.exit = `qemu exited (${code})`;
      this.waiters.forEach((w) => w());
    });
  }

  /** The output from the end of the last match up to `pattern`'s match. */
  until(pattern: string, ms = BOOT_TIMEOUT_MS): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = this.out.indexOf(pattern, this.seen);
        if (at >= 0) {
          done();
          const text = this.out.slice(this.seen, at);
          this.seen = at + pattern.length;
          resolve(text);
        } else if (this.exit !== undefined) {
          done();
          reject(new Error(`${this.exit} before '${pattern}'; output ended with:\n${this.out.slice(-1500)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no '${pattern}' within ${ms / 1000} s; output ended with:\n${this.out.slice(-1500)}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Type `cmd` and return what it printed (the marker comes from shell arithmetic, so the echoed command line never matches it). */
  run(cmd: string, ms = 30_000): Promise<string> {
    const n = ++this.commands;
    this.qemu.stdin.write(`${cmd}; echo "@@$((${n}+1000))@@"\n`);
    return this.until(`@@${n + 1000}@@`, ms);
  }

  close(): void {
    this.qemu.kill('SIGKILL');
  }
}

/** `count` distinct free ports on the loopback (all held open together, so none repeats). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Boot a kernel image of the manifest with its serial console on a QemuConsole, on a restricted user network. */
function startGuest(name: string, hostfwd: string[] = []): { guest: QemuConsole; image: ImageEntry } {
  const m = readManifest(PUBLISH_DIR);
  const at = (p: string) => path.join(PUBLISH_DIR, p);
  const bios = at(findImage(m, 'firmware')!.files.find((f) => f.path.endsWith('/bios.bin'))!.path);
  const image = findImage(m, name);
  const b = image?.boot;
  if (!image || !b?.kernel || !b.initrd) throw new Error(`image ${name} is not published with a kernel and an initrd: run 'npm run images'`);
  const guest = new QemuConsole(['-M', 'pc', '-accel', 'tcg', '-cpu', 'pentium3', '-m', String(b.memoryMiB ?? 128), '-no-reboot',
    '-bios', bios, '-nographic', '-monitor', 'none', '-serial', 'stdio', '-kernel', at(b.kernel), '-initrd', at(b.initrd), '-append', b.append ?? '',
    ...nicArgs({ hostfwd })]);
  return { guest, image };
}

/**
 * Connect to a host forward, send `data` and half-close (with `data` null: send nothing
 * and close only after the guest has: busybox's nc exits as soon as its peer closes,
 * whatever it still had to send), and collect what comes back until the guest closes.
 */
function tcpExchange(port: number, data: Buffer | null): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => {
      if (data) socket.end(data);
    });
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no end from the guest on host port ${port} within 30 s`)));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Log in over telnet as root (empty password) and run one command; returns what the session printed. */
function telnetSession(port: number, cmd: string, expect: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    let state: 'login' | 'prompt' | 'command' = 'login';
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(30_000, () => socket.destroy(new Error(`telnet: stuck in state ${state}; got ${JSON.stringify(text.slice(-300))}`)));
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (state === 'login' && text.includes('login:')) {
        state = 'prompt';
        socket.write('root\r\n');
      } else if (state === 'prompt' && text.slice(text.indexOf('login:')).includes('# ')) {
        state = 'command';
        socket.write(`${cmd}\r\n`);
      } else if (state === 'command' && text.includes(expect)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`telnet: closed in state ${state}; got ${JSON.stringify(text.slice(-300))}`)));
  });
}

function httpGet(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', timeout: 30_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/**
 * The option ROM with its PCI data structure's vendor and device set to the RTL8029's:
 * Debian's pxe-ne2k_pci.rom carries 0000:0000 there (QEMU patches only its default ROMs,
 * not a romfile= given by name), and SeaBIOS runs a ROM only for the device it names.
 * The checksum is rebalanced in byte 6, the byte iPXE's ROM header keeps for it.
 */
function patchRomIds(rom: Buffer, vendor: number, device: number): Buffer {
  const out = Buffer.from(rom);
  const pcir = out.readUInt16LE(0x18);
  expect(out.toString('latin1', pcir, pcir + 4)).toBe('PCIR');
  out.writeUInt16LE(vendor, pcir + 4);
  out.writeUInt16LE(device, pcir + 6);
  const length = out[2] * 512;
  let sum = 0;
  for (let i = 0; i < length; i++) sum += out[i];
  out[6] = (out[6] - sum) & 0xff;
  return out;
}

describe.skipIf(skip)('guest images boot in QEMU', () => {
  const manifestFile = path.join(PUBLISH_DIR, 'manifest.json');

  it('are published with a manifest whose files match their size and sha256', () => {
    expect(fs.existsSync(manifestFile), `no ${manifestFile}: run 'npm run images'`).toBe(true);
    const m = readManifest(PUBLISH_DIR);
    for (const name of ['firmware', 'tiny-linux', 'tiny-linux-iso', 'debian-686', 'memtest', 'ipxe']) {
      expect(findImage(m, name), `image ${name}`).toBeDefined();
    }
    for (const image of m.images) {
      for (const f of image.files) {
        const file = path.join(PUBLISH_DIR, f.path);
        const bytes = fs.readFileSync(file);
        expect(bytes.length, f.path).toBe(f.size);
        const hash = spawnSync('sha256sum', [file], { encoding: 'utf8' }).stdout.split(' ')[0];
        expect(hash, f.path).toBe(f.sha256);
      }
    }
  });

  it(`reach their ready marker in ${QEMU}`, { timeout: 10 * BOOT_TIMEOUT_MS }, async () => {
    expect(spawnSync(QEMU, ['--version']).status, `${QEMU} is missing: apt-get install qemu-system-x86`).toBe(0);
    const m = readManifest(PUBLISH_DIR);
    const fw = findImage(m, 'firmware')!;
    const bios = path.join(PUBLISH_DIR, fw.files.find((f) => f.path.endsWith('/bios.bin'))!.path);
    const bootable = m.images.filter((i) => i.readyMarker !== '');
    expect(bootable.length).toBeGreaterThanOrEqual(4);
    for (const image of bootable) {
      const started = Date.now();
      const out = await bootInQemu(image, bios);
      expect(out).toContain(image.readyMarker);
      process.stdout.write(`  ${image.name}: '${image.readyMarker}' after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
  });

  it('tiny-linux has its network tools: udhcpc and its script, ip, ping, wget, nc (-l, -p, -e), httpd, telnetd, dd, sha256sum', { timeout: 3 * BOOT_TIMEOUT_MS }, async () => {
    const [ncPort, httpPort, telnetPort] = await freePorts(3);
    const { guest, image: linux } = startGuest('tiny-linux', [`tcp:127.0.0.1:${ncPort}-:5000`, `tcp:127.0.0.1:${httpPort}-:80`, `tcp:127.0.0.1:${telnetPort}-:23`]);
    try {
      await guest.until(linux.readyMarker);
      const tools = ['udhcpc', 'ip', 'ifconfig', 'ping', 'wget', 'nc', 'httpd', 'telnetd', 'sha256sum', 'dd'];
      expect(await guest.run(`for t in ${tools.join(' ')}; do command -v $t >/dev/null || echo "no-such-tool-$t"; done`)).not.toMatch(/no-such-tool-[a-z]/);
      // /init brought lo up; names resolve through /etc/hosts (glibc's static NSS).
      const lo = await guest.run('ip addr show lo');
      expect(lo).toContain('LOOPBACK,UP');
      expect(lo).toContain('inet 127.0.0.1/8');
      expect(await guest.run('ping -c 1 localhost')).toContain('1 packets received');
      expect(await guest.run('id')).toContain('uid=0(root)');

      // The lease from QEMU's DHCP, set by /usr/share/udhcpc/default.script.
      const dhcp = await guest.run('udhcpc -i eth0 -q && ip addr show eth0', 60_000);
      expect(dhcp).toContain('lease of 10.0.2.15 obtained');
      expect(dhcp).toMatch(/inet 10\.0\.2\.15\/24 brd 10\.0\.2\.255/);
      expect(await guest.run('ping -c 1 10.0.2.2')).toContain('1 packets received');
      // A restricted QEMU network names no router or DNS server: the script's route and
      // resolv.conf are checked by running it as udhcpc would for a full lease.
      await guest.run('interface=eth0 ip=10.0.2.15 subnet=255.255.255.0 mask=24 router="10.0.2.2 10.0.2.9" dns="10.0.2.3 10.0.2.4" domain=example.test /etc/udhcpc/default.script bound');
      const routes = await guest.run('ip route');
      expect(routes).toContain('default via 10.0.2.2 dev eth0');
      expect(routes).not.toContain('10.0.2.9');
      expect(await guest.run('cat /etc/resolv.conf')).toMatch(/search example\.test\nnameserver 10\.0\.2\.3\nnameserver 10\.0\.2\.4\n/);

      // httpd serves /var/www, to the guest's own wget and to the host through hostfwd.
      expect(await guest.run('httpd -h /var/www && wget -q -O - http://localhost/')).toContain('Hello from a Trapdoor guest');
      const page = await httpGet(httpPort);
      expect(page.status).toBe(200);
      expect(page.body).toContain('Hello from a Trapdoor guest');

      // nc -l -p with -e: the guest's sha256sum reads what the host sends and answers its digest.
      const blob = crypto.randomBytes(64 * 1024);
      await guest.run('nc -l -p 5000 -e sha256sum & sleep 1');
      const digest = (await tcpExchange(ncPort, blob)).toString('latin1');
      expect(digest.split(/\s/)[0]).toBe(crypto.createHash('sha256').update(blob).digest('hex'));
      // ... and the other way: dd makes a file, nc serves it, the host reads the same bytes.
      const made = await guest.run('dd if=/dev/urandom of=/tmp/r bs=1024 count=64 2>/dev/null && sha256sum /tmp/r');
      const guestHash = /([0-9a-f]{64}) {2}\/tmp\/r/.exec(made)?.[1];
      expect(guestHash, made).toBeDefined();
      await guest.run('nc -l -p 5000 < /tmp/r & sleep 1');
      const got = await tcpExchange(ncPort, null);
      expect(got.length).toBe(64 * 1024);
      expect(crypto.createHash('sha256').update(got).digest('hex')).toBe(guestHash);

      // telnetd's login lets root in without a password (etc/passwd, etc/shadow).
      // telnetd returns before its child listens: a connection at once was refused.
      await guest.run('telnetd && sleep 1');
      expect(await telnetSession(telnetPort, 'echo "telnet-$((6*7))"', 'telnet-42')).toContain('telnet-42');
    } finally {
      guest.close();
    }
  });

  it('debian-686 gets a lease through its own ne2k-pci module and resolves names', { timeout: 2 * BOOT_TIMEOUT_MS }, async () => {
    const { guest, image } = startGuest('debian-686');
    try {
      await guest.until(image.readyMarker);
      expect(await guest.run('cat /proc/modules')).toMatch(/^ne2k_pci /m);
      const dhcp = await guest.run('udhcpc -i eth0 -q && ip addr show eth0', 60_000);
      expect(dhcp).toMatch(/inet 10\.0\.2\.15\/24 brd 10\.0\.2\.255/);
      expect(await guest.run('ping -c 1 10.0.2.2')).toContain('1 packets received');
      expect(await guest.run('ping -c 1 localhost')).toContain('1 packets received');
    } finally {
      guest.close();
    }
  });

  it("boots the ipxe image's TFTP folder with -boot n through the firmware's pxe-ne2k_pci.rom (its PCI IDs patched)", { timeout: BOOT_TIMEOUT_MS + 10_000 }, async () => {
    const m = readManifest(PUBLISH_DIR);
    const fw = findImage(m, 'firmware')!;
    const image = findImage(m, 'ipxe')!;
    const at = (p: string) => path.join(PUBLISH_DIR, p);
    const bios = at(fw.files.find((f) => f.path.endsWith('/bios.bin'))!.path);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-rom-'));
    try {
      const rom = path.join(dir, 'pxe-ne2k_pci.rom');
      fs.writeFileSync(rom, patchRomIds(fs.readFileSync(at(fw.files.find((f) => f.path.endsWith('/pxe-ne2k_pci.rom'))!.path)), 0x10ec, 0x8029));
      // The same entry without its kernel: SeaBIOS finds nothing else and boots the NIC's ROM.
      const pxe: ImageEntry = { ...image, boot: { memoryMiB: image.boot.memoryMiB } };
      const out = await bootInQemu(pxe, bios, { boot: 'n', nic: nicArgs({ tftp: at(image.boot.tftp!), bootfile: image.boot.bootfile, rom }) });
      expect(out).toContain('boot.ipxe');
      expect(out).toContain(image.readyMarker);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('images manifest helpers', () => {
  it('find an image by name and reject malformed manifests in plain words', () => {
    const m = checkManifest({ version: 1, generated: '', images: [{ name: 'a', title: 'A', description: '', files: [], boot: {}, readyMarker: '' }] });
    expect(findImage(m, 'a')?.title).toBe('A');
    expect(findImage(m, 'b')).toBeUndefined();
    expect(() => checkManifest({ images: 3 })).toThrow(/unknown format/);
    expect(() => checkManifest({ version: 1, images: [{ title: 'x' }] })).toThrow(/malformed entry/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-manifest-'));
    expect(() => readManifest(dir)).toThrow(/no images manifest/);
    fs.writeFileSync(path.join(dir, 'manifest.json'), '{ not json');
    expect(() => readManifest(dir)).toThrow(/not valid JSON/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
