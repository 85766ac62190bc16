import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { helpText, parseArgs, unescapeText, UsageError, FLAGS } from './args.ts';
import { Script } from './script.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-args-'));
const rom = path.join(tmp, 'bios.bin');
fs.writeFileSync(rom, new Uint8Array(128 * 1024));
const odd = path.join(tmp, 'odd.bin');
fs.writeFileSync(odd, new Uint8Array(1000));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function usage(argv: string[]): string {
  try {
    parseArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`expected a usage error for ${argv.join(' ')}`);
}

describe('trapdoor command line', () => {
  it('accepts QEMU spellings with one or two dashes and --flag=value', () => {
    const o = parseArgs(['-m', '64', '--bios', rom, '-kernel', rom, '--append=console=ttyS0 quiet', '--boot', 'dc']);
    expect(o.memoryMiB).toBe(64);
    expect(o.bios).toBe(rom);
    expect(o.kernel).toBe(rom);
    expect(o.append).toBe('console=ttyS0 quiet');
    expect(o.boot).toBe('dc');
    expect(parseArgs(['--mem', '1G']).memoryMiB).toBe(1024);
  });

  it('keeps --until and --send in the order given', () => {
    const o = parseArgs(['--image', 'tiny-linux', '--until', 'READY', '--send', 'uname -a\\n', '--until', 'Linux']);
    expect(o.script.map((s) => s.kind)).toEqual(['until', 'send', 'until']);
    expect(o.script[1]).toEqual({ kind: 'send', text: 'uname -a\n' });
  });

  it('names the problem for missing files, unknown flags and malformed values', () => {
    expect(usage(['--kernel', 'missing.bin'])).toBe('--kernel: no such file: missing.bin');
    expect(usage(['--frobnicate'])).toMatch(/unknown flag '--frobnicate'/);
    expect(usage(['-m', 'lots'])).toMatch(/--mem: expected a size/);
    expect(usage(['--boot', 'x', '--image', 'a'])).toMatch(/--boot: expected letters/);
    expect(usage(['--until', '('])).toMatch(/--until: not a valid regular expression/);
    expect(usage(['--timeout', '-3'])).toMatch(/--timeout: expected a positive number/);
    expect(usage(['--kernel'])).toMatch(/--kernel needs a value/);
    expect(usage(['--bios', odd])).toMatch(/multiple of 64 KiB/);
    expect(usage(['--initrd', rom])).toBe('--initrd needs --kernel');
    expect(usage(['--display', 'gtk'])).toMatch(/only 'none'/);
    expect(usage(['--kernel', tmp])).toMatch(/not a regular file/);
  });

  it('lists every flag in --help', () => {
    const text = helpText();
    for (const f of FLAGS) expect(text).toContain(`--${f.long}`);
  });

  it('understands the escapes of --send', () => {
    expect(unescapeText('a\\nb\\tc\\\\d\\x41\\r')).toBe('a\nb\tc\\dA\r');
  });
});

describe('the --until/--send script', () => {
  it('sends after each match and is done when the last --until matched', () => {
    const typed: string[] = [];
    const o = parseArgs(['--send', 'first\\n', '--until', 'READY', '--send', 'echo END-$((6*7))\\n', '--until', 'END-42']);
    const s = new Script(o.script, (t) => typed.push(t));
    s.start();
    expect(typed).toEqual(['first\n']);
    s.feed('booting...\nTRAPDOOR GUEST RE');
    expect(typed).toHaveLength(1);
    expect(s.waitingFor).toBe('READY');
    s.feed('ADY\n# ');
    expect(typed).toEqual(['first\n', 'echo END-$((6*7))\n']);
    expect(s.done).toBe(false);
    // The echo of the command itself does not match END-42; its output does.
    s.feed('echo END-$((6*7))\r\n');
    expect(s.done).toBe(false);
    s.feed('END-42\r\n');
    expect(s.done).toBe(true);
  });

  it('never counts as done without an --until', () => {
    const s = new Script([{ kind: 'send', text: 'x' }], () => {});
    s.start();
    expect(s.done).toBe(false);
  });
});
