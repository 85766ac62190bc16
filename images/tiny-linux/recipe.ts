/**
 * tiny-linux: Linux 6.1 from Debian's linux-source, ARCH=i386 tinyconfig plus
 * config.fragment, with the busybox initramfs. The kernel tree and its object folder are
 * kept in the work folder, so a rebuild after a fragment change is incremental.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall, candidateVersion, changelogDate, enableI386, log, run } from '../lib.ts';
import { buildInitramfs, genInitCpio, initramfsInputs } from '../initramfs/initramfs.ts';
import type { Recipe, RecipeContext } from '../recipe.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FRAGMENT = path.join(HERE, 'config.fragment');
const SOURCE_TARBALL = '/usr/src/linux-source-6.1.tar.xz';
export const READY_MARKER = 'TRAPDOOR GUEST READY';

interface Option { name: string; value: 'y' | 'n' | string }

function parseFragment(text: string): Option[] {
  const out: Option[] = [];
  for (const line of text.split('\n')) {
    const off = /^# (CONFIG_\w+) is not set/.exec(line);
    if (off) { out.push({ name: off[1], value: 'n' }); continue; }
    const on = /^(CONFIG_\w+)=(.+)$/.exec(line.trim());
    if (on) out.push({ name: on[1], value: on[2] });
  }
  return out;
}

/** Unpack linux-source once per Debian version; returns the tree. */
export function linuxSource(ctx: RecipeContext): string {
  aptInstall(['linux-source-6.1']);
  const version = candidateVersion('linux-source-6.1');
  const dir = ctx.workDir(`linux-source-${version}`);
  const tree = path.join(dir, 'linux-source-6.1');
  if (!fs.existsSync(path.join(dir, '.unpacked'))) {
    log(`unpacking ${SOURCE_TARBALL}`);
    fs.rmSync(tree, { recursive: true, force: true });
    run('tar', ['-xf', SOURCE_TARBALL, '-C', dir]);
    fs.writeFileSync(path.join(dir, '.unpacked'), '');
  }
  return tree;
}

/**
 * The initramfs file in the image folder: an uncompressed cpio. Unpacking even LZ4 was
 * 11 M of the boot's 167 M instructions (LZ4_decompress_safe); the 2 MB archive is read
 * from the same place as the 3 MB kernel, so its size costs little, and gzip and LZ4
 * were measured before (config.fragment, CONFIG_RD_LZ4).
 */
export const INITRD = 'initramfs.cpio';

export const tinyLinux: Recipe = {
  name: 'tiny-linux',
  title: 'Tiny Linux 6.1',
  description: 'A small i686 Linux 6.1 built from Debian\'s linux-source with a busybox initramfs: prints TRAPDOOR GUEST READY, then a shell on the serial console. Network tools: udhcpc -i eth0 (sets address, route and resolv.conf), ip, ping, wget, nc, httpd -h /var/www, telnetd.',
  dependsOn: [],
  prepare() {
    aptInstall(['build-essential', 'bc', 'flex', 'bison', 'libelf-dev', 'libssl-dev', 'cpio', 'xz-utils', 'lz4', 'python3', 'kmod']);
    enableI386();
  },
  inputs() {
    return [
      fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'),
      fs.readFileSync(FRAGMENT, 'utf8'),
      ...initramfsInputs(),
      candidateVersion('linux-source-6.1'),
      candidateVersion('busybox-static:i386'),
    ];
  },
  build(out, ctx) {
    const src = linuxSource(ctx);
    const obj = ctx.workDir('tiny-linux-obj');
    // The kernel's version string (uname -v) is stamped with the source package's date, a
    // fixed user, host and build number, not this machine's clock and name, so the same
    // recipe builds the same bzImage anywhere (Documentation/kbuild/reproducible-builds.rst).
    const date = changelogDate('/usr/share/doc/linux-source-6.1/changelog.Debian.gz');
    const env = {
      KBUILD_BUILD_TIMESTAMP: date.toUTCString(), KBUILD_BUILD_USER: 'trapdoor', KBUILD_BUILD_HOST: 'trapdoor', KBUILD_BUILD_VERSION: '1',
    };
    const make = (...args: string[]) => run('make', ['-s', '-C', src, `O=${obj}`, 'ARCH=i386', ...args], { env });
    log('configuring: tinyconfig + config.fragment');
    make('tinyconfig');
    const wanted = parseFragment(fs.readFileSync(FRAGMENT, 'utf8'));
    // Some options only appear once their parents are on: apply and resolve twice.
    for (let pass = 0; pass < 2; pass++) {
      const args: string[] = ['--file', path.join(obj, '.config')];
      for (const o of wanted) {
        if (o.value === 'y') args.push('--enable', o.name.slice(7));
        else if (o.value === 'n') args.push('--disable', o.name.slice(7));
        else args.push('--set-val', o.name.slice(7), o.value);
      }
      run(path.join(src, 'scripts', 'config'), args);
      make('olddefconfig');
    }
    const config = fs.readFileSync(path.join(obj, '.config'), 'utf8');
    const lost = wanted.filter((o) =>
      o.value === 'n' ? new RegExp(`^${o.name}=`, 'm').test(config) : !config.includes(`\n${o.name}=${o.value}\n`),
    );
    if (lost.length > 0) {
      throw new Error(`olddefconfig dropped options of config.fragment (a dependency is missing): ${lost.map((o) => `${o.name}=${o.value}`).join(', ')}`);
    }
    log(`building bzImage with ${os.cpus().length} jobs (a few minutes the first time)`);
    make(`-j${os.cpus().length}`, 'bzImage');
    fs.copyFileSync(path.join(obj, 'arch', 'x86', 'boot', 'bzImage'), path.join(out, 'bzImage'));
    fs.copyFileSync(path.join(obj, '.config'), path.join(out, 'config'));

    log('making the initramfs');
    const work = ctx.workDir('tiny-linux-initramfs');
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    buildInitramfs({ work, genInitCpio: genInitCpio(src, work), out: path.join(out, INITRD), compression: 'none' });
  },
  output() {
    return {
      files: [
        { role: 'kernel', path: 'bzImage' },
        { role: 'initrd', path: INITRD },
        { role: 'other', path: 'config' },
      ],
      // console=ttyS0 last: /dev/console (the shell and the marker) is the serial port;
      // the kernel's messages go to the screen as well.
      boot: { kernel: 'bzImage', initrd: INITRD, append: 'console=tty0 console=ttyS0', memoryMiB: 128 },
      readyMarker: READY_MARKER,
    };
  },
};
