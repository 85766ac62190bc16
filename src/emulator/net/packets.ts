/**
 * Build and take apart whole Ethernet frames: what the router sends, and what tests
 * (the router's, the NE2000's, the switch's) use to craft a guest's traffic and read
 * the answers. Each layer's own codec lives in its file (ipv4.ts, arp.ts, udp.ts,
 * icmp.ts, dhcp.ts, dns.ts, tftp.ts); this file only stacks them.
 */
import { ARP_REPLY, ARP_REQUEST, encodeArp, parseArp, type ArpPacket } from './arp.ts';
import { BROADCAST_MAC, ETH_HEADER, ETH_MIN_FRAME, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from './ethernet.ts';
import { parseIcmp, type IcmpMessage } from './icmp.ts';
import { encodeIpv4, IPPROTO_ICMP, IPPROTO_UDP, parseIpv4, type Ipv4Build, type Ipv4Packet } from './ipv4.ts';
import { encodeUdp, parseUdp, type UdpDatagram } from './udp.ts';

/** Ethernet II frame; padded with zeros to the 60-byte minimum (IEEE 802.3 §4.2.3.3) unless `pad` is false. */
export function ethernetFrame(dst: Uint8Array, src: Uint8Array, etherType: number, payload: Uint8Array, pad = true): Uint8Array {
  const length = ETH_HEADER + payload.length;
  const f = new Uint8Array(pad ? Math.max(ETH_MIN_FRAME, length) : length);
  f.set(dst.subarray(0, 6), 0);
  f.set(src.subarray(0, 6), 6);
  f[12] = etherType >>> 8;
  f[13] = etherType & 0xff;
  f.set(payload, ETH_HEADER);
  return f;
}

export function ipv4Frame(dst: Uint8Array, src: Uint8Array, ip: Ipv4Build): Uint8Array {
  return ethernetFrame(dst, src, ETHERTYPE_IPV4, encodeIpv4(ip));
}

export interface UdpFrameSpec {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  srcIp: number;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  id?: number;
}

export function udpFrame(s: UdpFrameSpec): Uint8Array {
  const udp = encodeUdp({ srcPort: s.srcPort, dstPort: s.dstPort, payload: s.payload }, s.srcIp, s.dstIp);
  return ipv4Frame(s.dstMac, s.srcMac, { src: s.srcIp, dst: s.dstIp, protocol: IPPROTO_UDP, payload: udp, id: s.id ?? 0 });
}

/** "Who has `targetIp`? Tell `senderIp`": broadcast, as a host asks. */
export function arpRequestFrame(senderMac: Uint8Array, senderIp: number, targetIp: number): Uint8Array {
  const arp = encodeArp({ oper: ARP_REQUEST, sha: senderMac, spa: senderIp, tha: new Uint8Array(6), tpa: targetIp });
  return ethernetFrame(BROADCAST_MAC, senderMac, ETHERTYPE_ARP, arp);
}

export function arpReplyFrame(senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number): Uint8Array {
  const arp = encodeArp({ oper: ARP_REPLY, sha: senderMac, spa: senderIp, tha: targetMac, tpa: targetIp });
  return ethernetFrame(targetMac, senderMac, ETHERTYPE_ARP, arp);
}

/** A frame taken apart as far as it goes; fields stay undefined where a layer does not parse. */
export interface DecodedFrame {
  dst: Uint8Array;
  src: Uint8Array;
  etherType: number;
  arp?: ArpPacket;
  ip?: Ipv4Packet;
  udp?: UdpDatagram;
  icmp?: IcmpMessage;
}

export function decodeFrame(frame: Uint8Array): DecodedFrame | null {
  if (frame.length < ETH_HEADER) return null;
  const d: DecodedFrame = { dst: frame.slice(0, 6), src: frame.slice(6, 12), etherType: (frame[12] << 8) | frame[13] };
  const payload = frame.subarray(ETH_HEADER);
  if (d.etherType === ETHERTYPE_ARP) {
    d.arp = parseArp(payload) ?? undefined;
  } else if (d.etherType === ETHERTYPE_IPV4) {
    const ip = parseIpv4(payload);
    if (typeof ip === 'string') return d;
    d.ip = ip;
    if (ip.protocol === IPPROTO_UDP) {
      const u = parseUdp(ip.payload, ip.src, ip.dst);
      if (typeof u !== 'string') d.udp = u;
    } else if (ip.protocol === IPPROTO_ICMP) {
      d.icmp = parseIcmp(ip.payload) ?? undefined;
    }
  }
  return d;
}
