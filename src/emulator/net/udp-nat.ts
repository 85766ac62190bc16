/**
 * UDP NAT: each guest flow (guest address and port, destination address and port) gets
 * a host UDP socket of its own, as slirp's udp_input does; what the host's socket
 * receives goes back to the guest from the address the guest sent to (10.0.2.2 for the
 * host's loopback). A flow idle for UDP_IDLE_NS is closed (slirp: SO_EXPIRE, 240 s; DNS
 * faster) so sockets do not pile up.
 */
import type { Clock, TimerId } from '../bus/device.ts';
import type { HostDatagramSocket, HostNetwork } from './host.ts';

export const UDP_IDLE_NS = 120_000_000_000;
/** Flows at once; a guest opening more gets ICMP errors, not unbounded host sockets. */
export const UDP_MAX_FLOWS = 256;

export interface UdpFlowKey {
  guestIp: number;
  guestPort: number;
  /** The destination as the guest addressed it (10.0.2.2 for loopback). */
  dstIp: number;
  dstPort: number;
}

interface Flow extends UdpFlowKey {
  socket: HostDatagramSocket;
  /** The host-side destination: host.loopback for 10.0.2.2, else the address itself. */
  hostAddress: string;
  lastActive: number;
  timer: TimerId;
  packetsOut: number;
  packetsIn: number;
}

export interface UdpNatStats {
  /** Flows open now. */
  active: number;
  flowsOpened: number;
  flowsExpired: number;
  packetsOut: number;
  packetsIn: number;
  socketErrors: number;
  /** No flow could be opened (limit reached, or the host refused a socket). */
  refused: number;
  /** Host datagrams from a source the guest cannot be shown (not IPv4). */
  unmappable: number;
}

export class UdpNat {
  readonly stats: UdpNatStats = { active: 0, flowsOpened: 0, flowsExpired: 0, packetsOut: 0, packetsIn: 0, socketErrors: 0, refused: 0, unmappable: 0 };
  private readonly flows = new Map<string, Flow>();

  constructor(
    private readonly clock: Clock,
    private readonly host: HostNetwork,
    /** Deliver a datagram to the guest: from srcIp:srcPort to guestIp:guestPort. */
    private readonly toGuest: (srcIp: number, srcPort: number, guestIp: number, guestPort: number, payload: Uint8Array) => void,
    /** The guest-visible address of a host peer's reply (loopback -> 10.0.2.2); null drops it. */
    private readonly mapPeer: (flow: UdpFlowKey, address: string) => number | null,
  ) {}

  get active(): number {
    return this.flows.size;
  }

  /** Send a guest datagram through the host; false when no flow could be had. */
  send(key: UdpFlowKey, hostAddress: string, payload: Uint8Array): boolean {
    const id = `${key.guestIp}:${key.guestPort}>${key.dstIp}:${key.dstPort}`;
    let flow = this.flows.get(id);
    if (!flow) {
      if (this.flows.size >= UDP_MAX_FLOWS) {
        this.stats.refused++;
        return false;
      }
      let socket: HostDatagramSocket;
      try {
        socket = this.host.openUdp();
      } catch {
        this.stats.refused++;
        return false;
      }
      const f: Flow = { ...key, socket, hostAddress, lastActive: this.clock.now(), timer: 0, packetsOut: 0, packetsIn: 0 };
      flow = f;
      this.flows.set(id, f);
      this.stats.flowsOpened++;
      this.stats.active = this.flows.size;
      socket.onMessage = (data, address, port) => {
        if (this.flows.get(id) !== f) return;
        const src = this.mapPeer(f, address);
        if (src === null) {
          this.stats.unmappable++;
          return;
        }
        f.lastActive = this.clock.now();
        f.packetsIn++;
        this.stats.packetsIn++;
        this.toGuest(src, port, f.guestIp, f.guestPort, data);
      };
      socket.onError = () => {
        this.stats.socketErrors++;
      };
      this.arm(id, f);
    }
    flow.lastActive = this.clock.now();
    flow.packetsOut++;
    this.stats.packetsOut++;
    try {
      flow.socket.send(payload, flow.hostAddress, key.dstPort);
    } catch {
      this.stats.socketErrors++;
    }
    return true;
  }

