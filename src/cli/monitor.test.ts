/**
 * The monitor and the path flags: parsing (--do, --device-path, path= on a NIC), the
 * script running `do` steps in order with --until/--send, the Monitor against a real bus,
 * and the CLI end to end: tiny-linux with COM1 moved to the device model and back by
 * --do steps between --until matches.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from './args.ts';
import { Monitor, parseMonitorCommand } from './monitor.ts';
import { nicDevicePaths } from './net-args.ts';
import { Script } from './script.ts';
import { createTestBus } from '../emulator/bus/test-harness.ts';
import { DevicePaths } from '../emulator/bus/device-paths.ts';
import { Uart16550A } from '../emulator/devices/uart.ts';
import { uartSpec } from '../emulator/machine/switchable.ts';
import { inThreadDeviceModel } from '../worker/device-model.ts';
import { startProcess, TRAPDOOR } from './testing/process.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';

function usage(argv: string[]): string {
  try {
    parseArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`expected a usage error for ${argv.join(' ')}`);
}

describe('path flags', () => {
  it('--do steps join the script in order with --until and --send; --device-path collects NAME=PATH', () => {
    const o = parseArgs(['--until', 'login', '--do', 'device_path com1 emulated', '--send', 'x', '--do', 'info paths', '--device-path', 'com2=emulated', '--device-path', 'ne2k=direct']);
    expect(o.script.map((s) => s.kind)).toEqual(['until', 'do', 'send', 'do']);
    expect(o.script[1]).toEqual({ kind: 'do', command: 'device_path com1 emulated' });
    expect(o.devicePaths).toEqual([{ name: 'com2', path: 'emulated' }, { name: 'ne2k', path: 'direct' }]);
  });

  it('refuses malformed commands and paths in plain words', () => {
    expect(usage(['--do', 'device_path com1 sideways'])).toBe("--do: usage: device_path NAME emulated|direct (got 'device_path com1 sideways')");
    expect(usage(['--do', 'info registers'])).toBe("--do: info: what this monitor can show is 'info paths' (got 'info registers')");
    expect(usage(['--do', 'quit'])).toMatch(/^--do: unknown monitor command 'quit'/);
    expect(usage(['--device-path', 'com1'])).toBe("--device-path: expected NAME=emulated or NAME=direct (e.g. com1=emulated), got 'com1'");
    expect(usage(['-device', 'ne2k_pci,path=fast'])).toBe('--device: path=fast: expected emulated or direct');
  });

  it('path= on -device and -nic names the NIC as the machine does', () => {
    const flags = [
      { flag: 'nic' as const, value: 'user,path=emulated' },
      { flag: 'netdev' as const, value: 'user,id=n1' },
      { flag: 'device' as const, value: 'ne2k_pci,netdev=n1,path=direct' },
      { flag: 'device' as const, value: 'ne2k_isa,netdev=n1' },
    ];
    expect(nicDevicePaths(flags)).toEqual([{ name: 'ne2k', path: 'emulated' }, { name: 'ne2k1', path: 'direct' }]);
    expect(nicDevicePaths([])).toEqual([]);
  });

  it('parses the two commands', () => {
    expect(parseMonitorCommand('  device_path ne2k   emulated ').command).toEqual({ op: 'device_path', name: 'ne2k', path: 'emulated' });
    expect(parseMonitorCommand('info paths').command).toEqual({ op: 'info_paths' });
  });
});

describe('Script with do steps', () => {
  it('hands each command over when the script reaches it, after the --until before it matched', () => {
    const events: string[] = [];
    const steps = parseArgs(['--do', 'info paths', '--until', 'login:', '--do', 'device_path com1 emulated', '--send', 'root\\n', '--until', '#']).script;
    const s = new Script(steps, (t) => events.push(`send ${JSON.stringify(t)}`), (c) => events.push(`do ${c}`));
    s.start();
    expect(events).toEqual(['do info paths']);
    s.feed('welcome\nlog');
    expect(events).toEqual(['do info paths']);
    s.feed('in: ');
    expect(events).toEqual(['do info paths', 'do device_path com1 emulated', 'send "root\\n"']);
    expect(s.done).toBe(false);
    s.feed('# ');
    expect(s.done).toBe(true);
  });
});

describe('Monitor', () => {
  function rig() {
    const t = createTestBus();
    const paths = new DevicePaths(t.bus, inThreadDeviceModel);
    const uart = new Uart16550A({ name: 'com1', port: 0x3f8, irq: 4 });
    paths.register(uart, uartSpec({ name: 'com1', port: 0x3f8, irq: 4 }));
    t.attach(uart);
    const lines: string[] = [];
    return { t, paths, monitor: new Monitor(paths, (l) => lines.push(l)), lines };
  }

  it('queues commands and runs them in order at flush, with info paths in its stable format', () => {
    const { t, monitor, lines } = rig();
    t.in8(0x3fd);
    monitor.submit('info paths');
    monitor.submit('device_path com1 emulated');
    monitor.submit('info paths');
    expect(lines).toEqual([]);
    monitor.flush();
    t.in8(0x3fd);
    monitor.run('info paths');
    expect(lines.length).toBe(4);
    expect(lines[0]).toBe('paths: com1 direct traps=0 direct=1 buffered=0 rtt_median_us=0.0 rtt_p99_us=0.0 rtt_max_us=0.0');
    expect(lines[1]).toBe('monitor: com1 is emulated');
    expect(lines[2]).toBe('paths: com1 emulated traps=0 direct=1 buffered=0 rtt_median_us=0.0 rtt_p99_us=0.0 rtt_max_us=0.0');
    expect(lines[3]).toMatch(/^paths: com1 emulated traps=1 direct=1 buffered=0 rtt_median_us=\d+\.\d rtt_p99_us=\d+\.\d rtt_max_us=\d+\.\d$/);
  });

  it('answers bad commands and unknown devices with a message, never a throw', () => {
    const { monitor, lines } = rig();
    monitor.run('device_path vga emulated');
    monitor.run('frobnicate');
    expect(lines).toEqual([
      "monitor: device_path vga: no switchable device 'vga' (switchable: com1)",
      "monitor: unknown monitor command 'frobnicate' (commands: device_path NAME emulated|direct, info paths)",
    ]);
  });
});

const kernel = path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage');
describe.skipIf(!fs.existsSync(kernel))('the CLI', () => {
  it("runs --do 'device_path com1 emulated' and --do 'info paths' in order with --until", async () => {
    const p = startProcess(process.execPath, [
      TRAPDOOR, '--image', 'tiny-linux', '--deterministic', '-nic', 'none', '--timeout', '240',
      '--until', '# $', '--do', 'device_path com1 emulated', '--do', 'info paths',
      '--send', 'echo on-the-$((3*7))-path\\n', '--until', 'on-the-21-path', '--do', 'info paths',
      '--do', 'device_path com1 direct', '--send', 'echo back\\n', '--until', '\\nback', '--do', 'info paths',
    ]);
    try {
      expect(await p.exit).toBe(0);
    } finally {
      p.kill();
    }
    const out = p.output();
    const infos = [...out.matchAll(/paths: com1 (\w+) traps=(\d+) direct=(\d+)/g)].map((m) => ({ path: m[1], traps: Number(m[2]), direct: Number(m[3]) }));
    expect(out).toContain('monitor: com1 is emulated');
    expect(out).toContain('monitor: com1 is direct');
    expect(infos.map((i) => i.path)).toEqual(['emulated', 'emulated', 'direct']);
    // Switched after the shell prompt: no trap yet; the echo's characters trapped; back direct, traps stop.
    expect(infos[0].traps).toBe(0);
    expect(infos[1].traps).toBeGreaterThan(0);
    expect(infos[2].traps).toBe(infos[1].traps);
    expect(infos[2].direct).toBeGreaterThan(infos[1].direct);
  }, 300_000);
});
