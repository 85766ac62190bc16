/**
 * The busybox initramfs of the Linux guests, made without root: the kernel tree's
 * gen_init_cpio reads a text list (directories, files, device nodes, symlinks) and
 * writes the cpio; gzip -9 -n makes it reproducible.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptDownloadExtract, capture, changelogDate, run } from '../lib.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const INIT_SCRIPT = path.join(HERE, 'init');
/** Files copied into the guest's root as they are (etc/, the udhcpc script, var/www). */
export const ROOTFS = path.join(HERE, 'rootfs');

/**
 * Applets a user reaches for first on a network (and the ones the tests type): the build
 * fails naming any that a new busybox-static left out, rather than a guest that says
 * 'not found' later.
 */
export const REQUIRED_APPLETS = [
  'sh', 'mount', 'insmod', 'setsid', 'cttyhack', 'hostname',
  'udhcpc', 'ip', 'ifconfig', 'route', 'ping', 'wget', 'nc', 'httpd', 'telnetd', 'login', 'nslookup',
  'sha256sum', 'md5sum', 'dd', 'cmp', 'head', 'seq',
] as const;

/**
 * Modes of the rootfs files that are not 0644. etc/passwd has root's password as 'x' and
 * the empty one in etc/shadow: busybox's own passwd reader skips a line whose password
 * field is empty (uid 0 then had no name), and login lets root in without a password.
 */
const MODES: Record<string, string> = { 'usr/share/udhcpc/default.script': '0755', 'etc/shadow': '0600' };

/** Every file under ROOTFS, relative, in a stable order. */
function rootfsFiles(dir = ROOTFS, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...rootfsFiles(path.join(dir, e.name), r));
    else out.push(r);
  }
  return out;
}

/**
 * What the initramfs depends on among this folder's files, as strings for a recipe's
 * `inputs()` (so editing /init, a rootfs file or this builder rebuilds the images).
 */
export function initramfsInputs(): string[] {
  return [
    fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'),
    fs.readFileSync(INIT_SCRIPT, 'utf8'),
    ...rootfsFiles().map((f) => `${f}\n${fs.readFileSync(path.join(ROOTFS, f), 'utf8')}`),
  ];
}

/** Compile the kernel tree's usr/gen_init_cpio.c into `dir` (once). */
export function genInitCpio(linuxSrc: string, dir: string): string {
  const tool = path.join(dir, 'gen_init_cpio');
  if (!fs.existsSync(tool)) run('gcc', ['-O2', '-o', tool, path.join(linuxSrc, 'usr', 'gen_init_cpio.c')]);
  return tool;
}

export interface InitramfsOptions {
  /** Folder for downloads and the cpio list. */
  work: string;
  genInitCpio: string;
  /** Kernel modules to copy into /lib/modules and load in this order. */
  modules?: string[];
  /** Output file (.cpio.gz, .cpio.lz4 with compression 'lz4', .cpio with 'none'). */
  out: string;
  /**
   * gzip (default) for any kernel; lz4 (legacy frame, `lz4 -l`, the format the kernel's
   * initramfs unpacker reads) unpacks several times faster in the guest, which matters on
   * an interpreted CPU (the kernel needs CONFIG_RD_LZ4); none costs the guest nothing to
   * unpack but is about twice the size of lz4.
   */
  compression?: 'gzip' | 'lz4' | 'none';
}

/**
 * Where each applet of the guest's busybox belongs (`busybox --list-full`: bin/sh,
 * sbin/init, ...). The i386 binary answers if this x86-64 host can run it; a kernel built
 * without IA32 emulation (a Firecracker VM's, for one) cannot, and then the host's own
 * busybox-static answers for it: the same Debian version is built from one configuration
 * for every architecture, so the lists are the same (the versions are checked).
 */
function appletPaths(bbRoot: string, hostDir: string): string[] {
  const list = (root: string) => capture(path.join(root, 'bin', 'busybox'), ['--list-full']).split('\n').map((s) => s.trim()).filter(Boolean);
  try {
    return list(bbRoot);
  } catch (e) {
    const i386 = busyboxVersion(path.dirname(bbRoot));
    const hostRoot = aptDownloadExtract('busybox-static', hostDir);
    const host = busyboxVersion(path.dirname(hostRoot));
    if (host !== i386) throw new Error(`the i386 busybox cannot run here (${e instanceof Error ? e.message.split('\n')[0] : String(e)}) and the host's busybox-static is another version (${host}, not ${i386})`, { cause: e });
    return list(hostRoot);
  }
}

/** The Version field of the one busybox-static .deb aptDownloadExtract left in `dir`. */
function busyboxVersion(dir: string): string {
  const deb = fs.readdirSync(dir).find((f) => /^busybox-static_.*\.deb$/.test(f));
  if (!deb) throw new Error(`no busybox-static .deb in ${dir}`);
  return capture('dpkg-deb', ['-f', path.join(dir, deb), 'Version']).trim();
}