  private arm(id: string, f: Flow): void {
    f.timer = this.clock.setTimer(f.lastActive + UDP_IDLE_NS, () => {
      if (this.flows.get(id) !== f) return;
      if (this.clock.now() >= f.lastActive + UDP_IDLE_NS) {
        this.stats.flowsExpired++;
        this.drop(id, f);
      } else {
        this.arm(id, f);
      }
    });
  }

  private drop(id: string, f: Flow): void {
    this.clock.cancelTimer(f.timer);
    this.flows.delete(id);
    this.stats.active = this.flows.size;
    try {
      f.socket.close();
    } catch {
      this.stats.socketErrors++;
    }
  }

  close(): void {
    for (const [id, f] of [...this.flows]) this.drop(id, f);
  }

  describe(): { guestIp: number; guestPort: number; dstIp: number; dstPort: number; packetsOut: number; packetsIn: number }[] {
    return [...this.flows.values()].map((f) => ({
      guestIp: f.guestIp, guestPort: f.guestPort, dstIp: f.dstIp, dstPort: f.dstPort, packetsOut: f.packetsOut, packetsIn: f.packetsIn,
    }));
  }
}

/**
 * hostfwd=udp: datagrams arriving on a host port go to the guest from 10.0.2.2, each host
 * peer (address, port) standing behind a router port of its own, so the guest's replies
 * to that port find their way back to the peer. A peer idle for UDP_IDLE_NS is forgotten
 * and its router port released.
 */
export class UdpHostForward {
  private readonly peers = new Map<string, { routerPort: number; lastActive: number; timer: TimerId }>();
  private readonly byPort = new Map<number, { key: string; address: string; port: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly socket: HostDatagramSocket,
    private readonly guestIp: number,
    private readonly guestPort: number,
    private readonly ports: { allocate(): number | null; release(port: number): void },
    /** Deliver to the guest from 10.0.2.2:routerPort. */
    private readonly toGuest: (routerPort: number, guestIp: number, guestPort: number, payload: Uint8Array) => void,
    private readonly stats: UdpNatStats,
  ) {
    socket.onMessage = (data, address, port) => this.fromHost(data, address, port);
    socket.onError = () => {
      this.stats.socketErrors++;
    };
  }

  private fromHost(data: Uint8Array, address: string, port: number): void {
    const key = `${address}:${port}`;
    let peer = this.peers.get(key);
    if (!peer) {
      const routerPort = this.ports.allocate();
      if (routerPort === null) {
        this.stats.refused++;
        return;
      }
      const p = { routerPort, lastActive: this.clock.now(), timer: 0 };
      peer = p;
      this.peers.set(key, p);
      this.byPort.set(routerPort, { key, address, port });
      this.stats.flowsOpened++;
      this.stats.active++;
      this.arm(key, p);
    }
    peer.lastActive = this.clock.now();
    this.stats.packetsIn++;
    this.toGuest(peer.routerPort, this.guestIp, this.guestPort, data);
  }

  /** A guest datagram to 10.0.2.2:routerPort; false when no peer stands behind that port. */
  fromGuest(routerPort: number, guestIp: number, guestPort: number, payload: Uint8Array): boolean {
    const target = this.byPort.get(routerPort);
    if (!target || guestIp !== this.guestIp || guestPort !== this.guestPort) return false;
    const peer = this.peers.get(target.key);
    if (peer) peer.lastActive = this.clock.now();
    this.stats.packetsOut++;
    try {
      this.socket.send(payload, target.address, target.port);
    } catch {
      this.stats.socketErrors++;
    }
    return true;
  }

  private arm(key: string, p: { routerPort: number; lastActive: number; timer: TimerId }): void {
    p.timer = this.clock.setTimer(p.lastActive + UDP_IDLE_NS, () => {
      if (this.peers.get(key) !== p) return;
      if (this.clock.now() >= p.lastActive + UDP_IDLE_NS) {
        this.stats.flowsExpired++;
        this.stats.active--;
        this.peers.delete(key);
        this.byPort.delete(p.routerPort);
        this.ports.release(p.routerPort);
      } else {
        this.arm(key, p);
      }
    });
  }

  close(): void {
    for (const p of this.peers.values()) {
      this.clock.cancelTimer(p.timer);
      this.ports.release(p.routerPort);
    }
    this.stats.active -= this.peers.size;
    this.peers.clear();
    this.byPort.clear();
    try {
      this.socket.close();
    } catch {
      this.stats.socketErrors++;
    }
  }
}
