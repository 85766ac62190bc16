/**
 * The `trapdoor` command line: QEMU's words, so a QEMU user feels at home.
 *
 * Flags are declared once as data; the parser, the validation and `--help` all read
 * the same table. QEMU's single-dash spelling (`-kernel`, `-m 64`) is accepted too.
 */
import * as fs from 'node:fs';
import { buildNetworkConfig, NetArgError, type NetFlag } from './net-args.ts';
import { parseMonitorCommand } from './monitor.ts';
import { isDevicePath, type DevicePath } from '../emulator/bus/device-paths.ts';
import type { MachineConfig } from '../emulator/machine/config.ts';

/** A problem with the command line the user can fix: printed as one line, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type SerialTarget = { kind: 'stdio' } | { kind: 'none' } | { kind: 'file'; path: string };
export type DebugconTarget = { kind: 'stdio' } | { kind: 'file'; path: string };

/** One step of the expect-like script: wait for output, or type into the serial port. */
export type ScriptStep = { kind: 'until'; pattern: RegExp; source: string } | { kind: 'send'; text: string } | { kind: 'do'; command: string };

export interface CliOptions {
  memoryMiB: number | undefined;
  bios: string | undefined;
  vgaBios: string | undefined;
  kernel: string | undefined;
  initrd: string | undefined;
  append: string | undefined;
  cdrom: string | undefined;
  hda: string | undefined;
  fda: string | undefined;
  boot: string | undefined;
  serial: SerialTarget;
  debugcon: DebugconTarget | undefined;
  debugExit: boolean;
  display: 'none';
  image: string | undefined;
  script: ScriptStep[];
  timeoutSeconds: number | undefined;
  stats: string | undefined;
  screen: string | undefined;
  deterministic: boolean;
  blockCache: boolean;
  /** -nic, -netdev and -device in the order given (net-args.ts turns them into the machine's network). */
  net: NetFlag[];
  /** --pcap FILE: capture of the first NIC's port. */
  pcap: string | undefined;
  /** -machine iommu=on|off or -device intel-iommu: the guest-visible VT-d unit (undefined: the default, on). */
  iommu: boolean | undefined;
  /** -device edu: QEMU's educational PCI device. */
  edu: boolean;
  /** --device-path NAME=emulated|direct, in order (applied before the guest runs). */
  devicePaths: { name: string; path: DevicePath }[];
  /** --switch-every PERIOD=NAME[,NAME...]: these devices change path every periodNs of virtual time. */
  switchEvery: { periodNs: number; names: string[] } | undefined;
  /** --screen-hash: print the SHA-256 of the screen as shown at exit. */
  screenHash: boolean;
  help: boolean;
  version: boolean;
}

type ValueKind = 'path' | 'switch' | 'monitor' | 'machine' | 'net' | 'file' | 'mib' | 'string' | 'boot' | 'serial' | 'debugcon' | 'display' | 'regex' | 'text' | 'seconds' | 'outfile' | 'image';

interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  /** Present for flags that take a value. */
  readonly value?: ValueKind;
  readonly metavar?: string;
  readonly help: string;
  readonly group: 'Machine' | 'Boot' | 'Network' | 'Output' | 'Scripting';
}

