/**
 * One-line packet summaries in the manner of `tcpdump -n -S` (numeric addresses, absolute
 * TCP sequence numbers), for the page's live packet list: ARP who-has / is-at, ICMP echo
 * with id and seq, UDP ports, TCP flags with seq/ack/win/length, DHCP message types, DNS
 * queries and answers, HTTP request and status lines.
 *
 * The input may be a capture cut short (the worker sends the page only the first bytes of
 * a TCP segment): lengths come from the headers (IPv4 total length, the frame's length on
 * the wire), never from how many bytes were captured, and a layer that was cut off is
 * summarised as far as it goes, with `[|tcp]`-style marks where tcpdump prints them.
 * Checksums are not verified (tcpdump does not either unless asked). Nothing here throws:
 * a frame no layer can make sense of is summarised as malformed, in words.
 */
import { macToString } from './ethernet.ts';
import { ipToString } from './ipv4.ts';

/** The kind of the innermost layer understood, for filters and colours. */
export type PacketProto = 'arp' | 'icmp' | 'udp' | 'tcp' | 'ip' | 'ipv6' | 'other' | 'malformed';

export interface PacketSummary {
  /** The line, as tcpdump would print it after the timestamp. */
  text: string;
  proto: PacketProto;
  /** Application protocol recognised: 'dhcp', 'dns', 'http' (or undefined). */
  app?: 'dhcp' | 'dns' | 'http';
  /** IPv4 addresses (source, destination), or ARP's sender and target. */
  hosts: string[];
  /** UDP or TCP ports (source, destination). */
  ports: number[];
}

const u16 = (b: Uint8Array, o: number) => ((b[o] << 8) | b[o + 1]) >>> 0;
const u32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_IPV6 = 0x86dd;

/**
 * Summarise one Ethernet frame.
 * @param frame the captured bytes (possibly only the first part of the frame)
 * @param wireLength the frame's length on the wire (default: all of it was captured)
 */
export function summarizeFrame(frame: Uint8Array, wireLength = frame.length): PacketSummary {
  try {
    return summarize(frame, Math.max(wireLength, frame.length));
  } catch (e) {
    // A bug of ours must not take the packet list (or the page) down with it.
    return { text: `[summary failed: ${e instanceof Error ? e.message : String(e)}], length ${wireLength}`, proto: 'malformed', hosts: [], ports: [] };
  }
}

function malformed(text: string): PacketSummary {
  return { text, proto: 'malformed', hosts: [], ports: [] };
}

function summarize(f: Uint8Array, wire: number): PacketSummary {
  if (f.length < 14) return malformed(`[malformed: ${wire} bytes, shorter than an Ethernet header]`);
  const type = u16(f, 12);
  const rest = wire - 14;
  if (type === ETHERTYPE_ARP) return arp(f.subarray(14), rest);
  if (type === ETHERTYPE_IPV4) return ipv4(f.subarray(14), wire);
  if (type === ETHERTYPE_IPV6) return { text: `IP6, length ${rest}`, proto: 'ipv6', hosts: [], ports: [] };
  if (type <= 1500) return { text: `${macToString(f, 6)} > ${macToString(f, 0)}, 802.3, length ${type}`, proto: 'other', hosts: [], ports: [] };
  return { text: `${macToString(f, 6)} > ${macToString(f, 0)}, ethertype 0x${type.toString(16).padStart(4, '0')}, length ${wire}`, proto: 'other', hosts: [], ports: [] };
}

/** RFC 826: Ethernet/IPv4 ARP only; tcpdump's wording. `length` is the Ethernet payload's length, padding included. */
function arp(b: Uint8Array, length: number): PacketSummary {
  if (b.length < 28) return malformed(`ARP, [malformed: ${b.length} bytes, an Ethernet/IPv4 ARP packet has 28], length ${length}`);
  if (u16(b, 0) !== 1 || u16(b, 2) !== ETHERTYPE_IPV4 || b[4] !== 6 || b[5] !== 4) {
    return { text: `ARP, hardware ${u16(b, 0)}, protocol 0x${u16(b, 2).toString(16).padStart(4, '0')}, length ${length}`, proto: 'arp', hosts: [], ports: [] };
  }
  const oper = u16(b, 6);
  const spa = ipToString(u32(b, 14));
  const tpa = ipToString(u32(b, 24));
  const hosts = [spa, tpa];
  if (oper === 1) return { text: `ARP, Request who-has ${tpa} tell ${spa}, length ${length}`, proto: 'arp', hosts, ports: [] };
  if (oper === 2) return { text: `ARP, Reply ${spa} is-at ${macToString(b, 8)}, length ${length}`, proto: 'arp', hosts, ports: [] };
  return { text: `ARP, unknown operation ${oper}, length ${length}`, proto: 'arp', hosts, ports: [] };
}

