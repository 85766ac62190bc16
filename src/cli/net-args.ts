/**
 * QEMU's network flags, parsed into the machine's NetworkConfig:
 *
 *   -nic user[,model=ne2k_pci|ne2k_isa][,mac=..][,hostfwd=..][,tftp=DIR][,bootfile=F][,restrict=on][,wisp=URL][,fetch=ORIGIN]
 *   -nic socket,listen=[HOST]:PORT | connect=HOST:PORT
 *   -nic websocket,url=ws://HOST:PORT/PATH       (a WebSocket relay: one Ethernet frame per message)
 *   -nic none
 *   -netdev user|socket|websocket|hubport,id=X,...   with   -device ne2k_pci|ne2k_isa,netdev=X[,mac=..]
 *
 * A NIC's path (docs/device-paths.md) is `path=emulated|direct` on -nic or -device; it is
 * not part of the NetworkConfig but read by nicDevicePaths() for the machine's DevicePaths.
 *
 * Without any of them the machine gets what QEMU gives: one ne2k_pci on the user network.
 * Option strings use QEMU's syntax: comma-separated key=value, ",," for a literal comma.
 */
import { parseMac, defaultMac } from '../emulator/net/ethernet.ts';
import { defaultNetworkConfig } from '../emulator/machine/network.ts';
import type { HostForward, NetdevConfig, NetworkConfig, NicConfig } from '../emulator/machine/config.ts';
import { isDevicePath, type DevicePath } from '../emulator/bus/device-paths.ts';

export class NetArgError extends Error {
  override readonly name = 'NetArgError';
}

/** The network flags as given, in order. */
export type NetFlag = { flag: 'nic' | 'netdev' | 'device'; value: string };

const NIC_MODELS = ['ne2k_pci', 'ne2k_isa'] as const;
type NicModel = (typeof NIC_MODELS)[number];

/** Split "a,b=c,d=e,,f" as QEMU's option parser does: the first bare word is the type. */
export function splitOptions(raw: string): { type: string; opts: [string, string][] } {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === ',' && raw[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const [type, ...rest] = parts;
  const opts: [string, string][] = [];
  for (const p of rest) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq < 0) opts.push([p, 'on']);
    else opts.push([p.slice(0, eq), p.slice(eq + 1)]);
  }
  return { type, opts };
}

function onOff(flag: string, key: string, v: string): boolean {
  if (/^(on|yes|true|y|1)$/i.test(v)) return true;
  if (/^(off|no|false|n|0)$/i.test(v)) return false;
  throw new NetArgError(`-${flag}: ${key}=${v}: expected on or off`);
}

function port(flag: string, what: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new NetArgError(`-${flag}: ${what}: '${v}' is not a port number (1-65535)`);
  return n;
}

function ipv4(flag: string, what: string, v: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new NetArgError(`-${flag}: ${what}: '${v}' is not an IPv4 address`);
  return v;
}

/** "HOST:PORT" or ":PORT" (listen: loopback when HOST is empty; see parseHostfwd on why). */
function hostPort(flag: string, key: string, v: string, emptyHost: string | null): { address: string; port: number } {
  const i = v.lastIndexOf(':');
  if (i < 0) throw new NetArgError(`-${flag}: ${key}=${v}: expected HOST:PORT`);
  let host = v.slice(0, i);
  if (host === '') {
    if (emptyHost === null) throw new NetArgError(`-${flag}: ${key}=${v}: a host is needed`);
    host = emptyHost;
  }
  if (host === 'localhost') host = '127.0.0.1';
  return { address: ipv4(flag, key, host), port: port(flag, key, v.slice(i + 1)) };
}

/**
 * hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport. An empty host address binds
 * the host's loopback only, where QEMU binds every interface: a guest service is not
 * offered to the whole network unless the user says so (hostfwd=tcp:0.0.0.0:8080-:80).
 */
