/**
 * Every published image boots to its ready marker in Debian's qemu-system-i386 (TCG):
 * then a later failure in Trapdoor is the emulator's, not the image's.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
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

function bootInQemu(image: ImageEntry, bios: string): Promise<string> {
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
  if (b.boot) args.push('-boot', b.boot);
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

describe.skipIf(skip)('guest images boot in QEMU', () => {
  const manifestFile = path.join(PUBLISH_DIR, 'manifest.json');

  it('are published with a manifest whose files match their size and sha256', () => {
    expect(fs.existsSync(manifestFile), `no ${manifestFile}: run 'npm run images'`).toBe(true);
    const m = readManifest(PUBLISH_DIR);
    for (const name of ['firmware', 'tiny-linux', 'tiny-linux-iso', 'debian-686', 'memtest']) {
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