/** RFC 791. `wire` is the whole frame's length, to say how much of it is missing. */
function ipv4(b: Uint8Array, wire: number): PacketSummary {
  if (b.length < 20) return malformed(`IP [malformed: ${b.length} bytes, shorter than an IPv4 header]`);
  if (b[0] >> 4 !== 4) return malformed(`IP [malformed: version ${b[0] >> 4}]`);
  const ihl = (b[0] & 0x0f) * 4;
  const total = u16(b, 2);
  const src = ipToString(u32(b, 12));
  const dst = ipToString(u32(b, 16));
  const hosts = [src, dst];
  if (ihl < 20) return { ...malformed(`IP ${src} > ${dst}: [malformed: header length ${ihl}]`), hosts };
  if (total < ihl) return { ...malformed(`IP ${src} > ${dst}: [malformed: total length ${total} < header length ${ihl}]`), hosts };
  if (total > wire - 14) return { ...malformed(`IP ${src} > ${dst}: truncated-ip - ${total - (wire - 14)} bytes missing!`), hosts };
  const protocol = b[9];
  const frag = u16(b, 6);
  const offset = (frag & 0x1fff) * 8;
  const payloadLength = total - ihl;
  if (offset !== 0) {
    return { text: `IP ${src} > ${dst}: ${protoName(protocol)} fragment, offset ${offset}, length ${payloadLength}`, proto: 'ip', hosts, ports: [] };
  }
  // What was captured of the payload (it may be less than payloadLength).
  const p = b.subarray(Math.min(ihl, b.length), Math.min(total, b.length));
  if (protocol === 1) return icmp(p, src, dst, payloadLength);
  if (protocol === 17) return udp(p, src, dst, payloadLength);
  if (protocol === 6) return tcp(p, src, dst, payloadLength);
  return { text: `IP ${src} > ${dst}: ${protoName(protocol)} ${payloadLength}`, proto: 'ip', hosts, ports: [] };
}

function protoName(p: number): string {
  return p === 1 ? 'ICMP' : p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 2 ? 'IGMP' : `ip-proto-${p}`;
}

const ICMP_UNREACH: Record<number, string> = {
  0: 'net unreachable', 1: 'host unreachable', 2: 'protocol unreachable', 3: 'port unreachable', 4: 'need to frag', 13: 'administratively prohibited',
};

/** RFC 792. */
function icmp(b: Uint8Array, src: string, dst: string, length: number): PacketSummary {
  const head = `IP ${src} > ${dst}: ICMP`;
  const hosts = [src, dst];
  if (length < 8 || b.length < 8) return { text: `${head} [|icmp], length ${length}`, proto: b.length < 8 && length >= 8 ? 'icmp' : 'malformed', hosts, ports: [] };
  const type = b[0];
  const code = b[1];
  if (type === 8 || type === 0) {
    return { text: `${head} echo ${type === 8 ? 'request' : 'reply'}, id ${u16(b, 4)}, seq ${u16(b, 6)}, length ${length}`, proto: 'icmp', hosts, ports: [] };
  }
  if (type === 3) {
    // The quoted datagram: name what could not be reached, as tcpdump does.
    const q = b.subarray(8);
    let what: string;
    if (q.length >= 20 && q[0] >> 4 === 4) {
      const qihl = (q[0] & 0x0f) * 4;
      const qdst = ipToString(u32(q, 16));
      const qproto = q[9];
      if (code === 3 && q.length >= qihl + 4) what = `${qdst} ${qproto === 17 ? 'udp' : protoName(qproto).toLowerCase()} port ${u16(q, qihl + 2)} unreachable`;
      else what = `${qdst} ${ICMP_UNREACH[code] ?? `unreachable code ${code}`}`;
    } else {
      what = ICMP_UNREACH[code] ?? `unreachable code ${code}`;
    }
    return { text: `${head} ${what}, length ${length}`, proto: 'icmp', hosts, ports: [] };
  }
  if (type === 11) return { text: `${head} time exceeded in-transit, length ${length}`, proto: 'icmp', hosts, ports: [] };
  return { text: `${head} type-#${type}, length ${length}`, proto: 'icmp', hosts, ports: [] };
}