export const FLAGS: readonly FlagSpec[] = [
  { long: 'mem', short: 'm', value: 'mib', metavar: 'MiB', help: 'guest RAM in MiB (default 128, or what the image asks for)', group: 'Machine' },
  { long: 'bios', value: 'file', metavar: 'FILE', help: 'system BIOS; size a multiple of 64 KiB, mapped to end at 4 GiB with its last 128 KiB also below 1 MiB (default: SeaBIOS from the firmware image)', group: 'Machine' },
  { long: 'vga-bios', value: 'file', metavar: 'FILE', help: 'VGA option ROM behind the VGA ROM BAR (default: vgabios-stdvga.bin from the firmware image)', group: 'Machine' },
  { long: 'display', value: 'display', metavar: 'none', help: 'no screen (the only choice in the CLI; the page has the screen)', group: 'Machine' },
  { long: 'deterministic', help: 'virtual time from the instruction count: the same image and inputs give the same output', group: 'Machine' },
  { long: 'machine', value: 'machine', metavar: 'iommu=on|off', help: 'machine options (QEMU\'s -machine): iommu=on adds the VT-d DMA-remapping unit at 0xFED90000 and its ACPI DMAR (a synthetic i440FX option: QEMU offers VT-d only on q35); default on, iommu=off leaves it out', group: 'Machine' },
  { long: 'device-path', value: 'path', metavar: 'NAME=emulated|direct', help: 'start a built-in device on a path: emulated (every access traps into the device-model worker) or direct (no trap; the default). Switchable: com1, com2, ide, vga, edu, and the NICs (ne2k, ne2k1, ...; also -device ne2k_pci,path=...). See docs/device-paths.md', group: 'Machine' },
  { long: 'switch-every', value: 'switch', metavar: 'PERIOD=NAME[,NAME...]', help: 'move each named device to the other path every PERIOD of virtual time (e.g. 20ms=ne2k,ide,vga; units ns, us, ms, s), at the first instruction boundary between CPU turns once the period is up: the live switch under load, for a run to compare with the same run unswitched', group: 'Machine' },
  { long: 'no-block-cache', help: 'interpret every instruction (no translated blocks): slower; the reference for the block cache', group: 'Machine' },
  { long: 'image', value: 'image', metavar: 'NAME', help: 'boot a guest from the images manifest (npm run images), e.g. tiny-linux', group: 'Boot' },
  { long: 'kernel', value: 'file', metavar: 'FILE', help: 'direct kernel boot: a bzImage or a multiboot kernel', group: 'Boot' },
  { long: 'initrd', value: 'file', metavar: 'FILE', help: 'initial ramdisk for --kernel', group: 'Boot' },
  { long: 'append', value: 'string', metavar: 'STR', help: 'kernel command line for --kernel', group: 'Boot' },
  { long: 'cdrom', value: 'file', metavar: 'FILE', help: 'ISO image on the secondary master ATAPI drive', group: 'Boot' },
  { long: 'hda', value: 'file', metavar: 'FILE', help: 'raw disk image on the primary master IDE drive', group: 'Boot' },
  { long: 'fda', value: 'file', metavar: 'FILE', help: 'floppy image in drive A: (1.44 MB and other standard sizes)', group: 'Boot' },
  { long: 'boot', value: 'boot', metavar: 'ORDER', help: 'boot order, letters from a (floppy), c (disk), d (CD), n (network), e.g. dc', group: 'Boot' },
  { long: 'nic', value: 'net', metavar: 'TYPE[,OPT=V...]', help: "a NIC and its network: user[,model=ne2k_pci|ne2k_isa][,mac=M][,restrict=on][,hostfwd=tcp::HPORT-:GPORT][,tftp=DIR][,bootfile=F], socket,listen=[HOST]:PORT|connect=HOST:PORT, or none (default: one ne2k_pci on user)", group: 'Network' },
  { long: 'netdev', value: 'net', metavar: 'TYPE,id=X[,...]', help: 'a network (user, socket, hubport) for -device ...,netdev=X; options as for --nic', group: 'Network' },
  { long: 'device', value: 'net', metavar: 'MODEL[,netdev=X][,mac=M]', help: 'a device: ne2k_pci (RTL8029 on PCI) or ne2k_isa (NE2000 at iobase=0x300, irq=9) with netdev=X; intel-iommu (as -machine iommu=on); edu (QEMU\'s educational PCI DMA device)', group: 'Network' },
  { long: 'pcap', value: 'outfile', metavar: 'FILE', help: "capture the first NIC's traffic as classic pcap (tcpdump -r FILE)", group: 'Network' },
  { long: 'serial', value: 'serial', metavar: 'stdio|none|FILE', help: 'where COM1 goes (default stdio; stdin is typed into it)', group: 'Output' },
  { long: 'debugcon', value: 'debugcon', metavar: 'stdio|FILE', help: 'bytes the guest writes to port 0xE9', group: 'Output' },
  { long: 'debug-exit', help: 'port 0xF4 ends the process with status (value << 1) | 1', group: 'Output' },
  { long: 'stats', value: 'outfile', metavar: 'FILE', help: 'write the per-device counters as JSON at exit', group: 'Output' },
  { long: 'screen', value: 'outfile', metavar: 'FILE', help: 'write the VGA text screen as plain lines at exit (empty in graphics modes)', group: 'Output' },
  { long: 'screen-hash', help: "at exit, print the SHA-256 of the screen as the VGA shows it (its RGBA pixels, text or graphics; the cursor and blinking text in their visible phase) on stderr: 'trapdoor: screen MODE WxH sha256=HEX'", group: 'Output' },
  { long: 'until', value: 'regex', metavar: 'REGEX', help: 'wait until serial or debugcon output matches; the process exits 0 once the last --until has matched', group: 'Scripting' },
  { long: 'send', value: 'text', metavar: 'TEXT', help: 'type TEXT into the serial port (\\n, \\r, \\t, \\\\ and \\xHH understood); runs in order with --until', group: 'Scripting' },
  { long: 'do', value: 'monitor', metavar: 'COMMAND', help: "run a monitor command in order with --until/--send, at the next instruction boundary: 'device_path NAME emulated|direct', 'info paths' (each switchable device's path, traps and round trips, on stderr)", group: 'Scripting' },
  { long: 'timeout', value: 'seconds', metavar: 'SECONDS', help: 'give up after SECONDS of wall time: exit 124 naming the pattern waited for', group: 'Scripting' },
  { long: 'help', short: 'h', help: 'show this help', group: 'Output' },
  { long: 'version', help: 'show the version', group: 'Output' },
];

