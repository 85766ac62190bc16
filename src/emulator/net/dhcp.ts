/**
 * The router's DHCP server (RFC 2131, options RFC 2132), answering on 10.0.2.2:67 as
 * QEMU's slirp does: leases from 10.0.2.15 upward, router 10.0.2.2, DNS 10.0.2.3.
 *
 * Leases are keyed by the client's hardware address (chaddr), not its client identifier
 * (option 61): one PC boots iPXE (client-id 1+MAC), then Linux's kernel (no client-id),
 * then udhcpc (client-id 1+MAC), and all three must get the same address back, as
 * slirp gives them. A lease outlives RELEASE as a preference: the same MAC gets the
 * same address next time unless the pool ran out and another client took it.
 *
 * For iPXE (and PXE ROMs): siaddr and option 66 name the TFTP server when tftp= is set,
 * option 67 and the BOOTP file field carry bootfile=, and option 175 (iPXE's
 * encapsulated options) carries 176 no-pxedhcp = 1 so iPXE does not wait for a
 * ProxyDHCP offer that will never come.
 */
import { ipToString, readU16, readU32, writeU16, writeU32 } from './ipv4.ts';
import { macToString } from './ethernet.ts';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

/** Option 53 values (RFC 2132 §9.6). */
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;
export const DHCPINFORM = 8;

const BOOTREQUEST = 1;
const BOOTREPLY = 2;
/** op..file: the fixed BOOTP part (RFC 2131 §2, figure 1). */
const FIXED = 236;
const MAGIC_COOKIE = 0x63825363;
/** BOOTP's minimum message (RFC 1542 §3.4): some old clients drop anything shorter. */
const MIN_MESSAGE = 300;
const FLAG_BROADCAST = 0x8000;

export const OPT_PAD = 0;
export const OPT_SUBNET_MASK = 1;
export const OPT_ROUTER = 3;
export const OPT_DNS = 6;
export const OPT_HOSTNAME = 12;
export const OPT_BROADCAST = 28;
export const OPT_REQUESTED_IP = 50;
export const OPT_LEASE_TIME = 51;
export const OPT_OVERLOAD = 52;
export const OPT_MESSAGE_TYPE = 53;
export const OPT_SERVER_ID = 54;
export const OPT_PARAMETER_LIST = 55;
export const OPT_MESSAGE = 56;
export const OPT_RENEWAL_TIME = 58;
export const OPT_REBINDING_TIME = 59;
export const OPT_CLIENT_ID = 61;
export const OPT_TFTP_SERVER = 66;
export const OPT_BOOTFILE = 67;
export const OPT_USER_CLASS = 77;
/** iPXE's encapsulated options (iPXE include/ipxe/dhcp.h), and its no-pxedhcp setting inside. */
export const OPT_IPXE = 175;
export const OPT_IPXE_NO_PXEDHCP = 176;
export const OPT_END = 255;

/** slirp's lease: one day. */
export const DEFAULT_LEASE_SECONDS = 86_400;

export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  chaddr: Uint8Array;
  sname: string;
  file: string;
  /** Options by code; a code given several times is concatenated (RFC 3396). */
  options: Map<number, Uint8Array>;
}

/** Parse a BOOTP/DHCP message (a UDP payload); null when it is not one. */
export function parseDhcp(b: Uint8Array): DhcpMessage | null {
  if (b.length < FIXED + 4 || readU32(b, FIXED) !== MAGIC_COOKIE) return null;
  const options = new Map<number, Uint8Array>();
  if (!readOptions(b, FIXED + 4, b.length, options)) return null;
  // Option overload (RFC 2132 §9.3): more options in the file and/or sname fields.
  const overload = options.get(OPT_OVERLOAD)?.[0] ?? 0;
  if ((overload & 1) !== 0 && !readOptions(b, 108, 236, options)) return null;
  if ((overload & 2) !== 0 && !readOptions(b, 44, 108, options)) return null;
  return {
    op: b[0],
    htype: b[1],
    hlen: b[2],
    xid: readU32(b, 4),
    secs: readU16(b, 8),
    flags: readU16(b, 10),
    ciaddr: readU32(b, 12),
    yiaddr: readU32(b, 16),
    siaddr: readU32(b, 20),
    giaddr: readU32(b, 24),
    chaddr: b.slice(28, 44),
    sname: (overload & 2) !== 0 ? '' : cString(b, 44, 108),
    file: (overload & 1) !== 0 ? '' : cString(b, 108, 236),
    options,
  };
}

