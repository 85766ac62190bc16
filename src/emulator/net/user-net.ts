/**
 * The user-mode router: QEMU's `-netdev user` (slirp), one port of the Ethernet switch.
 * It is everything the guest finds at 10.0.2.2 (router, DHCP, TFTP, the host's loopback)
 * and 10.0.2.3 (DNS), and the NAT that relays the guest's UDP and TCP flows through the
 * host's sockets (HostNetwork). Each protocol has its own file; this one parses frames,
 * dispatches them, and keeps the counters.
 *
 * Nothing a guest sends can throw out of `receive()`: every malformed or unwanted frame
 * is dropped and counted by reason in `stats.drops`.
 *
 * Deterministic: IP identifications, ephemeral ports and TCP initial sequence numbers
 * come from counters and the virtual clock, so a deterministic run sends the same bytes
 * every time.
 *
 * What it does not do (and says so in its counters): IPv6 (dropped, 'ipv6'); IP
 * fragments (dropped, 'ip-fragment': see ipv4.ts); ICMP to anything but its own
 * addresses (no unprivileged way to send it from Node or a browser: 'icmp-not-relayed',
 * no faked reply); multicast ('ip-multicast'); QEMU's guestfwd; DNS over TCP (RST).
 *
 * Files: arp.ts (neighbour table), ipv4.ts, icmp.ts, udp.ts, dhcp.ts (server), dns.ts
 * (forwarder), tftp.ts (server), udp-nat.ts (NAT and hostfwd=udp), tcp-nat.ts (relay
 * over tcp.ts, hostfwd=tcp), packets.ts (frame builders for tests and tools).
 */
import type { Clock } from '../bus/device.ts';
import { ArpTable, ARP_REPLY, ARP_REQUEST, encodeArp, parseArp } from './arp.ts';
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpServer, parseDhcp, type DhcpLease } from './dhcp.ts';
import { DNS_PORT, DnsForwarder } from './dns.ts';
import { BROADCAST_MAC, ETH_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, type FrameEndpoint } from './ethernet.ts';
import type { HostListener, HostNetwork, NetEvent } from './host.ts';
import {
  destinationUnreachable, echoReply, ICMP_ADMIN_PROHIBITED, ICMP_ECHO_REQUEST, ICMP_PORT_UNREACHABLE, ICMP_PROTOCOL_UNREACHABLE,
  isIcmpError, parseIcmp,
} from './icmp.ts';
import {
  encodeIpv4, ipFromString, ipToString, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_BROADCAST, parseCidr, parseIpv4, type Ipv4Packet,
} from './ipv4.ts';
import { ethernetFrame } from './packets.ts';
import { TcpNat, type TcpNatStats } from './tcp-nat.ts';
import { TFTP_PORT, TftpServer, type TftpFiles, type TftpStats } from './tftp.ts';
import { encodeUdp, parseUdp } from './udp.ts';
import { UdpHostForward, UdpNat, type UdpNatStats } from './udp-nat.ts';
import type { DhcpStats } from './dhcp.ts';
import type { DnsStats } from './dns.ts';

export type { TftpFiles } from './tftp.ts';

export interface HostForward {
  protocol: 'tcp' | 'udp';
  /** Host address to listen on ('' or absent: what the HostNetwork takes as "any"). */
  hostAddress: string;
  hostPort: number;
  /** Guest address; default the first DHCP lease (10.0.2.15). */
  guestAddress?: string;
  guestPort: number;
}

export interface UserNetOptions {
  /** "10.0.2.0/24" */
  net?: string;
  /** Router and host address, "10.0.2.2". */
  host?: string;
  /** "10.0.2.3" */
  dns?: string;
  /** "10.0.2.15" */
  dhcpStart?: string;
  /** QEMU's restrict=on: only the router's own services, hostfwd and the host's loopback. */
  restrict?: boolean;
  /** DHCP option 12 to the guest. */
  hostname?: string;
  hostfwd?: HostForward[];
  /** tftp=DIR: the CLI gives a reader over the folder. */
  tftp?: TftpFiles;
  /** bootfile=FILE: DHCP file field and option 67. */
  bootfile?: string;
  /** name -> IPv4 answered by the DNS forwarder itself (always, and only these when restricted). */
  hosts?: Record<string, string>;
  /** The router's MAC (slirp's: 52:55:0a:00:02:02). */
  mac?: Uint8Array;
}