export function buildInitramfs(o: InitramfsOptions): void {
  const bbRoot = aptDownloadExtract('busybox-static:i386', path.join(o.work, 'busybox'));
  const busybox = path.join(bbRoot, 'bin', 'busybox');
  if (!fs.existsSync(busybox)) throw new Error('busybox-static:i386 has no bin/busybox');
  const applets = appletPaths(bbRoot, path.join(o.work, 'busybox-host'));
  const names = new Set(applets.map((a) => path.basename(a)));
  const missing = REQUIRED_APPLETS.filter((a) => !names.has(a));
  if (missing.length > 0) {
    throw new Error(`busybox-static:i386 lacks the applets ${missing.join(', ')} that the guests need (busybox --list-full has ${names.size} applets)`);
  }
  // Every entry is dated when the busybox package was made (gen_init_cpio -t for the
  // directories, nodes and links; the files' own times for files: the packaged ones keep
  // theirs, the two written here are given it): the same inputs make the same archive.
  const epoch = Math.floor(changelogDate(path.join(bbRoot, 'usr', 'share', 'doc', 'busybox-static', 'changelog.Debian.gz')).getTime() / 1000);
  const init = path.join(o.work, 'init');
  fs.copyFileSync(INIT_SCRIPT, init);
  fs.utimesSync(init, epoch, epoch);

  const lines = [
    'dir /bin 0755 0 0', 'dir /sbin 0755 0 0', 'dir /usr 0755 0 0', 'dir /usr/bin 0755 0 0', 'dir /usr/sbin 0755 0 0',
    'dir /dev 0755 0 0', 'dir /proc 0755 0 0', 'dir /sys 0755 0 0', 'dir /tmp 1777 0 0', 'dir /etc 0755 0 0',
    'dir /root 0700 0 0', 'dir /lib 0755 0 0', 'dir /lib/modules 0755 0 0',
    'dir /var 0755 0 0', 'dir /var/run 0755 0 0', 'dir /var/log 0755 0 0',
    // The kernel opens /dev/console before devtmpfs is mounted.
    'nod /dev/console 0600 0 0 c 5 1', 'nod /dev/null 0666 0 0 c 1 3',
    `file /bin/busybox ${busybox} 0755 0 0`,
    `file /init ${init} 0755 0 0`,
  ];
  for (const a of applets) {
    const p = a.startsWith('/') ? a : `/${a}`;
    if (p === '/bin/busybox') continue;
    lines.push(`slink ${p} /bin/busybox 0777 0 0`);
  }
  // The rootfs files, each dated like the rest; their folders first (gen_init_cpio
  // needs a parent before its child).
  const dirs = new Set(['/bin', '/sbin', '/usr', '/usr/bin', '/usr/sbin', '/etc', '/var', '/var/run', '/var/log', '/lib', '/root', '/tmp', '/dev', '/proc', '/sys']);
  const staged = path.join(o.work, 'rootfs');
  for (const f of rootfsFiles()) {
    const parts = f.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = `/${parts.slice(0, i).join('/')}`;
      if (!dirs.has(d)) {
        dirs.add(d);
        lines.push(`dir ${d} 0755 0 0`);
      }
    }
    const copyOf = path.join(staged, f);
    fs.mkdirSync(path.dirname(copyOf), { recursive: true });
    fs.copyFileSync(path.join(ROOTFS, f), copyOf);
    fs.utimesSync(copyOf, epoch, epoch);
    lines.push(`file /${f} ${copyOf} ${MODES[f] ?? '0644'} 0 0`);
  }
  // Debian's busybox runs /etc/udhcpc/default.script unless told otherwise (-s).
  lines.push('dir /etc/udhcpc 0755 0 0', 'slink /etc/udhcpc/default.script /usr/share/udhcpc/default.script 0777 0 0');
  const modules = o.modules ?? [];
  for (const m of modules) lines.push(`file /lib/modules/${path.basename(m)} ${m} 0644 0 0`);
  if (modules.length > 0) {
    const list = path.join(o.work, 'modules');
    fs.writeFileSync(list, modules.map((m) => path.basename(m)).join('\n') + '\n');
    fs.utimesSync(list, epoch, epoch);
    lines.push(`file /etc/modules ${list} 0644 0 0`);
  }
  const listFile = path.join(o.work, 'initramfs.list');
  fs.writeFileSync(listFile, lines.join('\n') + '\n');
  const cpio = path.join(o.work, 'initramfs.cpio');
  // Both compressors are deterministic for the same input (gzip -n leaves out name and time).
  const compress = o.compression === 'none' ? `cp "${cpio}" "${o.out}"`
    : o.compression === 'lz4' ? `lz4 -l -9 -c "${cpio}" > "${o.out}"` : `gzip -9 -n -c "${cpio}" > "${o.out}"`;
  run('sh', ['-c', `"${o.genInitCpio}" -t ${epoch} "${listFile}" > "${cpio}" && ${compress}`]);
}
