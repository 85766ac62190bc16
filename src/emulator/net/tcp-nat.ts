/**
 * TCP NAT: each guest connection is terminated by a real TCP endpoint (tcp.ts) whose
 * other side is a host stream (HostNetwork.connectTcp), and each hostfwd connection
 * accepted on the host becomes an active open to the guest. Bytes are relayed both
 * ways with flow control both ways:
 *
 * - host -> guest: what `TcpEndpoint.write()` does not take waits here and the host
 *   stream is paused until the endpoint says `writable()`;
 * - guest -> host: when `HostStream.write()` returns false, what is written from then on
 *   counts as the endpoint's receive backlog (its announced window shrinks) until the
 *   host's `onDrain`.
 *
 * Half-close both ways (the guest's FIN -> stream.end(), the host's end -> FIN after the
 * queued data), RST both ways (abort <-> destroy).
 *
 * The guest's SYN is answered only once the host connection is up: SYN-ACK then, or RST
 * when the host refused. QEMU's slirp answers the SYN first and resets later; doing it
 * this way the guest sees a true "connection refused", and no data is accepted that the
 * host could not take. The guest's own SYN retransmissions cover a slow connect.
 *
 * Flows are keyed by (guest address, guest port, destination address, destination port)
 * and removed when the endpoint reports closed().
 */
import type { Clock, TimerId } from '../bus/device.ts';
import type { HostStream, HostNetwork } from './host.ts';
import type { Ipv4Packet } from './ipv4.ts';
import { ipToString } from './ipv4.ts';
import {
  deriveIss, encodeTcpSegment, parseTcpSegment, resetFor, TCP_ACK, TCP_RST, TCP_SYN, TcpEndpoint, type TcpCloseReason, type TcpSegment,
} from './tcp.ts';

/** Flows at once; more SYNs are refused with RST. */
export const TCP_MAX_FLOWS = 1024;
/** A host connect that has not completed by then is given up (the guest gets RST). */
export const TCP_CONNECT_TIMEOUT_NS = 75_000_000_000;
/**
 * Keep-alive on the guest side (RFC 1122 §4.2.3.6, Linux's defaults: 2 h idle, 9 probes
 * 75 s apart): a guest that was reset or powered off mid-connection would otherwise pin
 * its flow and the host socket behind it for ever.
 */
export const TCP_KEEPALIVE = { idle: 7200e9, interval: 75e9, probes: 9 };

export interface TcpNatLink {
  /** Send a TCP segment (IPv4 payload) from srcIp to dstIp, a guest. */
  send(srcIp: number, dstIp: number, segment: Uint8Array): void;
  allocatePort(): number | null;
  releasePort(port: number): void;
  /** The host address a guest destination reaches, or null when none. */
  hostAddressFor(ip: number): string | null;
  /** May the guest open a connection to this address (restrict=on allows 10.0.2.2 only)? */
  allowed(ip: number): boolean;
  /** 10.0.2.2: the source of hostfwd connections. */
  routerIp: number;
}

export interface TcpNatStats {
  /** Flows now open (or connecting). */
  active: number;
  /** Guest connections relayed (host connect succeeded). */
  opened: number;
  /** hostfwd connections accepted on the host and offered to the guest. */
  forwarded: number;
  /** Host connects that failed: the guest got RST. */
  refused: number;
  /** SYNs refused by restrict=on, or to an address nothing serves. */
  prohibited: number;
  connectTimeouts: number;
  /** RSTs sent for segments of no flow. */
  resetsSent: number;
  /** Flows that ended by RST, either side. */
  aborted: number;
  /** How the guest-side endpoints ended, by tcp.ts's reason. */
  closedNormal: number;
  closedReset: number;
  closedTimeout: number;
  closedRefused: number;
  /** Of the endpoints that have ended: segments retransmitted, retransmission timeouts, segments dropped as unacceptable. */
  retransmits: number;
  timeouts: number;
  segmentsDropped: number;
  /** Bad checksum or header. */
  malformed: number;
  /** Guest data that arrived after the host stream was gone: answered with RST. */
  dataAfterClose: number;
  bytesToHost: number;
  bytesToGuest: number;
}