const byName = new Map<string, FlagSpec>();
for (const f of FLAGS) {
  byName.set(f.long, f);
  if (f.short) byName.set(f.short, f);
}

/** Decode the escapes `--send` understands. */
export function unescapeText(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_m, e: string) => {
    if (e.length === 3) return String.fromCharCode(parseInt(e.slice(1), 16));
    switch (e) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'e': return '\x1b';
      case '\\': return '\\';
      default: return '\\' + e;
    }
  });
}

function checkReadableFile(flag: string, path: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    throw new UsageError(`--${flag}: no such file: ${path}`);
  }
  if (!st.isFile()) throw new UsageError(`--${flag}: not a regular file: ${path}`);
  try {
    fs.accessSync(path, fs.constants.R_OK);
  } catch {
    throw new UsageError(`--${flag}: cannot read ${path}`);
  }
  if (st.size === 0) throw new UsageError(`--${flag}: file is empty: ${path}`);
}

function positiveNumber(flag: string, raw: string, integer: boolean): number {
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag}: expected a positive ${integer ? 'whole ' : ''}number, got '${raw}'`);
  }
  return n;
}

export function defaultOptions(): CliOptions {
  return {
    memoryMiB: undefined, bios: undefined, vgaBios: undefined, kernel: undefined, initrd: undefined,
    append: undefined, cdrom: undefined, hda: undefined, fda: undefined, boot: undefined,
    serial: { kind: 'stdio' }, debugcon: undefined, debugExit: false, display: 'none', image: undefined,
    script: [], timeoutSeconds: undefined, stats: undefined, screen: undefined, deterministic: false, blockCache: true, net: [], pcap: undefined,
    iommu: undefined, edu: false, devicePaths: [], switchEvery: undefined, screenHash: false, help: false, version: false,
  };
}

function applyValue(o: CliOptions, spec: FlagSpec, raw: string): void {
  const flag = spec.long;
  switch (spec.value) {
    case 'file':
      checkReadableFile(flag, raw);
      break;
    case 'mib': {
      // QEMU accepts a size suffix; MiB is the default unit.
      const m = /^(\d+)([MmGg]?)$/.exec(raw);
      if (!m) throw new UsageError(`--${flag}: expected a size in MiB such as 128 or 1G, got '${raw}'`);
      const mib = Number(m[1]) * (m[2].toLowerCase() === 'g' ? 1024 : 1);
      // Below 2 MiB nothing boots; above 3.5 GiB RAM would overlap the PCI hole.
      if (mib < 2 || mib > 3584) throw new UsageError(`--${flag}: ${mib} MiB is out of range (2 to 3584)`);
      o.memoryMiB = mib;
      return;
    }
    case 'boot':
      if (!/^[acdn]+$/.test(raw)) throw new UsageError(`--${flag}: expected letters from a, c, d, n (e.g. 'dc'), got '${raw}'`);
      o.boot = raw;
      return;
    case 'serial':
      o.serial = raw === 'stdio' ? { kind: 'stdio' } : raw === 'none' ? { kind: 'none' } : { kind: 'file', path: raw };
      return;
    case 'debugcon':
      o.debugcon = raw === 'stdio' ? { kind: 'stdio' } : { kind: 'file', path: raw };
      return;
    case 'display':
      if (raw !== 'none') throw new UsageError(`--${flag}: the command line has no screen; only 'none' is accepted (open the page for the screen)`);
      return;
    case 'regex':
      try {
        o.script.push({ kind: 'until', pattern: new RegExp(raw), source: raw });
      } catch (e) {
        throw new UsageError(`--${flag}: not a valid regular expression '${raw}': ${(e as Error).message}`);
      }
      return;
    case 'text':
      o.script.push({ kind: 'send', text: unescapeText(raw) });
      return;
    case 'seconds':
      o.timeoutSeconds = positiveNumber(flag, raw, false);
      return;
    case 'machine':
      applyMachineOption(o, raw);
      return;
    case 'path': {
      const m = /^([a-z][a-z0-9_-]*)=(.*)$/.exec(raw);
      if (!m || !isDevicePath(m[2])) throw new UsageError(`--${flag}: expected NAME=emulated or NAME=direct (e.g. com1=emulated), got '${raw}'`);
      o.devicePaths.push({ name: m[1], path: m[2] });
      return;
    }
    case 'switch': {
      const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s)=([a-z][a-z0-9_-]*(?:,[a-z][a-z0-9_-]*)*)$/.exec(raw);
      const periodNs = m ? Number(m[1]) * { ns: 1, us: 1e3, ms: 1e6, s: 1e9 }[m[2] as 'ns' | 'us' | 'ms' | 's'] : 0;
      if (!m || !(periodNs >= 1)) throw new UsageError(`--${flag}: expected PERIOD=NAME[,NAME...] with a period in ns, us, ms or s (e.g. 20ms=ne2k,ide,vga), got '${raw}'`);
      o.switchEvery = { periodNs, names: m[3].split(',') };
      return;
    }
    case 'monitor': {
      const problem = parseMonitorCommand(raw).error;
      if (problem) throw new UsageError(`--${flag}: ${problem}`);
      o.script.push({ kind: 'do', command: raw });
      return;
    }
    case 'net':
      // Devices that are not NICs: the IOMMU and edu.
      if (flag === 'device' && /^intel-iommu(,|$)/.test(raw)) {
        if (raw !== 'intel-iommu') throw new UsageError(`-device intel-iommu takes no options here (its address width is 39 bits, its base 0xFED90000), got '${raw}'`);
        o.iommu = true;
        return;
      }
      if (flag === 'device' && /^edu(,|$)/.test(raw)) {
        if (raw !== 'edu') throw new UsageError(`-device edu takes no options here (its DMA mask is 28 bits, as QEMU's default), got '${raw}'`);
        o.edu = true;
        return;
      }
      o.net.push({ flag: flag as NetFlag['flag'], value: raw });
      return;
    case 'outfile':
      if (raw === '') throw new UsageError(`--${flag}: expected a file name`);
      if (flag === 'screen') o.screen = raw;
      else if (flag === 'pcap') o.pcap = raw;
      else o.stats = raw;
      return;
    case 'image':
      if (!/^[a-z0-9][a-z0-9-]*$/.test(raw)) throw new UsageError(`--${flag}: not an image name: '${raw}'`);
      o.image = raw;
      return;
    case 'string':
      break;
    case undefined:
      return;
  }
  switch (flag) {
    case 'bios': o.bios = raw; break;
    case 'vga-bios': o.vgaBios = raw; break;
    case 'kernel': o.kernel = raw; break;
    case 'initrd': o.initrd = raw; break;
    case 'append': o.append = raw; break;
    case 'cdrom': o.cdrom = raw; break;
    case 'hda': o.hda = raw; break;
    case 'fda': o.fda = raw; break;
  }
}

