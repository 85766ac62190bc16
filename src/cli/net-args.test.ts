import { describe, expect, it } from 'vitest';
import { buildNetworkConfig, NetArgError, parseHostfwd, splitOptions, type NetFlag } from './net-args.ts';
import { parseArgs, UsageError } from './args.ts';

const nic = (value: string): NetFlag => ({ flag: 'nic', value });
const error = (flags: NetFlag[]) => {
  try {
    buildNetworkConfig(flags);
  } catch (e) {
    expect(e).toBeInstanceOf(NetArgError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('QEMU network flags', () => {
  it('gives QEMU\'s default without any: one ne2k_pci on an unrestricted user network', () => {
    const c = buildNetworkConfig([]);
    expect(c.nics).toEqual([{ model: 'ne2k_pci', mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56), netdev: 'user.0' }]);
    expect(c.netdevs).toEqual([{ kind: 'user', id: 'user.0', restrict: false, hostfwd: [] }]);
  });

  it('splits options as QEMU does (",," is a comma, a bare key is on)', () => {
    expect(splitOptions('user,restrict,tftp=/a,,b,hostname=x')).toEqual({ type: 'user', opts: [['restrict', 'on'], ['tftp', '/a,b'], ['hostname', 'x']] });
  });

  it('reads -nic user with its options, and -nic none', () => {
    const c = buildNetworkConfig([nic('user,model=ne2k_isa,mac=52:54:00:aa:bb:cc,restrict=on,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-10.0.2.15:53,tftp=/srv,bootfile=boot.ipxe,dnsentry=host.test=10.0.2.2')]);
    expect(c.nics[0]).toMatchObject({ model: 'ne2k_isa', netdev: 'user.0' });
    expect(Array.from(c.nics[0].mac)).toEqual([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
    expect(c.netdevs[0]).toEqual({
      kind: 'user', id: 'user.0', restrict: true, tftpDir: '/srv', bootfile: 'boot.ipxe', hosts: { 'host.test': '10.0.2.2' },
      hostfwd: [
        { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80 },
        { protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 5353, guestAddress: '10.0.2.15', guestPort: 53 },
      ],
    });
    expect(buildNetworkConfig([nic('none')])).toEqual({ nics: [], netdevs: [] });
  });

  it('reads the socket netdev, the long form and the link-shaping keys', () => {
    const c = buildNetworkConfig([
      { flag: 'netdev', value: 'socket,id=lan,listen=:5555' },
      { flag: 'netdev', value: 'user,id=n1' },
      { flag: 'device', value: 'ne2k_pci,netdev=lan,mac=52:54:00:12:34:60,loss=5%,delay=2ms,rate=1M,lossseed=3' },
      { flag: 'device', value: 'ne2k_isa,netdev=n1,iobase=0x320,irq=10' },
    ]);
    expect(c.netdevs).toEqual([{ kind: 'socket', id: 'lan', listen: { address: '127.0.0.1', port: 5555 } }, { kind: 'user', id: 'n1', restrict: false, hostfwd: [] }]);
    expect(c.nics[0]).toMatchObject({ model: 'ne2k_pci', netdev: 'lan', shape: { loss: 0.05, delayNs: 2e6, bytesPerSecond: 1e6, seed: 3 } });
    expect(c.nics[1]).toMatchObject({ model: 'ne2k_isa', netdev: 'n1', iobase: 0x320, irq: 10 });
    expect(buildNetworkConfig([nic('socket,connect=localhost:1234')]).netdevs[0]).toEqual({ kind: 'socket', id: 'socket.0', connect: { address: '127.0.0.1', port: 1234 } });
  });

  it('reads the websocket relay netdev, -nic and -netdev forms, and refuses it without a ws:// URL; user,wisp=URL', () => {
    expect(buildNetworkConfig([nic('websocket,url=ws://127.0.0.1:8080/,mac=52:54:00:12:34:58')])).toEqual({
      netdevs: [{ kind: 'websocket', id: 'websocket.0', url: 'ws://127.0.0.1:8080/' }],
      nics: [{ model: 'ne2k_pci', mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x58), netdev: 'websocket.0' }],
    });
    const c = buildNetworkConfig([{ flag: 'netdev', value: 'websocket,id=r,url=wss://relay.example/lan?x=1,,2' }, { flag: 'device', value: 'ne2k_pci,netdev=r' }]);
    expect(c.netdevs).toEqual([{ kind: 'websocket', id: 'r', url: 'wss://relay.example/lan?x=1,2' }]);
    expect(error([nic('websocket')])).toMatch(/needs url=ws:/);
    expect(error([nic('websocket,url=http://x/')])).toMatch(/expected a ws:\/\/ or wss:\/\/ URL/);
    expect(error([nic('websocket,url=ws://x/,listen=:1')])).toMatch(/unknown option 'listen'/);
    expect(buildNetworkConfig([nic('user,restrict=on,wisp=wisp://127.0.0.1:8001/')]).netdevs[0]).toMatchObject({ kind: 'user', restrict: true, wisp: 'wisp://127.0.0.1:8001/' });
    expect(buildNetworkConfig([nic('user,fetch=http://127.0.0.1:8000')]).netdevs[0]).toMatchObject({ fetch: 'http://127.0.0.1:8000' });
    expect(error([nic('user,fetch=ftp://x/')])).toMatch(/expected an http:\/\/ or https:\/\/ origin/);
    expect(error([nic('user,wisp=http://x/')])).toMatch(/expected a wisp:\/\/, wss:\/\/ or ws:\/\/ URL/);
  });

  it('refuses what cannot work, saying which option', () => {
    expect(error([nic('tap,ifname=x')])).toMatch(/network type 'tap' is not supported/);
    expect(error([nic('user,model=e1000')])).toMatch(/NE2000 only/);
    expect(error([nic('user,mac=01:00:00:00:00:01')])).toMatch(/multicast/);
    expect(error([nic('user,hostfwd=tcp::99999-:80')])).toMatch(/not a port number/);
    expect(error([nic('user,bogus=1')])).toMatch(/unknown option 'bogus'/);
    expect(error([nic('socket')])).toMatch(/exactly one of listen/);
    expect(error([nic('user,loss=2')])).toMatch(/fraction/);
    expect(error([{ flag: 'device', value: 'ne2k_pci,netdev=nowhere' }])).toMatch(/no -netdev with that id/);
    expect(error([{ flag: 'netdev', value: 'user' }])).toMatch(/id= is required/);
    expect(error([nic('user'), nic('user,mac=52:54:00:12:34:56')])).toMatch(/same MAC/);
    expect(error([nic('none'), nic('user')])).toMatch(/cannot be combined/);
  });

  it('parses hostfwd as QEMU spells it', () => {
    expect(parseHostfwd('nic', '::8022-:22')).toEqual({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8022, guestPort: 22 });
    expect(parseHostfwd('nic', 'tcp:0.0.0.0:80-10.0.2.16:8080')).toEqual({ protocol: 'tcp', hostAddress: '0.0.0.0', hostPort: 80, guestAddress: '10.0.2.16', guestPort: 8080 });
    expect(() => parseHostfwd('nic', 'tcp:80-:80')).toThrow(NetArgError);
  });

  it('is part of the command line: --nic and QEMU\'s -nic, a usage error in plain words', () => {
    expect(parseArgs(['-nic', 'user,restrict=on', '--pcap', 'x.pcap']).net).toEqual([{ flag: 'nic', value: 'user,restrict=on' }]);
    expect(() => parseArgs(['-nic', 'user,model=rtl8139'])).toThrow(UsageError);
    expect(() => parseArgs(['--boot', 'n'])).not.toThrow();
  });
});