interface Flow {
  key: string;
  guestIp: number;
  guestPort: number;
  /** The address and port the guest talks to (the destination, or 10.0.2.2:ephemeral for hostfwd). */
  localIp: number;
  localPort: number;
  hostfwd: boolean;
  stream: HostStream;
  endpoint: TcpEndpoint | null;
  /** The guest's SYN while the host connect is under way. */
  syn: TcpSegment | null;
  connectTimer: TimerId;
  /** Host bytes the endpoint has not taken yet (its send buffer was full). */
  pending: Uint8Array[];
  hostPaused: boolean;
  hostEnded: boolean;
  /** The host stream is gone (onClose). */
  hostClosed: boolean;
  /** The host said write() false: bytes written since, not yet drained. */
  hostBacklog: number;
  hostBlocked: boolean;
  bytesToHost: number;
  bytesToGuest: number;
  done: boolean;
}

export class TcpNat {
  readonly stats: TcpNatStats = {
    active: 0, opened: 0, forwarded: 0, refused: 0, prohibited: 0, connectTimeouts: 0, resetsSent: 0, aborted: 0, closedNormal: 0, closedReset: 0,
    closedTimeout: 0, closedRefused: 0, retransmits: 0, timeouts: 0, segmentsDropped: 0, malformed: 0, dataAfterClose: 0, bytesToHost: 0, bytesToGuest: 0,
  };
  private readonly flows = new Map<string, Flow>();
  /** Connections made so far: mixed into each initial sequence number. */
  private serial = 0;

  constructor(
    private readonly clock: Clock,
    private readonly host: HostNetwork | null,
    private readonly link: TcpNatLink,
  ) {}