/** -machine KEY=VALUE[,...]: only iommu= is a choice on this PC (the machine type is always the i440FX PC). */
function applyMachineOption(o: CliOptions, raw: string): void {
  for (const part of raw.split(',')) {
    const [key, value] = part.split('=', 2);
    if (key === 'pc' || (key === 'type' && value === 'pc')) continue;
    if (key === 'iommu' || key === 'intel-iommu') {
      if (value === 'on' || value === 'true') o.iommu = true;
      else if (value === 'off' || value === 'false') o.iommu = false;
      else throw new UsageError(`-machine ${key}=: expected on or off, got '${value ?? ''}'`);
      continue;
    }
    throw new UsageError(`-machine: unknown option '${part}' (iommu=on|off is the one this PC has)`);
  }
}

/** The machine options of the command line applied to a config built from the flags and the image. */
export function withMachineOptions(config: MachineConfig, o: CliOptions): MachineConfig {
  return { ...config, iommu: o.iommu ?? config.iommu ?? true, edu: o.edu || (config.edu ?? false) };
}

/** Parse argv (without node and the script). Throws UsageError for anything malformed. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const o = defaultOptions();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--?([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`unexpected argument '${arg}' (flags start with --; see --help)`);
    const spec = byName.get(m[1]);
    if (!spec) throw new UsageError(`unknown flag '${arg.split('=')[0]}' (see --help)`);
    let value = m[2];
    if (spec.value) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`--${spec.long} needs a value: ${spec.metavar ?? 'VALUE'}`);
        value = argv[++i];
      }
      applyValue(o, spec, value);
    } else {
      if (value !== undefined) throw new UsageError(`--${spec.long} takes no value`);
      if (spec.long === 'deterministic') o.deterministic = true;
      else if (spec.long === 'no-block-cache') o.blockCache = false;
      else if (spec.long === 'debug-exit') o.debugExit = true;
      else if (spec.long === 'screen-hash') o.screenHash = true;
      else if (spec.long === 'help') o.help = true;
      else if (spec.long === 'version') o.version = true;
    }
  }
  if (o.help || o.version) return o;
  if ((o.initrd !== undefined || o.append !== undefined) && o.kernel === undefined && o.image === undefined) {
    throw new UsageError(`--${o.initrd !== undefined ? 'initrd' : 'append'} needs --kernel`);
  }
  if (o.bios !== undefined) {
    const size = fs.statSync(o.bios).size;
    if (size % 65536 !== 0 || size > 16 * 1024 * 1024) {
      throw new UsageError(`--bios: ${o.bios} is ${size} bytes; a BIOS image must be a multiple of 64 KiB, at most 16 MiB`);
    }
  }
  try {
    buildNetworkConfig(o.net);
  } catch (e) {
    if (e instanceof NetArgError) throw new UsageError(e.message.replace(/^-/, '--'));
    throw e;
  }
  const hasMedium = o.kernel || o.cdrom || o.hda || o.fda || o.image;
  if (o.boot && !hasMedium && !o.boot.includes('n')) throw new UsageError('--boot given but nothing to boot from (--cdrom, --hda, --fda or --image)');
  return o;
}

export function helpText(): string {
  const lines = [
    'Usage: trapdoor [flags]',
    '',
    'Runs Trapdoor\'s PC headless in Node. Flags follow QEMU (-kernel and --kernel both work).',
    '',
    'Examples:',
    "  trapdoor --image tiny-linux --serial stdio",
    "  trapdoor --kernel bzImage --initrd initrd.gz --append console=ttyS0 --until 'login' --timeout 60",
    "  trapdoor --cdrom tiny.iso --boot d --deterministic --until 'READY' --send 'uname -a\\n' --until Linux",
  ];
  for (const group of ['Machine', 'Boot', 'Network', 'Output', 'Scripting'] as const) {
    lines.push('', group + ':');
    for (const f of FLAGS.filter((x) => x.group === group)) {
      const names = (f.short ? `-${f.short}, ` : '    ') + `--${f.long}` + (f.value ? ` ${f.metavar ?? 'VALUE'}` : '');
      lines.push(`  ${names.padEnd(34)} ${f.help}`);
    }
  }
  lines.push('', 'Exit status: 0 when the last --until matched (or the guest exited through --debug-exit as it asked),',
    '2 for a bad command line or unusable file, 124 on --timeout, 1 for an emulator failure.');
  return lines.join('\n');
}
