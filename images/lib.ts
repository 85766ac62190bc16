/**
 * What the image recipes share: running tools, installing and downloading Debian
 * packages, hashing, and the cache under ~/.cache/trapdoor/images.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

export const CACHE_ROOT = path.join(process.env.TRAPDOOR_CACHE ?? path.join(os.homedir(), '.cache', 'trapdoor'), 'images');

export function log(message: string): void {
  process.stdout.write(`images: ${message}\n`);
}

/** Run a command; its output goes to the console unless `quiet`. Throws with the tail of stderr on failure. */
export function run(cmd: string, args: string[], opts: { cwd?: string; quiet?: boolean; env?: NodeJS.ProcessEnv } = {}): void {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: opts.quiet ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = opts.quiet ? `\n${String(r.stderr ?? '').slice(-2000)}` : '';
    throw new Error(`${cmd} ${args.join(' ').slice(0, 200)} failed with status ${r.status}${tail}`);
  }
}

/** Run a command and return its standard output. */
export function capture(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

function installed(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

let aptUpdated = false;
function aptUpdate(): void {
  if (aptUpdated) return;
  aptUpdated = true;
  // The i386 index of bookworm-security sometimes fails ("unexpected size"); main still works.
  const r = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) log('apt-get update reported errors; continuing with the indexes it did fetch');
}

/** Install Debian packages that are not installed yet (the recipes run as root). */
export function aptInstall(pkgs: string[]): void {
  const missing = pkgs.filter((p) => !installed(p));
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')}`);
  aptUpdate();
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
}

/** Make sure i386 packages can be downloaded (busybox-static:i386, linux-image-686:i386). */
export function enableI386(): void {
  const archs = capture('dpkg', ['--print-foreign-architectures']);
  if (!archs.split('\n').includes('i386')) {
    log('adding the i386 architecture to dpkg');
    run('dpkg', ['--add-architecture', 'i386']);
    aptUpdated = false;
  }
  // apt-cache knows i386 packages only after an update that saw the architecture.
  const r = spawnSync('apt-cache', ['show', 'busybox-static:i386'], { stdio: 'ignore' });
  if (r.status !== 0) aptUpdate();
}

/** The version apt would download for `pkg` (e.g. "busybox-static:i386"). */
export function candidateVersion(pkg: string): string {
  const out = capture('apt-cache', ['policy', pkg]);
  const m = /Candidate:\s*(\S+)/.exec(out);
  if (!m || m[1] === '(none)') {
    aptUpdate();
    const again = /Candidate:\s*(\S+)/.exec(capture('apt-cache', ['policy', pkg]));
    if (!again || again[1] === '(none)') throw new Error(`Debian package ${pkg} is not available (apt-cache policy has no candidate)`);
    return again[1];
  }
  return m[1];
}

/** The packages `pkg` depends on, as apt-cache reports them (first alternative of each). */
export function depends(pkg: string): string[] {
  const out = capture('apt-cache', ['depends', pkg]);
  return [...out.matchAll(/^\s+Depends:\s*(\S+)/gm)].map((m) => m[1]);
}

/** `apt-get download` a package into `dir` and unpack it into `dir/root`; returns the unpacked root. */
export function aptDownloadExtract(pkg: string, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const before = new Set(fs.readdirSync(dir));
  run('apt-get', ['download', '-qq', pkg], { cwd: dir, quiet: true });
  const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb') && !before.has(f));
  if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
  const root = path.join(dir, 'root');
  fs.mkdirSync(root, { recursive: true });
  run('dpkg-deb', ['-x', path.join(dir, deb), root]);
  return root;
}

/**
 * When a Debian package was made: the date of the newest entry of its changelog
 * (`changelog.Debian.gz` under usr/share/doc), as reproducible-builds.org's
 * SOURCE_DATE_EPOCH has it. A build stamped with this date rather than the clock's
 * gives the same bytes from the same recipe on any machine, any day.
 */
export function changelogDate(changelog: string): Date {
  const text = zlib.gunzipSync(fs.readFileSync(changelog)).toString('utf8');
  const signature = /^ -- .*?> {2}(.+)$/m.exec(text);
  const date = signature ? new Date(signature[1]) : null;
  if (!date || Number.isNaN(date.getTime())) throw new Error(`no dated entry in ${changelog}`);
  return date;
}

export function sha256(data: crypto.BinaryLike): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function sha256File(file: string): string {
  return sha256(fs.readFileSync(file));
}

export function hashInputs(parts: string[]): string {
  return sha256(parts.join('\0')).slice(0, 16);
}

export function copy(src: string, dst: string): void {
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(src, dst);
}