/** slirp's router MAC: 52:55 then the router's address (10.0.2.2). */
export const SLIRP_MAC = Uint8Array.of(0x52, 0x55, 0x0a, 0x00, 0x02, 0x02);

/** Ephemeral ports the router uses as 10.0.2.2's source (RFC 6335 §6: 49152-65535). */
const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_LAST = 65535;

export interface UserNetStats {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  arpRequestsIn: number;
  arpRepliesOut: number;
  arpRequestsOut: number;
  icmpEchoReplies: number;
  icmpErrorsOut: number;
  udpIn: number;
  udpOut: number;
  dhcp: DhcpStats;
  dns: DnsStats;
  tftp: TftpStats;
  udpNat: UdpNatStats;
  tcp: TcpNatStats;
  /** hostfwd=udp: host peers (flows) and datagrams each way. */
  udpHostfwd: UdpNatStats;
  /** Frames and datagrams dropped, by reason ('ip-checksum', 'restricted', ...). */
  drops: Record<string, number>;
}

export class UserNetwork implements FrameEndpoint {
  /** Set by the integrator: frames from the router to the switch. */
  transmit: (frame: Uint8Array) => void = () => this.drop('no-link');
  /** Set by the integrator: what the host network reports in words (the page's network panel shows it). */
  onEvent: (event: NetEvent) => void = () => {};

  readonly mac: Uint8Array;
  readonly hostIp: number;
  readonly dnsIp: number;
  readonly network: number;
  readonly mask: number;
  readonly broadcastIp: number;
  readonly restricted: boolean;
  /** Where hostfwd sends by default: the first lease. */
  readonly defaultGuestIp: number;

  private readonly arp: ArpTable;
  private readonly dhcp: DhcpServer;
  private readonly dns: DnsForwarder;
  private readonly tftp: TftpServer | null;
  private readonly udpNat: UdpNat | null;
  private readonly tcp: TcpNat;
  private readonly forwards: HostForward[];
  private readonly listeners: HostListener[] = [];
  private readonly udpForwards: UdpHostForward[] = [];
  /** hostfwd=udp's counters (peers as flows), apart from the NAT's. */
  private readonly udpForwardStats: UdpNatStats = { active: 0, flowsOpened: 0, flowsExpired: 0, packetsOut: 0, packetsIn: 0, socketErrors: 0, refused: 0, unmappable: 0 };
  private readonly portsInUse = new Set<number>();
  private nextPort = EPHEMERAL_FIRST;
  private ipId = 0;
  private closed = false;
  private started = false;

