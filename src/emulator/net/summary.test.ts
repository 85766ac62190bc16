import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { arpReplyFrame, arpRequestFrame, ethernetFrame, ipv4Frame, udpFrame } from './packets.ts';
import { compileFilter, summarizeFrame } from './summary.ts';
import { encodeTcpSegment, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from './tcp-segment.ts';
import { encodeIcmp } from './icmp.ts';
import { ipFromString, IPPROTO_ICMP, IPPROTO_TCP } from './ipv4.ts';
import { encodeDhcp, DHCPDISCOVER, DHCPACK, OPT_MESSAGE_TYPE, OPT_REQUESTED_IP, ipOption } from './dhcp.ts';
import { encodeDnsResponse, RCODE_NOERROR, RCODE_NXDOMAIN } from './dns.ts';
import { PcapWriter } from './pcap.ts';
import { SLIRP_MAC } from './user-net.ts';
import { BROADCAST_MAC } from './ethernet.ts';

const guestMac = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const routerMac = SLIRP_MAC;
const ip = (s: string) => ipFromString(s)!;
const GUEST = ip('10.0.2.15');
const HOST = ip('10.0.2.2');
const DNS = ip('10.0.2.3');

function tcpFrame(from: 'guest' | 'host', seg: Partial<TcpSegment> & { flags: number }): Uint8Array {
  const full: TcpSegment = { srcPort: 40000, dstPort: 80, seq: 1000, ack: 0, window: 64240, payload: new Uint8Array(0), ...seg };
  const [src, dst] = from === 'guest' ? [GUEST, HOST] : [HOST, GUEST];
  if (from === 'host') [full.srcPort, full.dstPort] = [seg.srcPort ?? 80, seg.dstPort ?? 40000];
  return ipv4Frame(from === 'guest' ? routerMac : guestMac, from === 'guest' ? guestMac : routerMac, {
    src, dst, protocol: IPPROTO_TCP, payload: encodeTcpSegment(full, src, dst), id: 1,
  });
}

function icmpEcho(type: 0 | 8, id: number, seq: number): Uint8Array {
  return ipv4Frame(routerMac, guestMac, {
    src: GUEST, dst: HOST, protocol: IPPROTO_ICMP, id: 7,
    payload: encodeIcmp({ type, code: 0, rest: ((id << 16) | seq) >>> 0, data: new Uint8Array(56) }),
  });
}

function dhcpFrame(type: number, yiaddr = 0, requested?: number): Uint8Array {
  const options = new Map<number, Uint8Array>([[OPT_MESSAGE_TYPE, Uint8Array.of(type)]]);
  if (requested !== undefined) options.set(OPT_REQUESTED_IP, ipOption(requested));
  const chaddr = new Uint8Array(16);
  chaddr.set(guestMac);
  const payload = encodeDhcp({
    op: type === DHCPACK ? 2 : 1, htype: 1, hlen: 6, xid: 0x12345678, secs: 0, flags: 0, ciaddr: 0, yiaddr, siaddr: 0, giaddr: 0,
    chaddr, sname: '', file: '', options,
  });
  return udpFrame({
    srcMac: guestMac, dstMac: BROADCAST_MAC, srcIp: type === DHCPACK ? HOST : 0, dstIp: 0xffffffff,
    srcPort: type === DHCPACK ? 67 : 68, dstPort: type === DHCPACK ? 68 : 67, payload,
  });
}

function dnsQuery(name: string): Uint8Array {
  const labels = name.split('.');
  const q = new Uint8Array(12 + labels.reduce((a, l) => a + l.length + 1, 1) + 4);
  q.set([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  let o = 12;
  for (const l of labels) {
    q[o++] = l.length;
    for (const c of l) q[o++] = c.charCodeAt(0);
  }
  q[o++] = 0;
  q.set([0, 1, 0, 1], o);
  return q;
}

const udp = (srcIp: number, dstIp: number, srcPort: number, dstPort: number, payload: Uint8Array) =>
  udpFrame({ srcMac: guestMac, dstMac: routerMac, srcIp, dstIp, srcPort, dstPort, payload });

describe('packet summaries', () => {
  it('ARP who-has and is-at', () => {
    expect(summarizeFrame(arpRequestFrame(guestMac, GUEST, HOST)).text).toBe('ARP, Request who-has 10.0.2.2 tell 10.0.2.15, length 46');
    expect(summarizeFrame(arpReplyFrame(routerMac, HOST, guestMac, GUEST)).text).toBe('ARP, Reply 10.0.2.2 is-at 52:55:0a:00:02:02, length 46');
  });

  it('ICMP echo with id and seq', () => {
    const s = summarizeFrame(icmpEcho(8, 0x1234, 3));
    expect(s.text).toBe('IP 10.0.2.15 > 10.0.2.2: ICMP echo request, id 4660, seq 3, length 64');
    expect(s.proto).toBe('icmp');
    expect(summarizeFrame(icmpEcho(0, 1, 0)).text).toContain('ICMP echo reply, id 1, seq 0');
  });

  it('TCP flags, seq/ack/win and lengths, as tcpdump -S prints them', () => {
    expect(summarizeFrame(tcpFrame('guest', { flags: TCP_SYN, mss: 1460 })).text)
      .toBe('IP 10.0.2.15.40000 > 10.0.2.2.80: Flags [S], seq 1000, win 64240, options [mss 1460], length 0');
    expect(summarizeFrame(tcpFrame('host', { flags: TCP_SYN | TCP_ACK, seq: 5000, ack: 1001, window: 65535 })).text)
      .toBe('IP 10.0.2.2.80 > 10.0.2.15.40000: Flags [S.], seq 5000, ack 1001, win 65535, length 0');
    expect(summarizeFrame(tcpFrame('guest', { flags: TCP_ACK, seq: 1001, ack: 5001 })).text)
      .toBe('IP 10.0.2.15.40000 > 10.0.2.2.80: Flags [.], ack 5001, win 64240, length 0');
    const get = new TextEncoder().encode('GET /e2e/blob.bin HTTP/1.1\r\nHost: 10.0.2.2\r\n\r\n');
    const s = summarizeFrame(tcpFrame('guest', { flags: TCP_PSH | TCP_ACK, seq: 1001, ack: 5001, payload: get }));
    expect(s.text).toBe(`IP 10.0.2.15.40000 > 10.0.2.2.80: Flags [P.], seq 1001:${1001 + get.length}, ack 5001, win 64240, length ${get.length}: HTTP: GET /e2e/blob.bin HTTP/1.1`);
    expect(s.app).toBe('http');
    expect(summarizeFrame(tcpFrame('host', { flags: TCP_PSH | TCP_ACK, seq: 5001, ack: 1049, payload: new TextEncoder().encode('HTTP/1.1 200 OK\r\n') })).text)
      .toContain('length 17: HTTP: HTTP/1.1 200 OK');
    expect(summarizeFrame(tcpFrame('guest', { flags: TCP_FIN | TCP_ACK, seq: 1049, ack: 9000 })).text).toContain('Flags [F.], seq 1049, ack 9000,');
    expect(summarizeFrame(tcpFrame('host', { flags: TCP_RST, seq: 7 })).text).toBe('IP 10.0.2.2.80 > 10.0.2.15.40000: Flags [R], seq 7, win 64240, length 0');
  });

  it('a TCP segment captured only in part keeps its lengths from the headers', () => {
    const frame = tcpFrame('host', { flags: TCP_ACK, seq: 1, ack: 2, payload: new Uint8Array(1460).fill(0x41) });
    const full = summarizeFrame(frame).text;
    expect(summarizeFrame(frame.subarray(0, 96), frame.length).text).toBe(full);
    expect(full).toContain('seq 1:1461, ack 2, win 64240, length 1460');
  });

  it('UDP ports, DHCP message types, DNS queries and answers', () => {
    expect(summarizeFrame(udp(GUEST, HOST, 5000, 7, new Uint8Array(10))).text).toBe('IP 10.0.2.15.5000 > 10.0.2.2.7: UDP, length 10');
    const discover = summarizeFrame(dhcpFrame(DHCPDISCOVER, 0, GUEST));
    expect(discover.text).toBe('IP 0.0.0.0.68 > 255.255.255.255.67: BOOTP/DHCP, Request from 52:54:00:12:34:56, xid 0x12345678, Requested-IP 10.0.2.15, DHCP Discover, length 300');
    expect(discover.app).toBe('dhcp');
    expect(summarizeFrame(dhcpFrame(DHCPACK, GUEST)).text).toContain('BOOTP/DHCP, Reply to 52:54:00:12:34:56, xid 0x12345678, Your-IP 10.0.2.15, DHCP ACK');
    const q = dnsQuery('example.org');
    expect(summarizeFrame(udp(GUEST, DNS, 43210, 53, q)).text).toBe(`IP 10.0.2.15.43210 > 10.0.2.3.53: 4660+ A? example.org. (${q.length})`);
    const answer = encodeDnsResponse(0x1234, 0x0100, RCODE_NOERROR, q.subarray(12), [ip('10.0.2.100'), ip('10.0.2.101')], 60);
    expect(summarizeFrame(udp(DNS, GUEST, 53, 43210, answer)).text).toBe(`IP 10.0.2.3.53 > 10.0.2.15.43210: 4660 2/0/0 A 10.0.2.100, A 10.0.2.101 (${answer.length})`);
    const nx = encodeDnsResponse(0x1234, 0x0100, RCODE_NXDOMAIN, q.subarray(12), [], 60);
    expect(summarizeFrame(udp(DNS, GUEST, 53, 43210, nx)).text).toContain('4660 NXDomain 0/0/0');
  });

  it('summarises malformed frames in words and never throws', () => {
    expect(summarizeFrame(new Uint8Array(5)).text).toMatch(/malformed: 5 bytes, shorter than an Ethernet header/);
    expect(summarizeFrame(new Uint8Array(5)).proto).toBe('malformed');
    const arp = arpRequestFrame(guestMac, GUEST, HOST).slice(0, 30);
    expect(summarizeFrame(arp).text).toMatch(/^ARP, \[malformed/);
    const ipShort = ethernetFrame(routerMac, guestMac, 0x0800, Uint8Array.of(0x45, 0, 0, 40), false);
    expect(summarizeFrame(ipShort).proto).toBe('malformed');
    // A DNS name whose compression pointer loops on itself.
    const loop = new Uint8Array(20);
    loop.set([0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12]);
    expect(summarizeFrame(udp(DNS, GUEST, 53, 1000, loop)).text).toContain('[|domain]');
    // 20,000 mangled frames (seeded): none throws, every one a line.
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const templates = [tcpFrame('guest', { flags: TCP_SYN, mss: 1460 }), dhcpFrame(DHCPDISCOVER), udp(DNS, GUEST, 53, 1000, encodeDnsResponse(1, 0, 0, dnsQuery('a.b').subarray(12), [1], 1)), icmpEcho(8, 1, 1)];
    for (let i = 0; i < 20000; i++) {
      const t = templates[i % templates.length];
      const f = t.slice(0, rnd() % (t.length + 1));
      for (let k = 0; k < 4; k++) if (f.length > 0) f[(rnd() << 8 | rnd()) % f.length] = rnd();
      const r = summarizeFrame(f, t.length);
      expect(typeof r.text).toBe('string');
      expect(r.text).not.toMatch(/summary failed/);
    }
  });

  it('filters by protocol, port, host, negation and substring', () => {
    const frames = [
      arpRequestFrame(guestMac, GUEST, HOST), icmpEcho(8, 1, 1), dhcpFrame(DHCPDISCOVER),
      udp(GUEST, DNS, 43210, 53, dnsQuery('example.org')), tcpFrame('guest', { flags: TCP_SYN }),
    ].map((f) => summarizeFrame(f));
    const pick = (f: string) => frames.filter(compileFilter(f)).map((s) => s.proto + (s.app ? `/${s.app}` : ''));
    expect(pick('')).toHaveLength(5);
    expect(pick('arp')).toEqual(['arp']);
    expect(pick('udp')).toEqual(['udp/dhcp', 'udp/dns']);
    expect(pick('port 67')).toEqual(['udp/dhcp']);
    expect(pick('tcp port 80')).toEqual(['tcp']);
    expect(pick('udp port 80')).toEqual([]);
    expect(pick('host 10.0.2.3')).toEqual(['udp/dns']);
    expect(pick('not arp not icmp ip')).toEqual(['udp/dhcp', 'udp/dns', 'tcp']);
    expect(pick('example')).toEqual(['udp/dns']);
    expect(pick('dhcp')).toEqual(['udp/dhcp']);
    expect(pick('port')).toEqual([]); // a bare word: a substring no line has
  });
});

/** Debian's tcpdump, when there, reads the same frames from a pcap: the lines must agree. */
const tcpdump = (() => {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!tcpdump)('against tcpdump -n -S', () => {
  it('prints ARP, ICMP, UDP and TCP lines as tcpdump does', () => {
    const get = new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n');
    const frames = [
      arpRequestFrame(guestMac, GUEST, HOST),
      arpReplyFrame(routerMac, HOST, guestMac, GUEST),
      icmpEcho(8, 0x1234, 3),
      icmpEcho(0, 0x1234, 3),
      udp(GUEST, HOST, 5000, 7, new Uint8Array(10)),
      tcpFrame('guest', { flags: TCP_SYN, mss: 1460 }),
      tcpFrame('host', { flags: TCP_SYN | TCP_ACK, seq: 5000, ack: 1001, window: 65535 }),
      tcpFrame('guest', { flags: TCP_ACK, seq: 1001, ack: 5001 }),
      tcpFrame('guest', { flags: TCP_PSH | TCP_ACK, seq: 1001, ack: 5001, payload: get }),
      tcpFrame('guest', { flags: TCP_FIN | TCP_ACK, seq: 1019, ack: 5001 }),
      tcpFrame('host', { flags: TCP_RST, seq: 7 }),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'summary-'));
    try {
      const chunks: Uint8Array[] = [];
      const w = new PcapWriter((c) => chunks.push(c));
      frames.forEach((f, i) => w.write(f, i * 1000));
      const file = join(dir, 'f.pcap');
      writeFileSync(file, Buffer.concat(chunks));
      const out = execFileSync('tcpdump', ['-n', '-S', '-t', '-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const lines = out.trim().split('\n');
      expect(lines).toEqual(frames.map((f) => summarizeFrame(f).text));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
