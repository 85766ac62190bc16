/**
 * Test helper: a real process (the `trapdoor` CLI, qemu-system-i386, tcpdump) with its
 * output collected, waits for patterns with a time limit that names what was awaited,
 * and typing into its standard input (the guest's serial console).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout: the nearest folder above this module with bin/trapdoor.mjs (this file may run from its source or from a bundle in .build/). */
function findRepo(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'bin', 'trapdoor.mjs'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the checkout (bin/trapdoor.mjs) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

export const REPO = findRepo();
export const TRAPDOOR = path.join(REPO, 'bin', 'trapdoor.mjs');

export interface TestProcess {
  readonly child: ChildProcess;
  /** stdout and stderr as one text, in arrival order. */
  output(): string;
  /** Wait until the output after `from` (default: everything) matches; throws naming the pattern on timeout or exit. */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpExecArray>;
  send(text: string): void;
  readonly exit: Promise<number | null>;
  kill(): void;
}

export function startProcess(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): TestProcess {
  const child = spawn(command, args, { cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    text += b.toString('latin1');
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exited = false;
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    exited = true;
    for (const w of [...waiters]) w();
    resolve(code);
  }));
  child.stdin!.on('error', () => {});
  return {
    child,
    output: () => text,
    waitFor(pattern, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const re = new RegExp(pattern.source, pattern.flags.replace('g', ''));
          const m = re.exec(text.slice(from));
          if (m) {
            done();
            resolve(m);
          } else if (exited) {
            done();
            reject(new Error(`${path.basename(command)} exited before /${pattern.source}/ appeared; its output ended with:\n${text.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for /${pattern.source}/ from ${path.basename(command)}; its output ended with:\n${text.slice(-3000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    send(t) {
      child.stdin!.write(t);
    },
    exit,
    kill() {
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/** The trapdoor CLI with these arguments (run through its launcher, as `npx trapdoor` does). */
export function startTrapdoor(args: string[]): TestProcess {
  return startProcess(process.execPath, [TRAPDOOR, ...args]);
}