/** RFC 768, then DHCP (ports 67/68) and DNS (port 53) inside. */
function udp(b: Uint8Array, src: string, dst: string, length: number): PacketSummary {
  const hosts = [src, dst];
  if (length < 8) return { ...malformed(`IP ${src} > ${dst}: UDP [malformed: ${length} bytes, shorter than a UDP header]`), hosts };
  if (b.length < 8) return { text: `IP ${src} > ${dst}: [|udp]`, proto: 'udp', hosts, ports: [] };
  const sport = u16(b, 0);
  const dport = u16(b, 2);
  const ulen = u16(b, 4);
  const ports = [sport, dport];
  const head = `IP ${src}.${sport} > ${dst}.${dport}:`;
  if (ulen < 8 || ulen > length) return { ...malformed(`${head} UDP [malformed: length field ${ulen}, datagram ${length}]`), hosts, ports };
  const data = b.subarray(8, Math.min(ulen, b.length));
  const dataLength = ulen - 8;
  if ((sport === 67 || sport === 68) && (dport === 67 || dport === 68)) {
    return { text: `${head} ${dhcp(data, dataLength)}`, proto: 'udp', app: 'dhcp', hosts, ports };
  }
  if (sport === 53 || dport === 53) {
    return { text: `${head} ${dns(data, dataLength)}`, proto: 'udp', app: 'dns', hosts, ports };
  }
  return { text: `${head} UDP, length ${dataLength}`, proto: 'udp', hosts, ports };
}

const DHCP_TYPES = ['', 'Discover', 'Offer', 'Request', 'Decline', 'ACK', 'NAK', 'Release', 'Inform'];

/** RFC 2131/2132: the message type (option 53) and the addresses that matter. */
function dhcp(b: Uint8Array, length: number): string {
  if (b.length < 240) return `BOOTP/DHCP, [|bootp], length ${length}`;
  const op = b[0] === 1 ? 'Request' : b[0] === 2 ? 'Reply' : `op ${b[0]}`;
  const chaddr = macToString(b, 28);
  let text = `BOOTP/DHCP, ${op} ${b[0] === 1 ? 'from' : 'to'} ${chaddr}, xid 0x${u32(b, 4).toString(16).padStart(8, '0')}`;
  const yiaddr = u32(b, 16);
  if (yiaddr !== 0) text += `, Your-IP ${ipToString(yiaddr)}`;
  if (u32(b, 236) !== 0x63825363) return `${text}, length ${length}`;
  // Options: find 53 (message type), 50 (requested address), bounded by the captured bytes.
  let type = -1;
  let requested = -1;
  for (let i = 240; i < b.length;) {
    const code = b[i++];
    if (code === 0) continue;
    if (code === 255 || i >= b.length) break;
    const len = b[i++];
    if (code === 53 && len >= 1 && i < b.length) type = b[i];
    if (code === 50 && len === 4 && i + 4 <= b.length) requested = u32(b, i);
    i += len;
  }
  if (requested >= 0) text += `, Requested-IP ${ipToString(requested)}`;
  if (type >= 0) text += `, DHCP ${DHCP_TYPES[type] ?? `type ${type}`}`;
  return `${text}, length ${length}`;
}

const QTYPES: Record<number, string> = { 1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 255: 'ANY' };
const RCODES = ['', 'FormErr', 'ServFail', 'NXDomain', 'NotImp', 'Refused'];

/**
 * RFC 1035 §4.1, in tcpdump's shape: a query is `id[+] TYPE? name. (len)`, a response
 * `id[*] [rcode] an/ns/ar TYPE addr, ... (len)`. Names are read with compression
 * pointers, at most a few jumps, never beyond the captured bytes.
 */