export function parseHostfwd(flag: string, v: string): HostForward {
  const m = /^(tcp|udp)?:([^:]*):(\d+)-([^:]*):(\d+)$/.exec(v);
  if (!m) throw new NetArgError(`-${flag}: hostfwd=${v}: expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`);
  const fwd: HostForward = {
    protocol: (m[1] ?? 'tcp') as 'tcp' | 'udp',
    hostAddress: m[2] === '' ? '127.0.0.1' : ipv4(flag, 'hostfwd host address', m[2] === 'localhost' ? '127.0.0.1' : m[2]),
    hostPort: port(flag, 'hostfwd host port', m[3]),
    guestPort: port(flag, 'hostfwd guest port', m[5]),
  };
  if (m[4] !== '') fwd.guestAddress = ipv4(flag, 'hostfwd guest address', m[4]);
  return fwd;
}

/** The keys of a netdev (for -netdev, and the netdev half of -nic). */
function netdevFrom(flag: string, type: string, opts: [string, string][], id: string): { netdev: NetdevConfig; rest: [string, string][] } {
  const rest: [string, string][] = [];
  if (type === 'user') {
    const n: NetdevConfig = { kind: 'user', id, restrict: false, hostfwd: [] };
    for (const [k, v] of opts) {
      switch (k) {
        case 'restrict': n.restrict = onOff(flag, k, v); break;
        case 'hostfwd': n.hostfwd.push(parseHostfwd(flag, v)); break;
        case 'tftp': n.tftpDir = v; break;
        case 'bootfile': n.bootfile = v; break;
        case 'hostname': n.hostname = v; break;
        case 'net': n.net = v; break;
        case 'host': n.host = ipv4(flag, k, v); break;
        case 'dns': n.dns = ipv4(flag, k, v); break;
        case 'dhcpstart': n.dhcpStart = ipv4(flag, k, v); break;
        case 'wisp':
          // Not QEMU's: the router's way out is a Wisp server, not this host's sockets.
          if (!/^(wisps?|wss?):\/\/[^/\s]+/i.test(v)) throw new NetArgError(`-${flag}: wisp=${v}: expected a wisp://, wss:// or ws:// URL`);
          n.wisp = v;
          break;
        case 'fetch':
          // Not QEMU's: HTTP to 10.0.2.2:80 replayed with fetch() against this origin (as the page does).
          if (!/^https?:\/\/[^/\s]+/i.test(v)) throw new NetArgError(`-${flag}: fetch=${v}: expected an http:// or https:// origin`);
          n.fetch = v;
          break;
        case 'dnsentry': {
          // Not QEMU's: name=ADDRESS entries the DNS forwarder answers itself (dnsentry=host.test=10.0.2.2).
          const eq = v.lastIndexOf('=');
          if (eq <= 0) throw new NetArgError(`-${flag}: dnsentry=${v}: expected NAME=ADDRESS`);
          (n.hosts ??= {})[v.slice(0, eq).toLowerCase()] = ipv4(flag, k, v.slice(eq + 1));
          break;
        }
        default: rest.push([k, v]);
      }
    }
    return { netdev: n, rest };
  }
  if (type === 'socket') {
    const n: NetdevConfig = { kind: 'socket', id };
    for (const [k, v] of opts) {
      if (k === 'listen') n.listen = hostPort(flag, k, v, '127.0.0.1');
      else if (k === 'connect') n.connect = hostPort(flag, k, v, null);
      else if (k === 'mcast' || k === 'udp' || k === 'fd') throw new NetArgError(`-${flag}: socket,${k}= is not supported (listen= and connect= are)`);
      else rest.push([k, v]);
    }
    if (!n.listen === !n.connect) throw new NetArgError(`-${flag}: socket needs exactly one of listen=[HOST]:PORT or connect=HOST:PORT`);
    return { netdev: n, rest };
  }
  if (type === 'websocket') {
    // Not QEMU's (it has no such netdev): a relay in the websockproxy/v86/JSLinux convention.
    let url: string | undefined;
    const rest: [string, string][] = [];
    for (const [k, v] of opts) {
      if (k === 'url') url = v;
      else rest.push([k, v]);
    }
    if (!url) throw new NetArgError(`-${flag}: websocket needs url=ws://HOST:PORT/ (a relay carrying one Ethernet frame per message)`);
    if (!/^wss?:\/\/[^/\s]+/i.test(url)) throw new NetArgError(`-${flag}: websocket,url=${url}: expected a ws:// or wss:// URL`);
    return { netdev: { kind: 'websocket', id, url }, rest };
  }
  if (type === 'hubport') return { netdev: { kind: 'hub', id }, rest: opts };
  throw new NetArgError(`-${flag}: network type '${type}' is not supported (user, socket, websocket, hubport and none are)`);
}

