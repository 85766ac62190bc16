/**
 * For tests: a guest's side of the wire to a UserNetwork. It sends frames built with
 * packets.ts and collects what the router transmits, decoded. Not a fake of the router:
 * every frame goes through UserNetwork.receive() and comes out of its transmit().
 */
import { VirtualClock } from '../machine/clock.ts';
import { defaultMac } from './ethernet.ts';
import { IPPROTO_UDP, encodeIpv4, type Ipv4Build } from './ipv4.ts';
import { arpRequestFrame, decodeFrame, ipv4Frame, udpFrame, type DecodedFrame } from './packets.ts';
import { UserNetwork, type UserNetOptions } from './user-net.ts';
import type { HostNetwork } from './host.ts';

export class TestGuest {
  private queue: Uint8Array[] = [];

  constructor(
    readonly net: UserNetwork,
    readonly mac: Uint8Array = defaultMac(0),
    public ip = 0,
  ) {
    net.transmit = (f) => {
      this.queue.push(f);
    };
  }

  /** Frames the router sent since the last call, decoded. */
  take(): DecodedFrame[] {
    const q = this.queue;
    this.queue = [];
    return q.map((f) => decodeFrame(f)!);
  }

  /** Raw frames the router sent since the last call. */
  takeRaw(): Uint8Array[] {
    const q = this.queue;
    this.queue = [];
    return q;
  }

  sendFrame(frame: Uint8Array): void {
    this.net.receive(frame);
  }

  arpFor(targetIp: number): void {
    this.net.receive(arpRequestFrame(this.mac, this.ip, targetIp));
  }

  sendIp(ip: Omit<Ipv4Build, 'src'> & { src?: number }, dstMac: Uint8Array = this.net.mac): void {
    this.net.receive(ipv4Frame(dstMac, this.mac, { src: this.ip, ...ip }));
  }

  sendUdp(dstIp: number, srcPort: number, dstPort: number, payload: Uint8Array, dstMac: Uint8Array = this.net.mac, srcIp = this.ip): void {
    this.net.receive(udpFrame({ srcMac: this.mac, dstMac, srcIp, dstIp, srcPort, dstPort, payload }));
  }

  /** A raw IPv4 datagram (for crafting broken ones). */
  static datagram(b: Ipv4Build): Uint8Array {
    return encodeIpv4({ ...b, protocol: b.protocol ?? IPPROTO_UDP });
  }
}

export function makeNet(options: UserNetOptions = {}, host: HostNetwork | null = null): { clock: VirtualClock; net: UserNetwork; guest: TestGuest } {
  const clock = new VirtualClock();
  const net = new UserNetwork(clock, host, { restrict: true, ...options });
  const guest = new TestGuest(net);
  return { clock, net, guest };
}