  readonly stats: UserNetStats;
  /** The last internal error caught in receive() (counted as 'internal-error'), for diagnostics. */
  lastError: string | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly host: HostNetwork | null,
    options: UserNetOptions = {},
  ) {
    const cidr = parseCidr(options.net ?? '10.0.2.0/24');
    if (!cidr) throw new Error(`user network: net=${options.net} is not an IPv4 network like 10.0.2.0/24`);
    this.network = cidr.network;
    this.mask = cidr.mask;
    this.broadcastIp = (cidr.network | ~cidr.mask) >>> 0;
    const addr = (what: string, text: string | undefined, fallbackHost: number): number => {
      if (text === undefined) return (this.network | fallbackHost) >>> 0;
      const ip = ipFromString(text);
      if (ip === null || ((ip & this.mask) >>> 0) !== this.network) {
        throw new Error(`user network: ${what}=${text} is not an address in ${ipToString(this.network)}/${cidr.prefix}`);
      }
      return ip;
    };
    this.hostIp = addr('host', options.host, 2);
    this.dnsIp = addr('dns', options.dns, 3);
    this.defaultGuestIp = addr('dhcpstart', options.dhcpStart, 15);
    this.restricted = options.restrict ?? false;
    this.mac = (options.mac ?? SLIRP_MAC).slice(0, 6);
    this.forwards = options.hostfwd ?? [];
    if (host) host.onEvent = (event) => this.onEvent(event);

    const hosts = new Map<string, number>();
    for (const [name, text] of Object.entries(options.hosts ?? {})) {
      const ip = ipFromString(text);
      if (ip === null) throw new Error(`user network: hosts entry ${name}=${text} is not an IPv4 address`);
      hosts.set(name, ip);
    }

    this.arp = new ArpTable(
      clock,
      (ip) => this.sendArpRequest(ip),
      (mac, datagram) => this.sendFrame(mac, ETHERTYPE_IPV4, datagram),
      (reason, n) => this.drop(reason, n),
    );
    this.dhcp = new DhcpServer({
      server: this.hostIp,
      dns: this.dnsIp,
      network: this.network,
      mask: this.mask,
      poolStart: this.defaultGuestIp,
      reserved: [this.hostIp, this.dnsIp],
      hostname: options.hostname,
      tftp: options.tftp !== undefined,
      bootfile: options.bootfile,
    });
    const resolve = host && !this.restricted
      ? async (name: string) => (await host.resolve4(name)).map((a) => ipFromString(a)).filter((a): a is number => a !== null)
      : null;
    this.dns = new DnsForwarder(hosts, resolve);
    const ports = { allocate: () => this.allocatePort(), release: (p: number) => this.releasePort(p) };
    this.tftp = options.tftp
      ? new TftpServer(clock, options.tftp, (gIp, gPort, sPort, payload) => this.sendUdp(this.hostIp, sPort, gIp, gPort, payload), ports)
      : null;
    this.udpNat = host
      ? new UdpNat(clock, host, (src, sPort, gIp, gPort, payload) => this.sendUdp(src, sPort, gIp, gPort, payload), (flow, address) =>
          this.peerAddress(flow.dstIp, address))
      : null;
    this.tcp = new TcpNat(clock, host, {
      send: (src, dst, segment) => this.sendIp(src, dst, IPPROTO_TCP, segment),
      allocatePort: () => this.allocatePort(),
      releasePort: (p) => this.releasePort(p),
      hostAddressFor: (ip) => this.hostAddressFor(ip),
      // restrict=on: the host's loopback through 10.0.2.2 and nothing else.
      allowed: (ip) => !this.restricted || ip === this.hostIp,
      routerIp: this.hostIp,
    });

    this.stats = {
      framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, arpRequestsIn: 0, arpRepliesOut: 0, arpRequestsOut: 0, icmpEchoReplies: 0,
      icmpErrorsOut: 0, udpIn: 0, udpOut: 0, dhcp: this.dhcp.stats, dns: this.dns.stats,
      tftp: this.tftp?.stats ?? { active: 0, requests: 0, completed: 0, blocksSent: 0, retransmits: 0, timeouts: 0, notFound: 0, writeRefused: 0, errorsSent: 0, errorsReceived: 0, malformed: 0 },
      udpNat: this.udpNat?.stats ?? { active: 0, flowsOpened: 0, flowsExpired: 0, packetsOut: 0, packetsIn: 0, socketErrors: 0, refused: 0, unmappable: 0 },
      tcp: this.tcp.stats,
      udpHostfwd: this.udpForwardStats,
      drops: {},
    };
  }

  /**
   * Open the hostfwd listeners; rejects, naming the rule, when a port cannot be had (the
   * router is then closed, with what it had opened). Once only: later calls do nothing.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.forwards.length === 0) return;
    const host = this.host;
    if (!host) throw new Error('user network: hostfwd needs a host network, and this one has none');
    for (const f of this.forwards) {
      const guestIp = f.guestAddress ? ipFromString(f.guestAddress) : this.defaultGuestIp;
      const rule = `hostfwd=${f.protocol}:${f.hostAddress}:${f.hostPort}-${f.guestAddress ?? ''}:${f.guestPort}`;
      if (guestIp === null) throw new Error(`user network: ${rule}: the guest address is not an IPv4 address`);
      try {
        if (f.protocol === 'tcp') {
          this.listeners.push(await host.listenTcp(f.hostAddress, f.hostPort, (stream) => {
            if (this.closed) safely(() => stream.destroy());
            else this.tcp.accept(stream, guestIp, f.guestPort);
          }));
        } else {
          const socket = await host.listenUdp(f.hostAddress, f.hostPort);
          this.udpForwards.push(new UdpHostForward(
            this.clock, socket, guestIp, f.guestPort,
            { allocate: () => this.allocatePort(), release: (p) => this.releasePort(p) },
            (routerPort, gIp, gPort, payload) => this.sendUdp(this.hostIp, routerPort, gIp, gPort, payload),
            this.udpForwardStats,
          ));
        }
      } catch (e) {
        this.close();
        throw new Error(`user network: ${rule}: cannot listen: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
  }

  /** Close every host socket, listener, flow and timer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.listeners.splice(0)) safely(() => l.close());
    for (const f of this.udpForwards.splice(0)) f.close();
    this.tcp.close();
    this.udpNat?.close();
    this.tftp?.close();
    this.dns.close();
    this.arp.clear();
  }

  /** A frame from the switch. */
  receive(frame: Uint8Array): void {
    this.stats.framesIn++;
    this.stats.bytesIn += frame.length;
    if (this.closed) return this.drop('closed');
    try {
      this.dispatch(frame);
    } catch (e) {
      // A bug of ours, not the guest's: counted, and the frame is lost rather than the machine.
      this.drop('internal-error');
      this.lastError = e instanceof Error ? e.message : String(e);
    }
  }

  private dispatch(frame: Uint8Array): void {
    if (frame.length < ETH_HEADER) return this.drop('frame-short');
    // Frames for someone else (a NIC in promiscuous mode sees them, the router ignores them).
    if ((frame[0] & 1) === 0 && !sameMac(frame, 0, this.mac)) return this.drop('not-for-us');
    const type = (frame[12] << 8) | frame[13];
    const payload = frame.subarray(ETH_HEADER);
    if (type === ETHERTYPE_ARP) return this.arpIn(frame, payload);
    if (type === ETHERTYPE_IPV4) return this.ipIn(frame, payload);
    this.drop(type === 0x86dd ? 'ipv6' : 'ethertype');
  }

  private arpIn(frame: Uint8Array, payload: Uint8Array): void {
    const a = parseArp(payload);
    if (!a) return this.drop('arp-malformed');
    const src = frame.subarray(6, 12);
    if (this.onLink(a.spa) && !this.owns(a.spa)) this.arp.learn(a.spa, a.sha);
    if (a.oper === ARP_REQUEST) {
      this.stats.arpRequestsIn++;
      if (!this.owns(a.tpa)) return; // someone else's address: not ours to answer (slirp neither)
      this.stats.arpRepliesOut++;
      this.sendFrame(src, ETHERTYPE_ARP, encodeArp({ oper: ARP_REPLY, sha: this.mac, spa: a.tpa, tha: a.sha, tpa: a.spa }));
    } else if (a.oper !== ARP_REPLY) {
      this.drop('arp-oper');
    }
  }

  private ipIn(frame: Uint8Array, payload: Uint8Array): void {
    const ip = parseIpv4(payload);
    if (typeof ip === 'string') return this.drop(ip);
    // Only a DHCP client may speak from 0.0.0.0 (RFC 2131 §4.1); any other source must be
    // on the guest's network, or no answer could find its way back.
    if (ip.src === 0 ? ip.protocol !== IPPROTO_UDP : !this.onLink(ip.src) || this.owns(ip.src)) return this.drop('ip-source');
    // Learn the sender's MAC from its IP traffic too (slirp does): a guest that configured
    // itself statically may never ARP for us before we need to reach it.
    if (this.onLink(ip.src) && !this.owns(ip.src) && (frame[6] & 1) === 0) this.arp.learn(ip.src, frame.subarray(6, 12));
    const local = this.owns(ip.dst) || ip.dst === IPV4_BROADCAST || ip.dst === this.broadcastIp;
    if (!local && isMulticastIp(ip.dst)) return this.drop('ip-multicast'); // mDNS, SSDP, IGMP: nobody here to hear
    switch (ip.protocol) {
      case IPPROTO_UDP:
        return this.udpIn(ip, local);
      case IPPROTO_TCP:
        if (local && !this.owns(ip.dst)) return this.drop('tcp-broadcast');
        return this.tcp.input(ip);
      case IPPROTO_ICMP:
        return this.icmpIn(ip);
      default:
        if (this.owns(ip.dst)) this.sendIcmpError(ICMP_PROTOCOL_UNREACHABLE, ip);
        this.drop('ip-protocol');
    }
  }

  private icmpIn(ip: Ipv4Packet): void {
    const m = parseIcmp(ip.payload);
    if (!m) return this.drop('icmp-malformed');
    if (m.type !== ICMP_ECHO_REQUEST) return this.drop('icmp-type');
    if (!this.owns(ip.dst)) {
      // Node (and a browser) cannot send ICMP unprivileged: no reply is the honest answer;
      // echoing for any address (v86's way) would make ping prove nothing.
      return this.drop('icmp-not-relayed');
    }
    this.stats.icmpEchoReplies++;
    this.sendIp(ip.dst, ip.src, IPPROTO_ICMP, echoReply(m));
  }

  private udpIn(ip: Ipv4Packet, local: boolean): void {
    const u = parseUdp(ip.payload, ip.src, ip.dst);
    if (typeof u === 'string') return this.drop(u);
    this.stats.udpIn++;
    const broadcast = ip.dst === IPV4_BROADCAST || ip.dst === this.broadcastIp;
    if (local && u.dstPort === DHCP_SERVER_PORT && (broadcast || ip.dst === this.hostIp)) return this.dhcpIn(u.payload);
    if (broadcast) return this.drop('udp-broadcast');
    if (ip.src === 0) return this.drop('ip-source');
    if (ip.dst === this.dnsIp && u.dstPort === DNS_PORT) {
      const srcPort = u.srcPort;
      const guestIp = ip.src;
      this.dns.handle(u.payload, (response) => {
        if (!this.closed) this.sendUdp(this.dnsIp, DNS_PORT, guestIp, srcPort, response);
      });
      return;
    }
    if (ip.dst === this.hostIp) {
      if (this.tftp && u.dstPort === TFTP_PORT) return this.tftp.request(ip.src, u.srcPort, u.payload);
      if (this.tftp && this.tftp.input(u.dstPort, ip.src, u.srcPort, u.payload)) return;
      for (const f of this.udpForwards) if (f.fromGuest(u.dstPort, ip.src, u.srcPort, u.payload)) return;
    }
    if (this.owns(ip.dst) && ip.dst !== this.hostIp) {
      this.sendIcmpError(ICMP_PORT_UNREACHABLE, ip);
      return this.drop('udp-port-unreachable');
    }
    if (this.restricted && ip.dst !== this.hostIp) {
      this.sendIcmpError(ICMP_ADMIN_PROHIBITED, ip);
      return this.drop('restricted');
    }
    const hostAddress = this.hostAddressFor(ip.dst);
    if (!this.udpNat || hostAddress === null) {
      this.sendIcmpError(ICMP_PORT_UNREACHABLE, ip);
      return this.drop('udp-no-host');
    }
    if (!this.udpNat.send({ guestIp: ip.src, guestPort: u.srcPort, dstIp: ip.dst, dstPort: u.dstPort }, hostAddress, u.payload)) {
      this.sendIcmpError(ICMP_PORT_UNREACHABLE, ip);
      this.drop('udp-nat-refused');
    }
  }

  private dhcpIn(payload: Uint8Array): void {
    const m = parseDhcp(payload);
    if (!m) return this.drop('dhcp-malformed');
    const r = this.dhcp.handle(m, this.clock.now());
    if (!r) return;
    const udp = encodeUdp({ srcPort: DHCP_SERVER_PORT, dstPort: DHCP_CLIENT_PORT, payload: r.message }, this.hostIp, r.ip);
    const datagram = encodeIpv4({ src: this.hostIp, dst: r.ip, protocol: IPPROTO_UDP, payload: udp, id: this.nextId() });
    this.stats.udpOut++;
    // Before the lease the client has no address to ARP for: the reply goes to its chaddr
    // (or broadcast), never through the neighbour table.
    if (r.broadcast) this.sendFrame(BROADCAST_MAC, ETHERTYPE_IPV4, datagram);
    else this.sendFrame(m.chaddr.subarray(0, 6), ETHERTYPE_IPV4, datagram);
  }

  // --- Output ---

  sendUdp(srcIp: number, srcPort: number, dstIp: number, dstPort: number, payload: Uint8Array): void {
    this.stats.udpOut++;
    this.sendIp(srcIp, dstIp, IPPROTO_UDP, encodeUdp({ srcPort, dstPort, payload }, srcIp, dstIp));
  }

  private sendIp(src: number, dst: number, protocol: number, payload: Uint8Array): void {
    this.sendToGuest(dst, encodeIpv4({ src, dst, protocol, payload, id: this.nextId() }));
  }

  private sendToGuest(dst: number, datagram: Uint8Array): void {
    if (this.closed) return;
    if (!this.onLink(dst) || this.owns(dst)) return this.drop('no-route');
    this.arp.send(dst, datagram);
  }

  private sendIcmpError(code: number, ip: Ipv4Packet): void {
    // Never about an ICMP error, a broadcast, or a datagram from nobody (RFC 1122 §3.2.2).
    if (ip.protocol === IPPROTO_ICMP && isIcmpError(ip.payload[0] ?? 0)) return;
    if (ip.src === 0 || !this.onLink(ip.src)) return;
    this.stats.icmpErrorsOut++;
    this.sendIp(this.owns(ip.dst) ? ip.dst : this.hostIp, ip.src, IPPROTO_ICMP, destinationUnreachable(code, ip.datagram));
  }

  private sendArpRequest(ip: number): void {
    this.stats.arpRequestsOut++;
    this.sendFrame(BROADCAST_MAC, ETHERTYPE_ARP, encodeArp({ oper: ARP_REQUEST, sha: this.mac, spa: this.hostIp, tha: new Uint8Array(6), tpa: ip }));
  }

  private sendFrame(dst: Uint8Array, type: number, payload: Uint8Array): void {
    if (this.closed) return;
    const frame = ethernetFrame(dst, this.mac, type, payload);
    this.stats.framesOut++;
    this.stats.bytesOut += frame.length;
    this.transmit(frame);
  }

  // --- Addresses and ports ---

  /** An address the router answers for (10.0.2.2, 10.0.2.3). */
  owns(ip: number): boolean {
    return ip === this.hostIp || ip === this.dnsIp;
  }

  private onLink(ip: number): boolean {
    return ((ip & this.mask) >>> 0) === this.network && ip !== this.network && ip !== this.broadcastIp;
  }

  /** The host-side address for a guest destination: the loopback for 10.0.2.2, the address itself elsewhere. */
  private hostAddressFor(ip: number): string | null {
    if (ip === this.hostIp) return this.host?.loopback ?? null;
    if (this.owns(ip) || this.onLink(ip)) return null;
    return ipToString(ip);
  }

  /** The guest-visible source of a host peer's reply to a flow to `dstIp`. */
  private peerAddress(dstIp: number, address: string): number | null {
    if (dstIp === this.hostIp) return this.hostIp;
    // A dual-stack host socket names IPv4 peers as ::ffff:a.b.c.d.
    return ipFromString(address.replace(/^::ffff:/i, ''));
  }

  private allocatePort(): number | null {
    const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    for (let i = 0; i < span; i++) {
      const p = this.nextPort;
      this.nextPort = p === EPHEMERAL_LAST ? EPHEMERAL_FIRST : p + 1;
      if (!this.portsInUse.has(p)) {
        this.portsInUse.add(p);
        return p;
      }
    }
    return null;
  }

  private releasePort(p: number): void {
    this.portsInUse.delete(p);
  }

  private nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  private drop(reason: string, count = 1): void {
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + count;
  }

  /** Leases, neighbours and flows, for the UI and --stats. */
  describe(): {
    leases: { mac: string; ip: string; state: DhcpLease['state']; expiresNs: number; hostname?: string }[];
    neighbours: { ip: string; mac: string }[];
    udpFlows: { guest: string; destination: string; packetsOut: number; packetsIn: number }[];
    tcpFlows: ReturnType<TcpNat['describe']>;
    tftp: { guest: string; block: number; size: number }[];
  } {
    return {
      leases: this.dhcp.describe().map((l) => ({
        mac: l.mac, ip: ipToString(l.ip), state: l.state, expiresNs: l.expires, ...(l.hostname ? { hostname: l.hostname } : {}),
      })),
      neighbours: this.arp.describe().map((n) => ({ ip: ipToString(n.ip), mac: n.mac })),
      udpFlows: (this.udpNat?.describe() ?? []).map((f) => ({
        guest: `${ipToString(f.guestIp)}:${f.guestPort}`, destination: `${ipToString(f.dstIp)}:${f.dstPort}`, packetsOut: f.packetsOut, packetsIn: f.packetsIn,
      })),
      tcpFlows: this.tcp.describe(),
      tftp: (this.tftp?.describe() ?? []).map((t) => ({ guest: `${ipToString(t.guestIp)}:${t.guestPort}`, block: t.block, size: t.size })),
    };
  }
}

/** 224.0.0.0/4 (RFC 5771). */
function isMulticastIp(ip: number): boolean {
  return ip >>> 28 === 0xe;
}

function sameMac(frame: Uint8Array, offset: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (frame[offset + i] !== mac[i]) return false;
  return true;
}

function safely(f: () => void): void {
  try {
    f();
  } catch {
    // A host socket that fails while closing has nothing more to say.
  }
}