function readOptions(b: Uint8Array, start: number, end: number, into: Map<number, Uint8Array>): boolean {
  let i = start;
  while (i < end) {
    const code = b[i++];
    if (code === OPT_PAD) continue;
    if (code === OPT_END) return true;
    if (i >= end) return false;
    const len = b[i++];
    if (i + len > end) return false;
    const value = b.subarray(i, i + len);
    const prev = into.get(code);
    if (prev) {
      const joined = new Uint8Array(prev.length + len);
      joined.set(prev);
      joined.set(value, prev.length);
      into.set(code, joined);
    } else {
      into.set(code, value);
    }
    i += len;
  }
  // Some clients end without OPT_END when the packet is exactly full; accept that.
  return true;
}

function cString(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end && b[i] !== 0; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** Build a DHCP message; options are written in the order given, then END, padded to 300 bytes. */
export function encodeDhcp(m: DhcpMessage): Uint8Array {
  let optLen = 1;
  for (const v of m.options.values()) optLen += 2 * Math.max(1, Math.ceil(v.length / 255)) + v.length;
  const b = new Uint8Array(Math.max(MIN_MESSAGE, FIXED + 4 + optLen));
  b[0] = m.op;
  b[1] = m.htype;
  b[2] = m.hlen;
  writeU32(b, 4, m.xid);
  writeU16(b, 8, m.secs);
  writeU16(b, 10, m.flags);
  writeU32(b, 12, m.ciaddr);
  writeU32(b, 16, m.yiaddr);
  writeU32(b, 20, m.siaddr);
  writeU32(b, 24, m.giaddr);
  b.set(m.chaddr.subarray(0, 16), 28);
  writeAscii(b, 44, 64, m.sname);
  writeAscii(b, 108, 128, m.file);
  writeU32(b, FIXED, MAGIC_COOKIE);
  let o = FIXED + 4;
  for (const [code, v] of m.options) {
    // Values over 255 bytes are split into several instances (RFC 3396).
    let off = 0;
    do {
      const n = Math.min(255, v.length - off);
      b[o++] = code;
      b[o++] = n;
      b.set(v.subarray(off, off + n), o);
      o += n;
      off += n;
    } while (off < v.length);
  }
  b[o] = OPT_END;
  return b;
}

function writeAscii(b: Uint8Array, start: number, size: number, s: string): void {
  // One byte is kept for the terminating NUL.
  for (let i = 0; i < s.length && i < size - 1; i++) b[start + i] = s.charCodeAt(i) & 0xff;
}

export function ipOption(...ips: number[]): Uint8Array {
  const b = new Uint8Array(4 * ips.length);
  ips.forEach((ip, i) => writeU32(b, 4 * i, ip));
  return b;
}

export function u32Option(v: number): Uint8Array {
  return ipOption(v);
}

export function textOption(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
}

export interface DhcpConfig {
  /** The server identifier and router: 10.0.2.2. */
  server: number;
  dns: number;
  network: number;
  mask: number;
  /** First leased address: 10.0.2.15. */
  poolStart: number;
  /** Addresses the router owns, never leased. */
  reserved: number[];
  leaseSeconds?: number;
  hostname?: string;
  /** When tftp= is set: siaddr and option 66 name the server. */
  tftp?: boolean;
  bootfile?: string;
}

export interface DhcpLease {
  mac: string;
  ip: number;
  /** offered: reserved by an OFFER; bound: ACKed; released: given back, kept as a preference. */
  state: 'offered' | 'bound' | 'released';
  /** Virtual time (ns) the offer or lease ends. */
  expires: number;
  clientId?: string;
  hostname?: string;
}

export interface DhcpReply {
  message: Uint8Array;
  /** IPv4 destination: the client's address, or 255.255.255.255. */
  ip: number;
  /** Ethernet destination: the client's chaddr, or broadcast. */
  broadcast: boolean;
}

export interface DhcpStats {
  discover: number;
  offer: number;
  request: number;
  ack: number;
  nak: number;
  release: number;
  decline: number;
  inform: number;
  /** A DISCOVER no address was left for. */
  poolExhausted: number;
  /** Not a request, wrong hardware type, no message type. */
  ignored: number;
  /** Leases bound now (ACKed, not released). */
  bound: number;
}

/** An OFFER holds its address this long (slirp keeps none; RFC 2131 §4.3.1 leaves it to the server). */
const OFFER_HOLD_NS = 60_000_000_000;

export class DhcpServer {
  readonly stats: DhcpStats = { discover: 0, offer: 0, request: 0, ack: 0, nak: 0, release: 0, decline: 0, inform: 0, poolExhausted: 0, ignored: 0, bound: 0 };
  /** By MAC "52:54:00:12:34:56". */
  private readonly leases = new Map<string, DhcpLease>();
  /** Addresses a client declined (RFC 2131 §4.3.3: in use by someone else); never offered again. */
  private readonly declined = new Set<number>();
  private readonly leaseSeconds: number;
  private readonly poolEnd: number;

  constructor(private readonly config: DhcpConfig) {
    this.leaseSeconds = config.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    // The last address before the subnet's broadcast.
    this.poolEnd = ((config.network | ~config.mask) >>> 0) - 1;
  }

  /** Answer one client message; null when no answer is due. `now` is virtual ns. */
  handle(m: DhcpMessage, now: number): DhcpReply | null {
    const r = this.answer(m, now);
    this.stats.bound = this.activeLeases;
    return r;
  }

  private answer(m: DhcpMessage, now: number): DhcpReply | null {
    const type = m.options.get(OPT_MESSAGE_TYPE)?.[0];
    if (m.op !== BOOTREQUEST || m.htype !== 1 || m.hlen !== 6 || type === undefined) {
      this.stats.ignored++;
      return null;
    }
    const mac = macToString(m.chaddr);
    switch (type) {
      case DHCPDISCOVER:
        return this.discover(m, mac, now);
      case DHCPREQUEST:
        return this.request(m, mac, now);
      case DHCPDECLINE: {
        this.stats.decline++;
        const ip = ipFrom(m.options.get(OPT_REQUESTED_IP));
        const lease = this.leases.get(mac);
        if (serverIdIsOurs(m, this.config.server) && lease && ip === lease.ip) {
          this.declined.add(ip);
          this.leases.delete(mac);
        }
        return null;
      }
      case DHCPRELEASE: {
        this.stats.release++;
        const lease = this.leases.get(mac);
        if (lease && lease.ip === m.ciaddr) lease.state = 'released';
        return null;
      }
      case DHCPINFORM:
        // The client has an address by other means and wants only the options (§3.4).
        this.stats.inform++;
        this.stats.ack++;
        return this.reply(m, DHCPACK, 0, m.ciaddr !== 0 ? m.ciaddr : -1, false);
      default:
        this.stats.ignored++;
        return null;
    }
  }

  private discover(m: DhcpMessage, mac: string, now: number): DhcpReply | null {
    this.stats.discover++;
    const ip = this.pick(mac, ipFrom(m.options.get(OPT_REQUESTED_IP)), now);
    if (ip === null) {
      this.stats.poolExhausted++;
      return null;
    }
    const lease = this.leases.get(mac);
    if (lease && lease.ip === ip && lease.state === 'bound') {
      // A bound client rediscovering keeps its lease as it is.
    } else {
      this.leases.set(mac, { ...this.tag(m, mac), ip, state: 'offered', expires: now + OFFER_HOLD_NS });
    }
    this.stats.offer++;
    return this.reply(m, DHCPOFFER, ip, -1, true);
  }

  private request(m: DhcpMessage, mac: string, now: number): DhcpReply | null {
    this.stats.request++;
    const serverId = m.options.get(OPT_SERVER_ID);
    const requested = ipFrom(m.options.get(OPT_REQUESTED_IP));
    const lease = this.leases.get(mac);
    let ip: number;
    if (serverId) {
      // SELECTING (§4.3.2): the client answers an OFFER; another server's means ours is free.
      if (!serverIdIsOurs(m, this.config.server)) {
        if (lease && lease.state === 'offered') this.leases.delete(mac);
        return null;
      }
      if (requested === null || !lease || lease.ip !== requested || lease.state === 'released') return this.nak(m);
      ip = requested;
    } else if (requested !== null && m.ciaddr === 0) {
      // INIT-REBOOT: the client remembers an address. Grant it when it is this client's
      // or free in our pool (slirp's restart keeps guests' addresses); NAK otherwise.
      if (!this.available(requested, mac, now)) return this.nak(m);
      ip = requested;
    } else if (m.ciaddr !== 0) {
      // RENEWING / REBINDING: ciaddr is the lease being extended.
      if (!this.available(m.ciaddr, mac, now)) return this.nak(m);
      ip = m.ciaddr;
    } else {
      return this.nak(m);
    }
    this.leases.set(mac, { ...this.tag(m, mac), ip, state: 'bound', expires: now + this.leaseSeconds * 1e9 });
    this.stats.ack++;
    return this.reply(m, DHCPACK, ip, m.ciaddr !== 0 ? m.ciaddr : -1, true);
  }

  private nak(m: DhcpMessage): DhcpReply {
    this.stats.nak++;
    // A NAK is always broadcast: the client's address is the thing in doubt (§4.1).
    const r = this.reply(m, DHCPNAK, 0, -1, false);
    return { ...r, ip: 0xffffffff, broadcast: true };
  }

  private tag(m: DhcpMessage, mac: string): { mac: string; clientId?: string; hostname?: string } {
    const id = m.options.get(OPT_CLIENT_ID);
    const name = m.options.get(OPT_HOSTNAME);
    return {
      mac,
      ...(id ? { clientId: [...id].map((x) => x.toString(16).padStart(2, '0')).join(':') } : {}),
      ...(name ? { hostname: String.fromCharCode(...name) } : {}),
    };
  }

  private inPool(ip: number): boolean {
    return ip >= this.config.poolStart && ip <= this.poolEnd && !this.config.reserved.includes(ip) && !this.declined.has(ip);
  }

  /** `ip` may go to `mac`: in the pool and nobody else's live lease. */
  private available(ip: number, mac: string, now: number): boolean {
    if (!this.inPool(ip)) return false;
    for (const l of this.leases.values()) {
      if (l.ip === ip && l.mac !== mac && l.state !== 'released' && l.expires > now) return false;
    }
    return true;
  }

  /** The address to offer: this MAC's previous one, the one it asks for, the first never used, or a dead lease's. */
  private pick(mac: string, requested: number | null, now: number): number | null {
    const own = this.leases.get(mac);
    if (own && this.available(own.ip, mac, now)) return own.ip;
    if (requested !== null && this.available(requested, mac, now)) return requested;
    const used = new Set<number>();
    for (const l of this.leases.values()) used.add(l.ip);
    for (let ip = this.config.poolStart; ip <= this.poolEnd; ip++) {
      if (this.inPool(ip) && !used.has(ip)) return ip;
    }
    // Pool full: take over the oldest released or expired lease of another client.
    let victim: DhcpLease | null = null;
    for (const l of this.leases.values()) {
      if (l.mac !== mac && (l.state === 'released' || l.expires <= now) && (!victim || l.expires < victim.expires)) victim = l;
    }
    if (!victim) return null;
    this.leases.delete(victim.mac);
    return victim.ip;
  }

  /**
   * Build a reply. `unicast` >= 0 sends to the client's configured address; otherwise
   * broadcast, which every client can receive before it has an address (the broadcast
   * flag asks for it; a client with no address cannot be unicast reliably, §4.1).
   */
  private reply(m: DhcpMessage, type: number, yiaddr: number, unicast: number, withLease: boolean): DhcpReply {
    const c = this.config;
    const o = new Map<number, Uint8Array>();
    o.set(OPT_MESSAGE_TYPE, Uint8Array.of(type));
    o.set(OPT_SERVER_ID, ipOption(c.server));
    if (type !== DHCPNAK) {
      if (withLease) {
        o.set(OPT_LEASE_TIME, u32Option(this.leaseSeconds));
        o.set(OPT_RENEWAL_TIME, u32Option(Math.floor(this.leaseSeconds / 2)));
        o.set(OPT_REBINDING_TIME, u32Option(Math.floor((this.leaseSeconds * 7) / 8)));
      }
      o.set(OPT_SUBNET_MASK, ipOption(c.mask));
      o.set(OPT_ROUTER, ipOption(c.server));
      o.set(OPT_DNS, ipOption(c.dns));
      o.set(OPT_BROADCAST, ipOption((c.network | ~c.mask) >>> 0));
      if (c.hostname) o.set(OPT_HOSTNAME, textOption(c.hostname));
      if (c.tftp) o.set(OPT_TFTP_SERVER, textOption(ipToString(c.server)));
      if (c.bootfile) o.set(OPT_BOOTFILE, textOption(c.bootfile));
      o.set(OPT_IPXE, Uint8Array.of(OPT_IPXE_NO_PXEDHCP, 1, 1));
    } else {
      o.set(OPT_MESSAGE, textOption('address not available'));
    }
    const message = encodeDhcp({
      op: BOOTREPLY,
      htype: 1,
      hlen: 6,
      xid: m.xid,
      secs: 0,
      // The broadcast flag is echoed (§4.1: the server's reply keeps the client's flags).
      flags: m.flags & FLAG_BROADCAST,
      ciaddr: type === DHCPNAK ? 0 : m.ciaddr,
      yiaddr,
      siaddr: c.tftp && type !== DHCPNAK ? c.server : 0,
      giaddr: m.giaddr,
      chaddr: m.chaddr,
      sname: '',
      file: type !== DHCPNAK && c.bootfile ? c.bootfile : '',
      options: o,
    });
    if (unicast >= 0) return { message, ip: unicast, broadcast: false };
    return { message, ip: 0xffffffff, broadcast: true };
  }

  describe(): DhcpLease[] {
    return [...this.leases.values()].map((l) => ({ ...l }));
  }

  get activeLeases(): number {
    let n = 0;
    for (const l of this.leases.values()) if (l.state === 'bound') n++;
    return n;
  }
}

function ipFrom(v: Uint8Array | undefined): number | null {
  return v && v.length >= 4 ? readU32(v, 0) : null;
}

function serverIdIsOurs(m: DhcpMessage, server: number): boolean {
  const id = ipFrom(m.options.get(OPT_SERVER_ID));
  return id === server;
}
