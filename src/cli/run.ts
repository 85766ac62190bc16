/**
 * Runs a MachineConfig headless: serial to stdout (or a file), stdin to COM1, the
 * --until/--send/--do script, --timeout, --stats, --debug-exit, and the devices' paths
 * (--device-path, path= on a NIC, --switch-every; the device-model worker is started only if one is asked for).
 */
import * as fs from 'node:fs';
import { UsageError, withMachineOptions, type CliOptions } from './args.ts';
import type { MachineConfig } from '../emulator/machine/config.ts';
import { createMachine, type Machine } from '../emulator/machine/machine.ts';
import { Script } from './script.ts';
import { nodeHostNetwork } from './node-host-network.ts';
import { socketUplink, type SocketUplink } from './socket-uplink.ts';
import { folderTftpFiles } from './tftp-folder.ts';
import { PcapWriter } from '../emulator/net/pcap.ts';
import { Monitor, parseMonitorCommand } from './monitor.ts';
import { nicDevicePaths } from './net-args.ts';
import { nodeDeviceModelConnector } from '../worker/device-model-spawn.ts';
import type { DeviceModelConnector } from '../emulator/bus/device-paths.ts';
import { bundle } from '../../bin/bundle.mjs';
import { nodeWebSocketFactory } from './ws-factory.ts';
import { formatScreenPicture, screenPicture } from './screen.ts';

/**
 * Instructions per turn of the event loop: long enough to be efficient, short enough that
 * what the host's sockets bring (a peer's frames, a server's bytes) waits little for the
 * next turn: with 2 M (40 ms at 50 MIPS) two guests on a socket LAN moved 0.22 MB/s, their
 * TCP waiting on ACKs held up a turn each way.
 */
const TURN = 500_000;

