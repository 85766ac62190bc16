import { describe, expect, it } from 'vitest';
import {
  DHCPACK, DHCPDECLINE, DHCPDISCOVER, DHCPINFORM, DHCPNAK, DHCPOFFER, DHCPRELEASE, DHCPREQUEST, encodeDhcp, ipOption, OPT_BOOTFILE, OPT_BROADCAST,
  OPT_CLIENT_ID, OPT_DNS, OPT_HOSTNAME, OPT_IPXE, OPT_LEASE_TIME, OPT_MESSAGE_TYPE, OPT_PARAMETER_LIST, OPT_REQUESTED_IP, OPT_ROUTER,
  OPT_SERVER_ID, OPT_SUBNET_MASK, OPT_TFTP_SERVER, OPT_USER_CLASS, parseDhcp, textOption, type DhcpMessage,
} from './dhcp.ts';
import { BROADCAST_MAC, defaultMac, macToString } from './ethernet.ts';
import { ipFromString, readU32 } from './ipv4.ts';
import type { DecodedFrame } from './packets.ts';
import { makeNet, type TestGuest } from './test-guest.ts';

const ip = (s: string) => ipFromString(s)!;
const u32 = (b: Uint8Array | undefined) => (b ? readU32(b, 0) : undefined);
const text = (b: Uint8Array | undefined) => (b ? String.fromCharCode(...b) : undefined);

/** Options as busybox udhcpc 1.36 sends them (udhcpc -i eth0): client-id, max size, vendor, parameter list. */
function udhcpcOptions(mac: Uint8Array, type: number, extra: [number, Uint8Array][] = []): Map<number, Uint8Array> {
  return new Map<number, Uint8Array>([
    [OPT_MESSAGE_TYPE, Uint8Array.of(type)],
    [OPT_CLIENT_ID, Uint8Array.of(1, ...mac)],
    ...extra,
    [57, Uint8Array.of(0x02, 0x40)],
    [60, textOption('udhcp 1.36.1')],
    [OPT_PARAMETER_LIST, Uint8Array.of(1, 3, 6, 12, 15, 28, 42)],
  ]);
}

/** Options as iPXE sends them (net/udp/dhcp.c): user class "iPXE", PXE vendor class, its own 175 block, broadcast flag. */
function ipxeOptions(mac: Uint8Array, type: number, extra: [number, Uint8Array][] = []): Map<number, Uint8Array> {
  return new Map<number, Uint8Array>([
    [OPT_MESSAGE_TYPE, Uint8Array.of(type)],
    ...extra,
    [57, Uint8Array.of(0x05, 0xc0)],
    [93, Uint8Array.of(0, 0)],
    [94, Uint8Array.of(1, 2, 1)],
    [60, textOption('PXEClient:Arch:00000:UNDI:002001')],
    [OPT_USER_CLASS, textOption('iPXE')],
    [OPT_PARAMETER_LIST, Uint8Array.of(1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203)],
    [OPT_IPXE, Uint8Array.of(0xb1, 5, 1, 0x10, 0xec, 0x80, 0x29, 0xeb, 3, 1, 0, 0)],
    [OPT_CLIENT_ID, Uint8Array.of(1, ...mac)],
  ]);
}

function message(mac: Uint8Array, options: Map<number, Uint8Array>, fields: Partial<DhcpMessage> = {}): Uint8Array {
  const chaddr = new Uint8Array(16);
  chaddr.set(mac);
  return encodeDhcp({
    op: 1, htype: 1, hlen: 6, xid: 0x12345678, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr, sname: '', file: '',
    options, ...fields,
  });
}

/** Send from 0.0.0.0:68 to 255.255.255.255:67, broadcast, as a client without an address does. */
function send(guest: TestGuest, bytes: Uint8Array, srcIp = 0, dstIp = 0xffffffff): DecodedFrame[] {
  guest.sendUdp(dstIp, 68, 67, bytes, dstIp === 0xffffffff ? BROADCAST_MAC : guest.net.mac, srcIp);
  return guest.take();
}