  /** A TCP segment from the guest (any destination but a broadcast). */
  input(ip: Ipv4Packet): void {
    const seg = parseTcpSegment(ip.payload, ip.src, ip.dst);
    if (!seg) {
      this.stats.malformed++;
      return;
    }
    const key = flowKey(ip.src, seg.srcPort, ip.dst, seg.dstPort);
    const flow = this.flows.get(key);
    if (flow) {
      if (flow.endpoint) {
        // A new SYN on a pair whose old connection lingers in TIME-WAIT may start afresh.
        if (!flow.endpoint.yieldToSyn(seg)) {
          flow.endpoint.input(seg);
          return;
        }
      } else {
        // Still connecting on the host: a retransmitted SYN waits with the first; a RST ends it.
        if (seg.flags & TCP_RST) this.finishConnecting(flow, null);
        return;
      }
    }
    if ((seg.flags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN) {
      this.reset(ip.dst, ip.src, seg);
      return;
    }
    this.open(ip, seg, key);
  }

  private open(ip: Ipv4Packet, syn: TcpSegment, key: string): void {
    const hostAddress = this.link.allowed(ip.dst) ? this.link.hostAddressFor(ip.dst) : null;
    if (!this.host || hostAddress === null) {
      this.stats.prohibited++;
      this.reset(ip.dst, ip.src, syn);
      return;
    }
    if (this.flows.size >= TCP_MAX_FLOWS) {
      this.stats.refused++;
      this.reset(ip.dst, ip.src, syn);
      return;
    }
    let stream: HostStream;
    try {
      stream = this.host.connectTcp(hostAddress, syn.dstPort);
    } catch {
      this.stats.refused++;
      this.reset(ip.dst, ip.src, syn);
      return;
    }
    const flow = this.newFlow(key, ip.src, syn.srcPort, ip.dst, syn.dstPort, stream, false);
    flow.syn = syn;
    flow.connectTimer = this.clock.setTimer(this.clock.now() + TCP_CONNECT_TIMEOUT_NS, () => {
      if (flow.done || flow.endpoint) return;
      this.stats.connectTimeouts++;
      safely(() => stream.destroy());
      this.finishConnecting(flow, syn);
    });
    stream.onConnect = () => {
      if (flow.done || flow.endpoint || !flow.syn) return;
      this.clock.cancelTimer(flow.connectTimer);
      this.stats.opened++;
      const ep = this.newEndpoint(flow);
      ep.acceptSyn(flow.syn);
      flow.syn = null;
    };
    this.wireStream(flow);
  }

  /** hostfwd: a connection accepted on the host becomes an active open from 10.0.2.2:ephemeral to the guest. */
  accept(stream: HostStream, guestIp: number, guestPort: number): void {
    const port = this.flows.size < TCP_MAX_FLOWS ? this.link.allocatePort() : null;
    if (port === null) {
      this.stats.refused++;
      safely(() => stream.destroy());
      return;
    }
    const key = flowKey(guestIp, guestPort, this.link.routerIp, port);
    const flow = this.newFlow(key, guestIp, guestPort, this.link.routerIp, port, stream, true);
    this.stats.forwarded++;
    // Nothing from the host until the guest has accepted.
    flow.hostPaused = true;
    safely(() => stream.pause());
    this.wireStream(flow);
    this.newEndpoint(flow).connect();
  }

  private newFlow(key: string, guestIp: number, guestPort: number, localIp: number, localPort: number, stream: HostStream, hostfwd: boolean): Flow {
    const flow: Flow = {
      key, guestIp, guestPort, localIp, localPort, hostfwd, stream, endpoint: null, syn: null, connectTimer: 0, pending: [], hostPaused: false,
      hostEnded: false, hostClosed: false, hostBacklog: 0, hostBlocked: false, bytesToHost: 0, bytesToGuest: 0, done: false,
    };
    this.flows.set(key, flow);
    this.stats.active = this.flows.size;
    return flow;
  }

  private newEndpoint(flow: Flow): TcpEndpoint {
    const local = { ip: flow.localIp, port: flow.localPort };
    const remote = { ip: flow.guestIp, port: flow.guestPort };
    // Deterministic: the addresses, the virtual time, and how many connections came before.
    const iss = (deriveIss(local, remote, this.clock.now()) + Math.imul(++this.serial, 0x9e3779b1)) >>> 0;
    const ep = new TcpEndpoint(this.clock, local, remote, {
      output: (seg) => this.link.send(flow.localIp, flow.guestIp, encodeTcpSegment(seg, flow.localIp, flow.guestIp)),
      established: () => this.pumpToGuest(flow),
      data: (bytes) => this.toHost(flow, bytes),
      remoteClosed: () => {
        if (!flow.hostClosed) safely(() => flow.stream.end());
      },
      writable: () => this.pumpToGuest(flow),
      closed: (reason) => this.endpointClosed(flow, reason),
    }, { iss, keepAlive: TCP_KEEPALIVE });
    flow.endpoint = ep;
    return ep;
  }

  private wireStream(flow: Flow): void {
    const s = flow.stream;
    s.onData = (data) => {
      if (flow.done) return;
      flow.pending.push(data);
      this.pumpToGuest(flow);
    };
    s.onEnd = () => {
      if (flow.done) return;
      flow.hostEnded = true;
      this.pumpToGuest(flow);
    };
    s.onDrain = () => {
      if (flow.done) return;
      flow.hostBlocked = false;
      flow.hostBacklog = 0;
      flow.endpoint?.setReceiveBacklog(0);
    };
    s.onClose = (error) => {
      if (flow.hostClosed) return;
      flow.hostClosed = true;
      if (flow.done) return;
      const ep = flow.endpoint;
      if (!ep) {
        // The connect failed: refuse the guest's SYN with RST.
        this.stats.refused++;
        this.finishConnecting(flow, flow.syn);
        return;
      }
      if (error !== undefined) {
        // The host peer reset (or the socket failed): RST to the guest, queued data dropped
        // (closed('reset') counts it).
        flow.pending = [];
        ep.abort();
      } else {
        flow.hostEnded = true;
        this.pumpToGuest(flow);
      }
    };
  }

  /** Host bytes into the endpoint as far as its send buffer goes; FIN once the host ended and all is in. */
  private pumpToGuest(flow: Flow): void {
    const ep = flow.endpoint;
    if (!ep || flow.done) return;
    const st = ep.state;
    if (st === 'SYN-SENT' || st === 'SYN-RECEIVED') {
      // established() pumps again; until then the host waits.
      if (flow.pending.length > 0 && !flow.hostPaused && !flow.hostClosed) {
        flow.hostPaused = true;
        safely(() => flow.stream.pause());
      }
      return;
    }
    while (flow.pending.length > 0) {
      const chunk = flow.pending[0];
      const n = ep.write(chunk);
      flow.bytesToGuest += n;
      this.stats.bytesToGuest += n;
      if (n < chunk.length) {
        flow.pending[0] = chunk.subarray(n);
        break;
      }
      flow.pending.shift();
    }
    const full = flow.pending.length > 0;
    if (full && !flow.hostPaused && !flow.hostClosed) {
      flow.hostPaused = true;
      safely(() => flow.stream.pause());
    } else if (!full && flow.hostPaused && !flow.hostClosed) {
      flow.hostPaused = false;
      safely(() => flow.stream.resume());
    }
    if (!full && flow.hostEnded) ep.close();
  }

  private toHost(flow: Flow, bytes: Uint8Array): void {
    if (flow.hostClosed) {
      // Nobody on the host can read it any more: RST, as a closed socket answers data
      // (RFC 9293 §3.6.1 "Half-Closed Connections": data lost, reset the peer).
      this.stats.dataAfterClose++;
      flow.endpoint?.abort();
      return;
    }
    flow.bytesToHost += bytes.length;
    this.stats.bytesToHost += bytes.length;
    let ok: boolean;
    try {
      ok = flow.stream.write(bytes);
    } catch {
      ok = true; // a failing socket reports itself through onClose
    }
    if (!ok || flow.hostBlocked) {
      // From now until onDrain, what the host holds shrinks the window we offer the guest.
      flow.hostBlocked = true;
      flow.hostBacklog += bytes.length;
      flow.endpoint?.setReceiveBacklog(flow.hostBacklog);
    }
  }

  private endpointClosed(flow: Flow, reason: TcpCloseReason): void {
    const s = this.stats;
    if (reason === 'normal') s.closedNormal++;
    else if (reason === 'reset') s.closedReset++;
    else if (reason === 'timeout') s.closedTimeout++;
    else s.closedRefused++;
    const es = flow.endpoint?.stats;
    if (es) {
      s.retransmits += es.retransmits;
      s.timeouts += es.timeouts;
      s.segmentsDropped += es.dropped;
    }
    if (reason !== 'normal') {
      if (reason === 'reset' || reason === 'refused') this.stats.aborted++;
      if (!flow.hostClosed) safely(() => flow.stream.destroy());
    } else if (!flow.hostClosed && !flow.hostEnded) {
      // Closed cleanly by the guest while the host had not ended: the host sees our FIN already.
      safely(() => flow.stream.end());
    }
    this.remove(flow);
  }

  /** A connect that never completed: RST for the guest's SYN (when there is one), flow gone. */
  private finishConnecting(flow: Flow, syn: TcpSegment | null): void {
    if (flow.done) return;
    if (syn) this.reset(flow.localIp, flow.guestIp, syn);
    if (!flow.hostClosed) safely(() => flow.stream.destroy());
    this.remove(flow);
  }

  private remove(flow: Flow): void {
    if (flow.done) return;
    flow.done = true;
    this.clock.cancelTimer(flow.connectTimer);
    flow.pending = [];
    if (this.flows.get(flow.key) === flow) this.flows.delete(flow.key);
    if (flow.hostfwd) this.link.releasePort(flow.localPort);
    this.stats.active = this.flows.size;
  }

  private reset(fromIp: number, toIp: number, seg: TcpSegment): void {
    const rst = resetFor(seg);
    if (!rst) return;
    this.stats.resetsSent++;
    this.link.send(fromIp, toIp, encodeTcpSegment(rst, fromIp, toIp));
  }

  /** Abort every flow: RST to the guest, destroy on the host. */
  close(): void {
    for (const flow of [...this.flows.values()]) {
      if (flow.endpoint) flow.endpoint.abort();
      if (!flow.hostClosed) safely(() => flow.stream.destroy());
      this.remove(flow);
    }
  }

  describe(): {
    guest: string; destination: string; hostfwd: boolean; state: string; bytesToHost: number; bytesToGuest: number; retransmits: number;
    /** The retransmission timeout now, ms. */
    rtoMs: number;
    /** Host bytes waiting for room in the endpoint's send buffer; the host stream is paused meanwhile. */
    pending: number;
    hostPaused: boolean;
  }[] {
    return [...this.flows.values()].map((f) => ({
      guest: `${ipToString(f.guestIp)}:${f.guestPort}`,
      destination: `${ipToString(f.localIp)}:${f.localPort}`,
      hostfwd: f.hostfwd,
      state: f.endpoint?.state ?? 'CONNECTING',
      bytesToHost: f.bytesToHost,
      bytesToGuest: f.bytesToGuest,
      retransmits: f.endpoint?.stats.retransmits ?? 0,
      rtoMs: (f.endpoint?.stats.rto ?? 0) / 1e6,
      pending: f.pending.reduce((a, p) => a + p.length, 0),
      hostPaused: f.hostPaused,
    }));
  }
}

function flowKey(guestIp: number, guestPort: number, dstIp: number, dstPort: number): string {
  return `${guestIp}:${guestPort}>${dstIp}:${dstPort}`;
}

function safely(f: () => void): void {
  try {
    f();
  } catch {
    // A host socket failing as we close it has nothing more to tell.
  }
}