export async function runHeadless(given: MachineConfig, o: CliOptions): Promise<number> {
  const config = withMachineOptions(given, o);
  const serialOut = o.serial.kind === 'file' ? fs.openSync(o.serial.path, 'w') : o.serial.kind === 'stdio' ? 1 : -1;
  const debugconOut = o.debugcon === undefined ? -1 : o.debugcon.kind === 'stdio' ? 1 : fs.openSync(o.debugcon.path, 'w');
  const pendingInput: number[] = [];
  let exitCode: number | null = null;
  /** Monitor commands the script reached, run at the next instruction boundary. */
  const commands: string[] = [];
  const script = new Script(o.script, (text) => {
    for (const ch of text) pendingInput.push(ch.charCodeAt(0) & 0xff);
  }, (command) => commands.push(command));
  // The device-model worker's bundle is made now (it takes a moment) only if some device may go emulated.
  const initialPaths = [...o.devicePaths, ...nicDevicePaths(o.net)];
  const wantsModel = initialPaths.some((p) => p.path === 'emulated') || o.switchEvery !== undefined
    || o.script.some((s) => s.kind === 'do' && parseMonitorCommand(s.command).command?.op === 'device_path');
  const deviceModel: DeviceModelConnector | undefined = wantsModel ? nodeDeviceModelConnector(await bundle('src/worker/device-model-node.ts')) : undefined;
  const out = (fd: number, byte: number) => {
    if (fd >= 0) fs.writeSync(fd, Uint8Array.of(byte));
  };
  // Network events wake a run loop that sleeps through an idle guest.
  let wake: (() => void) | null = null;
  const onActivity = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const hostNetwork = nodeHostNetwork(onActivity);
  const logLine = (message: string) => process.stderr.write(`trapdoor: ${message}\n`);
  const machine: Machine = createMachine(config, {
    serial: (index, byte) => {
      if (index !== 0) return;
      out(serialOut, byte);
      script.feed(String.fromCharCode(byte));
    },
    debugcon: (byte) => {
      out(debugconOut, byte);
      script.feed(String.fromCharCode(byte));
    },
    debugExit: o.debugExit ? (value) => (exitCode = (value << 1) | 1) : undefined,
    reset: (reason) => process.stderr.write(`trapdoor: machine reset: ${reason}\n`),
    log: logLine,
  }, { network: { host: hostNetwork, tftpFiles: folderTftpFiles, log: logLine, createWebSocket: nodeWebSocketFactory, onActivity }, deviceModel });
  const monitor = new Monitor(machine.paths, (line) => process.stderr.write(`${line}\n`));
  try {
    for (const { name, path } of initialPaths) machine.paths.switchNow(name, path);
  } catch (e) {
    machine.paths.close();
    throw new UsageError(`--device-path: ${(e as Error).message}`);
  }
  // --switch-every: each named device goes to the other path once per period of virtual time.
  const switching = o.switchEvery;
  const unknown = switching?.names.filter((n) => !machine.paths.has(n)) ?? [];
  if (unknown.length) {
    machine.paths.close();
    throw new UsageError(`--switch-every: no switchable device '${unknown[0]}' (switchable: ${machine.paths.names().join(', ')})`);
  }
  let nextSwitchNs = switching ? machine.bus.clock.now() + switching.periodNs : Infinity;
  const switchDue = () => {
    const now = machine.bus.clock.now();
    if (!switching || now < nextSwitchNs) return;
    // Requested here, between CPU turns; the next run() applies them before its first instruction.
    for (const name of switching.names) machine.paths.request(name, machine.paths.pathOf(name) === 'direct' ? 'emulated' : 'direct');
    while (nextSwitchNs <= now) nextSwitchNs += switching.periodNs;
  };

  // Uplinks and listening ports, before the guest runs: a taken port is a usage error.
  const uplinks: SocketUplink[] = [];
  let pcapFd = -1;
  const closeNetwork = () => {
    for (const u of uplinks) u.close();
    machine.network.close();
    hostNetwork.close();
    if (pcapFd >= 0) fs.closeSync(pcapFd);
    pcapFd = -1;
  };
  try {
    await machine.network.start();
    for (const nd of config.network?.netdevs ?? []) {
      if (nd.kind !== 'socket') continue;
      const u = socketUplink(machine.network.lan(nd.id), nd, logLine, onActivity);
      uplinks.push(u);
      // listen= is ready at once; connect= goes on trying while the guest boots.
      if (nd.listen) await u.ready;
      else u.ready.catch((e: Error) => logLine(e.message));
    }
    if (o.pcap !== undefined) {
      const first = machine.network.nics[0];
      if (!first?.port) throw new Error('--pcap: the machine has no NIC on a network to capture');
      pcapFd = fs.openSync(o.pcap, 'w');
      const fd = pcapFd;
      const writer = new PcapWriter((chunk) => fs.writeSync(fd, chunk));
      first.port.addTap((frame, t) => writer.write(frame, t));
    }
  } catch (e) {
    closeNetwork();
    throw new UsageError((e as Error).message);
  }
  script.start();

  // Keys typed on a terminal go to COM1 byte for byte; Ctrl-A x quits, as in QEMU.
  let ctrlA = false;
  const stdinIsUseful = o.serial.kind === 'stdio' && (process.stdin.isTTY || fs.fstatSync(0).isFIFO() || fs.fstatSync(0).isSocket());
  if (stdinIsUseful) {
    if (process.stdin.isTTY) process.stdin.setRawMode(true);
    process.stdin.on('data', (d: Buffer) => {
      for (const b of d) {
        if (ctrlA && b === 0x78) exitCode = 0;
        ctrlA = b === 0x01;
        if (!ctrlA) pendingInput.push(b);
      }
    });
  }

  const started = performance.now();
  const deadline = o.timeoutSeconds !== undefined ? started + o.timeoutSeconds * 1000 : Infinity;
  try {
    for (;;) {
      if (commands.length) for (const c of commands.splice(0)) monitor.run(c);
      if (pendingInput.length) pendingInput.splice(0, machine.serialInput(pendingInput));
      machine.run(TURN);
      switchDue();
      if (exitCode !== null) break;
      if (script.done) {
        // --do steps after the last --until still run (at this boundary) before the exit.
        for (const c of commands.splice(0)) monitor.run(c);
        exitCode = 0;
        break;
      }
      if (machine.stopped) {
        process.stderr.write(`\ntrapdoor: ${machine.stopped}\n`);
        exitCode = 1;
        break;
      }
      if (machine.paths.failure) {
        // Paused, not hung: the command line has no interactive monitor to switch the device and resume.
        process.stderr.write(`\ntrapdoor: ${machine.paths.failure}\n`);
        exitCode = 1;
        break;
      }
      if (performance.now() > deadline) {
        const waiting = script.waitingFor;
        process.stderr.write(`\ntrapdoor: timeout after ${o.timeoutSeconds} s${waiting ? ` waiting for /${waiting}/` : ''}\n`);
        process.stderr.write(`trapdoor: machine at the timeout: ${stallReport(machine)}\n`);
        exitCode = 124;
        break;
      }
      // Let stdin and timers in; sleep while an idle guest waits for its next timer.
      const idle = !config.deterministic && machine.cpu.halted ? Math.min(50, machine.nextWakeMs()) : 0;
      // A busy guest yields with setImmediate: I/O callbacks run, without setTimeout's
      // millisecond (per turn, that was several percent of the guest's time).
      if (idle <= 0) {
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          wake = null;
          r();
        }, idle);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  } finally {
    if (o.stats) {
      const report = {
        instructions: machine.cpu.instructionCount, virtualSeconds: machine.bus.clock.now() / 1e9, ...machine.bus.stats.snapshot(),
        network: { ...machine.network.snapshot(), uplinks: uplinks.map((u) => ({ id: u.id, address: u.address, ...u.counters })) },
        // The guest's VT-d records and the VMM fence's log, kept apart (issue 23).
        iommu: { vtd: machine.iommu?.describe() ?? null, vmmFence: machine.vmmFence.describe() },
        // Which path each switchable device ended on, with its traps and round trips (issue 22).
        paths: machine.paths.list(),
      };
      fs.writeFileSync(o.stats, JSON.stringify(report, null, 2) + '\n');
    }
    try {
      machine.paths.close();
    } catch (e) {
      logLine((e as Error).message);
    }
    if (o.screen) fs.writeFileSync(o.screen, machine.vga.textMode ? machine.vga.textLines().join('\n') + '\n' : '');
    if (o.screenHash) logLine(formatScreenPicture(screenPicture(machine.vga)));
    closeNetwork();
    if (stdinIsUseful) {
      if (process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.pause();
    }
  }
  return exitCode ?? 0;
}

/**
 * Where a machine that stopped making visible progress stands, in one line: whether the
 * CPU waits in HLT and with what it could be woken (IF, INTR, NMI), the next timer, the
 * interrupt controllers' pending and in-service bits and COM1's interrupt state. Printed
 * at a --timeout, so a guest that hangs leaves something to go on.
 */
function stallReport(m: Machine): string {
  const cpu = m.cpu;
  const hex = (v: number) => (v >>> 0).toString(16);
  const bits = (a: ArrayLike<number>) => Array.from(a, (w) => hex(w)).join('.');
  const next = m.bus.clock.nextDeadline();
  const now = m.bus.clock.now();
  const l = m.lapic.state;
  const io = m.ioapic.state;
  const u = m.com1.state;
  const pic = m.pic.state;
  return [
    `cpu ${cpu.halted ? 'halted' : 'running'} eip=${hex(cpu.eip)} IF=${(cpu.flags & 0x200) !== 0 ? 1 : 0} INTR=${cpu.intrLine ? 1 : 0} NMI=${cpu.nmiDeliverable ? 1 : 0}`,
    `virtual ${(now / 1e9).toFixed(3)} s, next timer ${next === Infinity ? 'none' : `in ${((next - now) / 1e6).toFixed(3)} ms`} (${m.bus.clock.pending} pending)`,
    `lapic irr=${bits(l.irr)} isr=${bits(l.isr)} lvt-timer=${hex(l.lvt[0])} tpr=${hex(l.tpr)}`,
    `ioapic levels=${Array.from(io.level).join('')} redir-lo=${Array.from(io.low, (w) => hex(w)).join(',')}`,
    `pic irr=${hex(pic.master.irr)}/${hex(pic.slave.irr)} isr=${hex(pic.master.isr)}/${hex(pic.slave.isr)} imr=${hex(pic.master.imr)}/${hex(pic.slave.imr)}`,
    `com1 ier=${hex(u.ier)} lsr=${hex(u.lsr)} mcr=${hex(u.mcr)} thri=${u.thrInterrupt ? 1 : 0} rx=${u.rx.length}`,
    `irq lines=${Array.from(m.bus.irqLevels).join('')}`,
  ].join('; ');
}