function nicModel(flag: string, v: string): NicModel {
  const m = v === 'ne2k' || v === 'rtl8029' ? 'ne2k_pci' : v;
  if (!(NIC_MODELS as readonly string[]).includes(m)) throw new NetArgError(`-${flag}: model=${v}: this PC has the NE2000 only: ne2k_pci (default) or ne2k_isa`);
  return m as NicModel;
}

function macOf(flag: string, v: string): Uint8Array {
  const mac = parseMac(v);
  if (!mac) throw new NetArgError(`-${flag}: mac=${v}: expected six hex bytes like 52:54:00:12:34:56`);
  if (mac[0] & 1) throw new NetArgError(`-${flag}: mac=${v}: a multicast address cannot be a NIC's address`);
  return mac;
}

/**
 * Trapdoor's own NIC keys, shaping its link: loss=0.05 (a fraction, or 5%), delay=2ms
 * (ns, us, ms, s), rate=1M (bytes per second, k/M/G suffixes), lossseed=N.
 */
function shapeKey(flag: string, nic: NicConfig, k: string, v: string): boolean {
  const shape = (nic.shape ??= {});
  if (k === 'loss') {
    const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(v);
    const p = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
    if (!(p >= 0 && p <= 1)) throw new NetArgError(`-${flag}: loss=${v}: expected a fraction from 0 to 1, or a percentage`);
    shape.loss = p;
  } else if (k === 'delay') {
    const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s)?$/.exec(v);
    if (!m) throw new NetArgError(`-${flag}: delay=${v}: expected a time such as 2ms`);
    shape.delayNs = Number(m[1]) * { ns: 1, us: 1e3, ms: 1e6, s: 1e9 }[(m[2] ?? 'ms') as 'ms'];
  } else if (k === 'rate') {
    const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(v);
    if (!m) throw new NetArgError(`-${flag}: rate=${v}: expected bytes per second such as 500k or 2M`);
    shape.bytesPerSecond = Number(m[1]) * ({ '': 1, k: 1e3, m: 1e6, g: 1e9 } as Record<string, number>)[m[2].toLowerCase()];
  } else if (k === 'lossseed') {
    if (!/^\d+$/.test(v)) throw new NetArgError(`-${flag}: lossseed=${v}: expected a whole number`);
    shape.seed = Number(v);
  } else {
    if (Object.keys(shape).length === 0) delete nic.shape;
    return false;
  }
  return true;
}

function unknown(flag: string, rest: [string, string][]): void {
  if (rest.length > 0) throw new NetArgError(`-${flag}: unknown option '${rest[0][0]}'`);
}

/**
 * The NetworkConfig for the flags given; `undefined` flags (none given) get QEMU's
 * default: one ne2k_pci on an unrestricted user network.
 */
export function buildNetworkConfig(flags: readonly NetFlag[]): NetworkConfig {
  return build(flags).cfg;
}

/**
 * The paths the flags ask for, by NIC name (the machine names its NICs ne2k, ne2k1, ...
 * in the order of NetworkConfig.nics: machine/network.ts). NICs without path= are absent.
 */
export function nicDevicePaths(flags: readonly NetFlag[]): { name: string; path: DevicePath }[] {
  const out: { name: string; path: DevicePath }[] = [];
  build(flags).paths.forEach((path, i) => {
    if (path) out.push({ name: i === 0 ? 'ne2k' : `ne2k${i}`, path });
  });
  return out;
}

function pathOf(flag: string, v: string): DevicePath {
  if (!isDevicePath(v)) throw new NetArgError(`-${flag}: path=${v}: expected emulated or direct`);
  return v;
}

