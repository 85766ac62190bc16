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
  flowsOpened: number;
  flowsExpired: number;
  packetsOut: number;
  packetsIn: number;
  socketErrors: number;
  /** No flow could be opened (limit reached, or the host refused a socket). */
  refused: number;
}

export class UdpNat {
  readonly stats: UdpNatStats = { flowsOpened: 0, flowsExpired: 0, packetsOut: 0, packetsIn: 0, socketErrors: 0, refused: 0 };
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
      socket.onMessage = (data, address, port) => {
        if (this.flows.get(id) !== f) return;
        const src = this.mapPeer(f, address);
        if (src === null) return;
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