function dns(b: Uint8Array, length: number): string {
  if (b.length < 12) return `[|domain] (${length})`;
  const id = u16(b, 0);
  const flags = u16(b, 2);
  const qd = u16(b, 4);
  const an = u16(b, 6);
  const ns = u16(b, 8);
  const ar = u16(b, 10);
  let off = 12;
  const name = (): string | null => {
    const labels: string[] = [];
    let o = off;
    let jumped = false;
    for (let hops = 0; hops < 16; hops++) {
      if (o >= b.length) return null;
      const len = b[o];
      if (len === 0) {
        if (!jumped) off = o + 1;
        return labels.length === 0 ? '.' : `${labels.join('.')}.`;
      }
      if ((len & 0xc0) === 0xc0) {
        if (o + 1 >= b.length) return null;
        if (!jumped) off = o + 2;
        jumped = true;
        o = ((len & 0x3f) << 8) | b[o + 1];
        continue;
      }
      if ((len & 0xc0) !== 0 || o + 1 + len > b.length) return null;
      labels.push(String.fromCharCode(...b.subarray(o + 1, o + 1 + len)));
      o += 1 + len;
    }
    return null;
  };
  const question = (): string | null => {
    const n = name();
    if (n === null || off + 4 > b.length) return null;
    const t = u16(b, off);
    off += 4;
    return `${QTYPES[t] ?? `Type${t}`}? ${n}`;
  };
  const response = (flags & 0x8000) !== 0;
  if (!response) {
    const q = qd > 0 ? question() : '';
    return `${id}${flags & 0x0100 ? '+' : ''} ${q ?? '[|domain]'} (${length})`;
  }
  const rcode = flags & 0x000f;
  let text = `${id}${flags & 0x0400 ? '*' : ''}${rcode ? ` ${RCODES[rcode] ?? `rcode ${rcode}`}` : ''} ${an}/${ns}/${ar}`;
  for (let i = 0; i < qd; i++) if (question() === null) return `${text} [|domain] (${length})`;
  const answers: string[] = [];
  for (let i = 0; i < an; i++) {
    const n = name();
    if (n === null || off + 10 > b.length) return `${text}${answers.length ? ` ${answers.join(', ')}` : ''} [|domain] (${length})`;
    const t = u16(b, off);
    const rdlen = u16(b, off + 8);
    off += 10;
    if (off + rdlen > b.length) return `${text}${answers.length ? ` ${answers.join(', ')}` : ''} [|domain] (${length})`;
    if (t === 1 && rdlen === 4) answers.push(`A ${ipToString(u32(b, off))}`);
    else if (t === 5) {
      const save = off;
      const cname = name();
      off = save;
      answers.push(`CNAME ${cname ?? '[|domain]'}`);
    } else answers.push(QTYPES[t] ?? `Type${t}`);
    off += rdlen;
  }
  if (answers.length > 0) text += ` ${answers.join(', ')}`;
  return `${text} (${length})`;
}

/**
 * RFC 9293 §3.1, printed as `tcpdump -S`: `Flags [S.], seq X[:Y], ack Z, win W, length N`,
 * with the first line of an HTTP request or response when the data starts with one.
 */
function tcp(b: Uint8Array, src: string, dst: string, length: number): PacketSummary {
  const hosts = [src, dst];
  if (length < 20) return { ...malformed(`IP ${src} > ${dst}: TCP [malformed: ${length} bytes, shorter than a TCP header]`), hosts };
  if (b.length < 20) return { text: `IP ${src} > ${dst}: [|tcp]`, proto: 'tcp', hosts, ports: [] };
  const sport = u16(b, 0);
  const dport = u16(b, 2);
  const ports = [sport, dport];
  const head = `IP ${src}.${sport} > ${dst}.${dport}:`;
  const doff = (b[12] >> 4) * 4;
  if (doff < 20 || doff > length) return { ...malformed(`${head} TCP [malformed: data offset ${doff} in a segment of ${length} bytes]`), hosts, ports };
  const seq = u32(b, 4);
  const ack = u32(b, 8);
  const flags = b[13];
  const win = u16(b, 14);
  const dataLength = length - doff;
  let text = `${head} Flags [${tcpFlags(flags)}]`;
  if (dataLength > 0 || (flags & (0x02 | 0x01 | 0x04)) !== 0) {
    text += `, seq ${seq}`;
    if (dataLength > 0) text += `:${(seq + dataLength) >>> 0}`;
  }
  if (flags & 0x10) text += `, ack ${ack}`;
  text += `, win ${win}`;
  const opts = doff > 20 && b.length >= doff ? tcpOptions(b.subarray(20, doff)) : '';
  if (opts) text += `, options [${opts}]`;
  text += `, length ${dataLength}`;
  const summary: PacketSummary = { text, proto: 'tcp', hosts, ports };
  if (dataLength > 0 && b.length > doff) {
    const line = httpLine(b.subarray(doff, Math.min(b.length, doff + dataLength)));
    if (line) {
      summary.text += `: HTTP: ${line}`;
      summary.app = 'http';
    }
  }
  return summary;
}