function build(flags: readonly NetFlag[]): { cfg: NetworkConfig; paths: (DevicePath | undefined)[] } {
  if (flags.length === 0) return { cfg: defaultNetworkConfig(), paths: [] };
  const cfg: NetworkConfig = { nics: [], netdevs: [] };
  /** Per NIC in cfg.nics order: its path=, if given. */
  const paths: (DevicePath | undefined)[] = [];
  const devices: { model: NicModel; opts: [string, string][] }[] = [];
  let nicCount = 0;
  let none = false;
  for (const { flag, value } of flags) {
    const { type, opts } = splitOptions(value);
    if (flag === 'nic') {
      if (type === 'none') {
        none = true;
        continue;
      }
      const idOpt = opts.find(([k]) => k === 'id');
      const id = idOpt ? idOpt[1] : `${type}.${nicCount}`;
      const { netdev, rest } = netdevFrom(flag, type, opts.filter(([k]) => k !== 'id'), id);
      const nic: NicConfig = { model: 'ne2k_pci', mac: defaultMac(nicCount), netdev: id };
      const left: [string, string][] = [];
      let path: DevicePath | undefined;
      for (const [k, v] of rest) {
        if (k === 'path') path = pathOf(flag, v);
        else if (k === 'model') nic.model = nicModel(flag, v);
        else if (k === 'mac') nic.mac = macOf(flag, v);
        else if (!shapeKey(flag, nic, k, v)) left.push([k, v]);
      }
      unknown(flag, left);
      cfg.netdevs.push(netdev);
      cfg.nics.push(nic);
      paths.push(path);
      nicCount++;
    } else if (flag === 'netdev') {
      const idOpt = opts.find(([k]) => k === 'id');
      if (!idOpt || idOpt[1] === '') throw new NetArgError(`-netdev ${type}: id= is required`);
      const { netdev, rest } = netdevFrom(flag, type, opts.filter(([k]) => k !== 'id'), idOpt[1]);
      unknown(flag, rest);
      cfg.netdevs.push(netdev);
    } else {
      devices.push({ model: nicModel(flag, type), opts });
    }
  }
  for (const d of devices) {
    const nic: NicConfig = { model: d.model, mac: defaultMac(nicCount), netdev: null };
    const left: [string, string][] = [];
    let path: DevicePath | undefined;
    for (const [k, v] of d.opts) {
      if (k === 'path') path = pathOf('device', v);
      else if (k === 'netdev') nic.netdev = v;
      else if (k === 'mac') nic.mac = macOf('device', v);
      else if (k === 'iobase' && d.model === 'ne2k_isa') nic.iobase = parseInt(v, v.startsWith('0x') ? 16 : 10);
      else if (k === 'irq' && d.model === 'ne2k_isa') nic.irq = Number(v);
      else if (k === 'id' || k === 'addr' || k === 'bus') continue;
      else if (!shapeKey('device', nic, k, v)) left.push([k, v]);
    }
    unknown('device', left);
    if (nic.netdev !== null && !cfg.netdevs.some((n) => n.id === nic.netdev)) throw new NetArgError(`-device ${d.model}: netdev=${nic.netdev}: no -netdev with that id`);
    if (nic.iobase !== undefined && !(nic.iobase >= 0x100 && nic.iobase <= 0xffe0 && nic.iobase % 0x20 === 0)) throw new NetArgError(`-device ne2k_isa: iobase must be a multiple of 0x20 between 0x100 and 0xffe0`);
    if (nic.irq !== undefined && !(Number.isInteger(nic.irq) && nic.irq >= 2 && nic.irq <= 15)) throw new NetArgError(`-device ne2k_isa: irq must be 2 to 15`);
    cfg.nics.push(nic);
    paths.push(path);
    nicCount++;
  }
  if (none && cfg.nics.length > 0) throw new NetArgError('-nic none cannot be combined with other NICs');
  const ids = new Set<string>();
  for (const n of cfg.netdevs) {
    if (ids.has(n.id)) throw new NetArgError(`two networks have the id '${n.id}'`);
    ids.add(n.id);
  }
  const macs = new Set<string>();
  for (const n of cfg.nics) {
    const k = Array.from(n.mac).join(':');
    if (macs.has(k)) throw new NetArgError('two NICs have the same MAC address; give one of them mac=');
    macs.add(k);
  }
  if (cfg.nics.filter((n) => n.model === 'ne2k_isa').length > 1 && new Set(cfg.nics.filter((n) => n.model === 'ne2k_isa').map((n) => n.iobase ?? 0x300)).size < 2) {
    throw new NetArgError('two ne2k_isa NICs need different iobase= values');
  }
  return { cfg, paths };
}
