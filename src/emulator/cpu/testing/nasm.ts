/**
 * Assemble test programs with nasm (a Debian package scripts/setup.sh installs) at test
 * time, so CPU tests read as assembly rather than as byte arrays.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export function nasmAvailable(): boolean {
  return spawnSync('nasm', ['-v']).status === 0;
}

/**
 * Assemble `source` as a flat binary (`-f bin`); throws with nasm's messages on error.
 * `includeDir` is where its %include files are (assembleFile passes the file's folder).
 */
export function assemble(source: string, includeDir?: string): Uint8Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-nasm-'));
  try {
    const src = path.join(dir, 'prog.asm');
    const out = path.join(dir, 'prog.bin');
    fs.writeFileSync(src, source);
    const include = includeDir === undefined ? [] : ['-I', includeDir + path.sep];
    const r = spawnSync('nasm', ['-f', 'bin', ...include, '-o', out, src], { encoding: 'utf8' });
    if (r.error) throw new Error(`nasm is not installed (apt-get install nasm): ${r.error.message}`);
    if (r.status !== 0) throw new Error(`nasm failed:\n${r.stderr}`);
    return new Uint8Array(fs.readFileSync(out));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Assemble a source file, its %include files looked up beside it. */
export function assembleFile(file: string | URL): Uint8Array {
  const p = file instanceof URL ? fileURLToPath(file) : file;
  return assemble(fs.readFileSync(p, 'utf8'), path.dirname(p));
}