function reply(frames: DecodedFrame[]): { frame: DecodedFrame; m: DhcpMessage } {
  expect(frames.length).toBe(1);
  const f = frames[0];
  expect(f.udp!.srcPort).toBe(67);
  expect(f.udp!.dstPort).toBe(68);
  expect(f.ip!.src).toBe(ip('10.0.2.2'));
  const m = parseDhcp(f.udp!.payload)!;
  expect(m.op).toBe(2);
  return { frame: f, m };
}

describe('DHCP', () => {
  it('gives udhcpc 10.0.2.15 with router, DNS, mask, broadcast, lease and server id (DISCOVER/OFFER/REQUEST/ACK)', () => {
    const { net, guest } = makeNet({ hostname: 'guest1' });
    const mac = guest.mac;
    const offer = reply(send(guest, message(mac, udhcpcOptions(mac, DHCPDISCOVER))));
    expect(offer.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPOFFER);
    expect(offer.m.yiaddr).toBe(ip('10.0.2.15'));
    expect(offer.m.xid).toBe(0x12345678);
    // No address yet: broadcast at both layers.
    expect(offer.frame.ip!.dst).toBe(0xffffffff);
    expect(macToString(offer.frame.dst)).toBe('ff:ff:ff:ff:ff:ff');
    const o = offer.m.options;
    expect(u32(o.get(OPT_SUBNET_MASK))).toBe(ip('255.255.255.0'));
    expect(u32(o.get(OPT_ROUTER))).toBe(ip('10.0.2.2'));
    expect(u32(o.get(OPT_DNS))).toBe(ip('10.0.2.3'));
    expect(u32(o.get(OPT_BROADCAST))).toBe(ip('10.0.2.255'));
    expect(u32(o.get(OPT_SERVER_ID))).toBe(ip('10.0.2.2'));
    expect(u32(o.get(OPT_LEASE_TIME))).toBe(86400);
    expect(text(o.get(OPT_HOSTNAME))).toBe('guest1');
    // No tftp/bootfile: no 66/67, no file, siaddr 0.
    expect(o.has(OPT_TFTP_SERVER)).toBe(false);
    expect(o.has(OPT_BOOTFILE)).toBe(false);
    expect(offer.m.siaddr).toBe(0);

    const ack = reply(send(guest, message(mac, udhcpcOptions(mac, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))], [OPT_SERVER_ID, ipOption(ip('10.0.2.2'))]]))));
    expect(ack.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPACK);
    expect(ack.m.yiaddr).toBe(ip('10.0.2.15'));
    expect(net.stats.dhcp.ack).toBe(1);
    expect(net.describe().leases).toMatchObject([{ mac: macToString(mac), ip: '10.0.2.15', state: 'bound' }]);
    expect(net.stats.dhcp.bound).toBe(1);
  });

  it('serves iPXE: broadcast flag honoured, siaddr and 66/67 for TFTP, the file field, and 175.176 no-pxedhcp = 1', () => {
    const { guest } = makeNet({ tftp: { read: () => null }, bootfile: 'boot.ipxe' });
    const mac = guest.mac;
    const offer = reply(send(guest, message(mac, ipxeOptions(mac, DHCPDISCOVER), { flags: 0x8000 })));
    expect(offer.m.flags).toBe(0x8000);
    expect(offer.m.yiaddr).toBe(ip('10.0.2.15'));
    expect(offer.m.siaddr).toBe(ip('10.0.2.2'));
    expect(offer.m.file).toBe('boot.ipxe');
    expect(text(offer.m.options.get(OPT_TFTP_SERVER))).toBe('10.0.2.2');
    expect(text(offer.m.options.get(OPT_BOOTFILE))).toBe('boot.ipxe');
    // Encapsulated: code 176, length 1, value 1.
    expect([...offer.m.options.get(OPT_IPXE)!]).toEqual([176, 1, 1]);
    const ack = reply(send(guest, message(mac, ipxeOptions(mac, DHCPREQUEST, [[OPT_SERVER_ID, ipOption(ip('10.0.2.2'))], [OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))]]), { flags: 0x8000 })));
    expect(ack.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPACK);
    expect(ack.m.file).toBe('boot.ipxe');
    expect(ack.m.siaddr).toBe(ip('10.0.2.2'));
  });

  it('gives two MACs two leases, and the same MAC its lease back (after RELEASE too, and without client-id)', () => {
    const { net, guest } = makeNet();
    const a = defaultMac(0);
    const b = defaultMac(1);
    const lease = (mac: Uint8Array, opts = udhcpcOptions) => {
      const offer = reply(send(guest, message(mac, opts(mac, DHCPDISCOVER))));
      const yi = offer.m.yiaddr;
      const ack = reply(send(guest, message(mac, opts(mac, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(yi)], [OPT_SERVER_ID, ipOption(ip('10.0.2.2'))]]))));
      expect(ack.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPACK);
      return ack.m.yiaddr;
    };
    expect(lease(a)).toBe(ip('10.0.2.15'));
    expect(lease(b)).toBe(ip('10.0.2.16'));
    expect(lease(a)).toBe(ip('10.0.2.15'));
    // iPXE, then Linux, then udhcpc on one PC: the same address each time.
    expect(lease(b, ipxeOptions)).toBe(ip('10.0.2.16'));
    send(guest, message(a, udhcpcOptions(a, DHCPRELEASE, [[OPT_SERVER_ID, ipOption(ip('10.0.2.2'))]]), { ciaddr: ip('10.0.2.15') }), ip('10.0.2.15'), ip('10.0.2.2'));
    expect(net.stats.dhcp.release).toBe(1);
    const noClientId = (_mac: Uint8Array, type: number, extra: [number, Uint8Array][] = []) =>
      new Map<number, Uint8Array>([[OPT_MESSAGE_TYPE, Uint8Array.of(type)], ...extra]);
    expect(lease(a, noClientId)).toBe(ip('10.0.2.15'));
    expect(net.describe().leases.filter((l) => l.state === 'bound').length).toBe(2);
  });

  it('NAKs a REQUEST for an address that is another client\'s, and ACKs INIT-REBOOT for a free one', () => {
    const { guest } = makeNet();
    const a = defaultMac(0);
    const b = defaultMac(1);
    reply(send(guest, message(a, udhcpcOptions(a, DHCPDISCOVER))));
    reply(send(guest, message(a, udhcpcOptions(a, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))], [OPT_SERVER_ID, ipOption(ip('10.0.2.2'))]]))));
    // b claims a's address (INIT-REBOOT: no server id, requested IP): NAK, broadcast.
    const nak = reply(send(guest, message(b, udhcpcOptions(b, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))]]))));
    expect(nak.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPNAK);
    expect(nak.m.yiaddr).toBe(0);
    expect(nak.frame.ip!.dst).toBe(0xffffffff);
    // b reboots remembering 10.0.2.40: free, so granted.
    const ok = reply(send(guest, message(b, udhcpcOptions(b, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.40'))]]))));
    expect(ok.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPACK);
    expect(ok.m.yiaddr).toBe(ip('10.0.2.40'));
    // An address outside the network: NAK.
    const wrong = reply(send(guest, message(b, udhcpcOptions(b, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('192.168.1.5'))]]))));
    expect(wrong.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPNAK);
  });

  it('RENEWING is unicast to ciaddr; INFORM gets options without a lease', () => {
    const { guest } = makeNet();
    guest.ip = ip('10.0.2.15');
    const a = guest.mac;
    reply(send(guest, message(a, udhcpcOptions(a, DHCPDISCOVER))));
    reply(send(guest, message(a, udhcpcOptions(a, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))], [OPT_SERVER_ID, ipOption(ip('10.0.2.2'))]]))));
    const renew = reply(send(guest, message(a, udhcpcOptions(a, DHCPREQUEST), { ciaddr: ip('10.0.2.15') }), ip('10.0.2.15'), ip('10.0.2.2')));
    expect(renew.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPACK);
    expect(renew.frame.ip!.dst).toBe(ip('10.0.2.15'));
    expect(macToString(renew.frame.dst)).toBe(macToString(a));
    const inform = reply(send(guest, message(a, udhcpcOptions(a, DHCPINFORM), { ciaddr: ip('10.0.2.15') }), ip('10.0.2.15'), ip('10.0.2.2')));
    expect(inform.m.options.get(OPT_MESSAGE_TYPE)![0]).toBe(DHCPACK);
    expect(inform.m.yiaddr).toBe(0);
    expect(inform.m.options.has(OPT_LEASE_TIME)).toBe(false);
    expect(u32(inform.m.options.get(OPT_DNS))).toBe(ip('10.0.2.3'));
  });

  it('stays silent for a REQUEST naming another server, and drops malformed messages, counted', () => {
    const { net, guest } = makeNet();
    const a = guest.mac;
    reply(send(guest, message(a, udhcpcOptions(a, DHCPDISCOVER))));
    expect(send(guest, message(a, udhcpcOptions(a, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))], [OPT_SERVER_ID, ipOption(ip('10.0.2.9'))]])))).toEqual([]);
    // Truncated, no magic cookie, an option running past the end, a BOOTREPLY.
    const good = message(a, udhcpcOptions(a, DHCPDISCOVER));
    expect(send(guest, good.subarray(0, 200))).toEqual([]);
    const noCookie = good.slice();
    noCookie[236] = 0;
    expect(send(guest, noCookie)).toEqual([]);
    const overrun = good.slice(0, 243);
    overrun[240] = 53;
    overrun[241] = 40;
    expect(send(guest, overrun)).toEqual([]);
    expect(send(guest, message(a, udhcpcOptions(a, DHCPDISCOVER), { op: 2 }))).toEqual([]);
    expect(net.stats.drops['dhcp-malformed']).toBe(3);
    expect(net.stats.dhcp.ignored).toBe(1);
  });

  it('runs out of addresses honestly: no OFFER, counted', () => {
    const { net, guest } = makeNet({ net: '10.0.2.0/28', dhcpStart: '10.0.2.12' });
    const got: number[] = [];
    for (let i = 0; i < 4; i++) {
      const mac = defaultMac(i);
      const frames = send(guest, message(mac, udhcpcOptions(mac, DHCPDISCOVER)));
      if (frames.length) got.push(parseDhcp(frames[0].udp!.payload)!.yiaddr);
    }
    // .12 .13 .14 (.15 is the /28's broadcast).
    expect(got).toEqual([ip('10.0.2.12'), ip('10.0.2.13'), ip('10.0.2.14')]);
    expect(net.stats.dhcp.poolExhausted).toBe(1);
  });

  it('never offers an address a client DECLINEd (in use by someone else)', () => {
    const { net, guest } = makeNet();
    const a = defaultMac(0);
    reply(send(guest, message(a, udhcpcOptions(a, DHCPDISCOVER))));
    reply(send(guest, message(a, udhcpcOptions(a, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))], [OPT_SERVER_ID, ipOption(ip('10.0.2.2'))]]))));
    expect(send(guest, message(a, udhcpcOptions(a, DHCPDECLINE, [[OPT_REQUESTED_IP, ipOption(ip('10.0.2.15'))], [OPT_SERVER_ID, ipOption(ip('10.0.2.2'))]])))).toEqual([]);
    expect(net.stats.dhcp.decline).toBe(1);
    const again = reply(send(guest, message(a, udhcpcOptions(a, DHCPDISCOVER))));
    expect(again.m.yiaddr).toBe(ip('10.0.2.16'));
  });
});