/** tcpdump's order and letters (print-tcp.c's tcp_flag_values): F S R P U E W, then '.' for ACK. */
function tcpFlags(f: number): string {
  let s = '';
  if (f & 0x01) s += 'F';
  if (f & 0x02) s += 'S';
  if (f & 0x04) s += 'R';
  if (f & 0x08) s += 'P';
  if (f & 0x20) s += 'U';
  if (f & 0x40) s += 'E';
  if (f & 0x80) s += 'W';
  if (f & 0x10) s += '.';
  return s || 'none';
}

function tcpOptions(o: Uint8Array): string {
  const out: string[] = [];
  for (let i = 0; i < o.length && out.length < 10;) {
    const kind = o[i];
    if (kind === 0) break;
    if (kind === 1) {
      out.push('nop');
      i++;
      continue;
    }
    if (i + 1 >= o.length) break;
    const len = o[i + 1];
    if (len < 2 || i + len > o.length) {
      out.push('bad opt');
      break;
    }
    if (kind === 2 && len === 4) out.push(`mss ${u16(o, i + 2)}`);
    else if (kind === 3 && len === 3) out.push(`wscale ${o[i + 2]}`);
    else if (kind === 4) out.push('sackOK');
    else if (kind === 8 && len === 10) out.push(`TS val ${u32(o, i + 2)} ecr ${u32(o, i + 6)}`);
    else out.push(`opt-${kind}`);
    i += len;
  }
  return out.join(',');
}

const HTTP_METHODS = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE) \S+ HTTP\/1\.[01]$|^HTTP\/1\.[01] \d{3}( .*)?$/;

/** The first line of the data when it is an HTTP/1.x request or status line. */
function httpLine(data: Uint8Array): string | null {
  const end = Math.min(data.length, 256);
  let line = '';
  for (let i = 0; i < end; i++) {
    const c = data[i];
    if (c === 13 || c === 10) break;
    if (c < 32 || c > 126) return null;
    line += String.fromCharCode(c);
  }
  return HTTP_METHODS.test(line) ? line : null;
}

// -----------------------------------------------------------------------------------------
// Filters
// -----------------------------------------------------------------------------------------

/**
 * The packet list's filter: words that must all hold. `tcp`, `udp`, `arp`, `icmp`, `ip`,
 * `dhcp`, `dns`, `http` match the protocol; `port N` a UDP or TCP port either way; `host A`
 * an address either way; `not` negates the next word; anything else is a substring of the
 * line (case-insensitive). Empty: everything. Never throws.
 */
export function compileFilter(text: string): (s: PacketSummary) => boolean {
  const words = text.trim().toLowerCase().split(/\s+/).filter((w) => w.length > 0 && w !== 'and' && w !== '&&');
  const tests: ((s: PacketSummary) => boolean)[] = [];
  for (let i = 0; i < words.length; i++) {
    let negate = false;
    while (words[i] === 'not' || words[i] === '!') {
      negate = !negate;
      i++;
    }
    const w = words[i];
    if (w === undefined) break;
    let t: (s: PacketSummary) => boolean;
    if (w === 'tcp' || w === 'udp' || w === 'arp' || w === 'icmp') t = (s) => s.proto === w;
    else if (w === 'ip') t = (s) => s.proto === 'tcp' || s.proto === 'udp' || s.proto === 'icmp' || s.proto === 'ip';
    else if (w === 'ip6' || w === 'ipv6') t = (s) => s.proto === 'ipv6';
    else if (w === 'dhcp' || w === 'bootp' || w === 'dns' || w === 'http') {
      const app = w === 'bootp' ? 'dhcp' : w;
      t = (s) => s.app === app;
    } else if (w === 'malformed') t = (s) => s.proto === 'malformed';
    else if (w === 'port' && words[i + 1] !== undefined && /^\d+$/.test(words[i + 1])) {
      const port = Number(words[++i]);
      t = (s) => s.ports.includes(port);
    } else if (w === 'host' && words[i + 1] !== undefined) {
      const host = words[++i];
      t = (s) => s.hosts.includes(host);
    } else {
      t = (s) => s.text.toLowerCase().includes(w);
    }
    tests.push(negate ? (s) => !t(s) : t);
  }
  return (s) => tests.every((t) => t(s));
}
