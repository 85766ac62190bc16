/**
 * The monitor: commands a user (or a `--do` step) gives the running machine, as QEMU's
 * human monitor takes them. Commands are queued as the script reaches them and run at the
 * next instruction boundary (between CPU turns), in order:
 *
 *   device_path NAME emulated|direct   move a switchable device to that path
 *   info paths                         each switchable device's path and figures
 *
 * `info paths` prints one line per device, fields separated by single spaces:
 *   paths: NAME PATH traps=N direct=N buffered=N rtt_median_us=X rtt_p99_us=X rtt_max_us=X
 * (round-trip figures are upper edges of the histogram bucket, in µs with one decimal).
 */
import { isDevicePath, type DevicePath, type DevicePaths } from '../emulator/bus/device-paths.ts';

export type MonitorCommand = { op: 'device_path'; name: string; path: DevicePath } | { op: 'info_paths' };

/** Parse one command line; `error` says in plain words what is wrong with it. */
export function parseMonitorCommand(raw: string): { command?: MonitorCommand; error?: string } {
  const words = raw.trim().split(/\s+/);
  if (words[0] === 'device_path') {
    if (words.length !== 3 || !isDevicePath(words[2])) return { error: `usage: device_path NAME emulated|direct (got '${raw}')` };
    return { command: { op: 'device_path', name: words[1], path: words[2] } };
  }
  if (words[0] === 'info') {
    if (words.length === 2 && words[1] === 'paths') return { command: { op: 'info_paths' } };
    return { error: `info: what this monitor can show is 'info paths' (got '${raw}')` };
  }
  return { error: `unknown monitor command '${words[0] ?? ''}' (commands: device_path NAME emulated|direct, info paths)` };
}

export function formatPaths(paths: DevicePaths): string[] {
  const us = (ns: number) => (ns / 1000).toFixed(1);
  return paths.list().map((d) =>
    `paths: ${d.name} ${d.path} traps=${d.traps} direct=${d.directAccesses} buffered=${d.bufferedWrites} rtt_median_us=${us(d.rttMedianNs)} rtt_p99_us=${us(d.rtt99Ns)} rtt_max_us=${us(d.rttMaxNs)}${d.failed ? ` failed="${d.failed}"` : ''}`);
}

export class Monitor {
  private readonly queue: string[] = [];

  constructor(private readonly paths: DevicePaths, private readonly print: (line: string) => void) {}

  /** Take a command (from a --do step, possibly inside a CPU turn); it runs at flush(). */
  submit(command: string): void {
    this.queue.push(command);
  }

  get pending(): boolean {
    return this.queue.length > 0;
  }

  /** Run the queued commands, in order: only at an instruction boundary (between Machine.run calls). */
  flush(): void {
    for (const raw of this.queue.splice(0)) this.run(raw);
  }

  /** Run one command now (at an instruction boundary). A bad one is answered with a message, never thrown. */
  run(raw: string): void {
    const { command, error } = parseMonitorCommand(raw);
    if (!command) {
      this.print(`monitor: ${error}`);
      return;
    }
    if (command.op === 'info_paths') {
      for (const line of formatPaths(this.paths)) this.print(line);
      return;
    }
    try {
      this.paths.switchNow(command.name, command.path);
      this.print(`monitor: ${command.name} is ${command.path}`);
    } catch (e) {
      this.print(`monitor: device_path ${command.name}: ${(e as Error).message}`);
    }
  }
}
