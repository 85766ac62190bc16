import { describe, expect, it } from 'vitest';
import { ipFromString } from './ipv4.ts';
import { TCP_ACK, TCP_RST, TCP_SYN } from './tcp.ts';
import { makeNet } from './test-guest.ts';
import { concat, GuestTcpStack } from './test-guest-tcp.ts';
import { TCP_CONNECT_TIMEOUT_NS } from './tcp-nat.ts';
import { TestHost, type TestStream } from './test-host.ts';

const ip = (s: string) => ipFromString(s)!;
const ROUTER = ip('10.0.2.2');
const MS = 1_000_000;

function setup(options: Parameters<typeof makeNet>[0] = {}) {
  const host = new TestHost();
  const { clock, net } = makeNet({ restrict: true, ...options }, host);
  const guest = new GuestTcpStack(net, {}, clock);
  return { host, clock, net, guest };
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

describe('TCP NAT', () => {
  it('connects to the host first, then SYN-ACKs; relays data both ways; FIN both ways; the flow is removed', () => {
    const { host, net, guest } = setup();
    const c = guest.connect(ROUTER, 8080);
    guest.pump();
    // The SYN reached the router: a host connect to the loopback, and no answer yet.
    expect(host.connections.map((s) => [s.address, s.port])).toEqual([['127.0.0.1', 8080]]);
    expect(c.established).toBe(false);
    expect(net.stats.tcp.active).toBe(1);
    const s = host.connections[0];
    s.onConnect();
    guest.run(10 * MS);
    expect(c.established).toBe(true);
    expect(net.describe().tcpFlows).toMatchObject([{ guest: '10.0.2.15:40000', destination: '10.0.2.2:8080', state: 'ESTABLISHED' }]);

    // Guest -> host: 300 KiB, more than one window.
    const up = bytes(300 * 1024, 1);
    let off = 0;
    while (off < up.length) {
      off += c.ep.write(up.subarray(off));
      guest.run(5 * MS);
    }
    guest.run(100 * MS);
    expect(same(s.bytes, up)).toBe(true);

    // Host -> guest: 500 KiB in 64 KiB chunks, as a socket delivers it.
    const down = bytes(500 * 1024, 2);
    for (let i = 0; i < down.length; i += 65536) {
      s.onData(down.subarray(i, i + 65536));
      guest.run(2 * MS);
    }
    guest.run(100 * MS);
    expect(same(concat(c.received), down)).toBe(true);
    expect(net.stats.tcp.bytesToHost).toBe(up.length);
    expect(net.stats.tcp.bytesToGuest).toBe(down.length);

    // Guest half-closes: the host stream is ended; the host goes on sending, then ends.
    c.ep.close();
    guest.run(10 * MS);
    expect(s.ended).toBe(true);
    expect(s.destroyed).toBe(false);
    s.onData(Uint8Array.of(1, 2, 3));
    s.onEnd();
    guest.run(10 * MS);
    expect(c.remoteClosed).toBe(true);
    expect([...c.received[c.received.length - 1]]).toEqual([1, 2, 3]);
    s.onClose();
    guest.run(5000 * MS, 50 * MS); // past TIME-WAIT
    expect(c.closed).toBe('normal');
    expect(net.stats.tcp.active).toBe(0);
    expect(net.describe().tcpFlows).toEqual([]);
    expect(net.stats.tcp.opened).toBe(1);
    expect(net.stats.tcp.closedNormal).toBe(1);
  });

  it('answers RST (connection refused) when the host refuses, and never a SYN-ACK', () => {
    const { host, net, guest } = setup();
    const c = guest.connect(ROUTER, 9);
    guest.pump();
    host.connections[0].onClose('connect ECONNREFUSED 127.0.0.1:9');
    guest.pump();
    expect(c.closed).toBe('refused');
    expect(c.established).toBe(false);
    expect(net.stats.tcp.refused).toBe(1);
    expect(net.stats.tcp.active).toBe(0);
  });

  it('restricted: a SYN to 1.2.3.4 gets RST at once and no host connection', () => {
    const { host, net, guest } = setup({ restrict: true });
    guest.sendSegment(ip('1.2.3.4'), { srcPort: 5555, dstPort: 80, seq: 77, ack: 0, flags: TCP_SYN, window: 1000, payload: new Uint8Array(0) });
    guest.pump();
    expect(host.connections.length).toBe(0);
    expect(guest.stray.length).toBe(1);
    const { seg, src } = guest.stray[0];
    expect(src).toBe(ip('1.2.3.4'));
    expect(seg.flags).toBe(TCP_RST | TCP_ACK);
    expect(seg.ack).toBe(78);
    expect(seg.dstPort).toBe(5555);
    expect(net.stats.tcp.prohibited).toBe(1);
  });

  it('not restricted: a SYN to another address connects to that address', () => {
    const { host, guest } = setup({ restrict: false });
    guest.connect(ip('192.0.2.10'), 443);
    guest.pump();
    expect(host.connections.map((s) => [s.address, s.port])).toEqual([['192.0.2.10', 443]]);
  });

  it('answers RST to a segment of no connection', () => {
    const { guest } = setup();
    guest.sendSegment(ROUTER, { srcPort: 5556, dstPort: 80, seq: 5, ack: 12345, flags: TCP_ACK, window: 1000, payload: Uint8Array.of(1) });
    guest.pump();
    expect(guest.stray[0].seg).toMatchObject({ flags: TCP_RST, seq: 12345 });
  });

  it('a host reset becomes a guest RST; a guest RST destroys the host stream', () => {
    const { host, net, guest } = setup();
    const a = guest.connect(ROUTER, 1);
    const b = guest.connect(ROUTER, 2);
    guest.pump();
    host.connections.forEach((s) => s.onConnect());
    guest.run(10 * MS);
    host.connections[0].onClose('read ECONNRESET');
    guest.run(10 * MS);
    expect(a.closed).toBe('reset');
    b.ep.abort();
    guest.run(10 * MS);
    expect(host.connections[1].destroyed).toBe(true);
    expect(net.stats.tcp.active).toBe(0);
    expect(net.stats.tcp.aborted).toBe(2);
  });

  it('flow control guest -> host: a full host stream shrinks the window until onDrain', () => {
    const { host, guest } = setup();
    const c = guest.connect(ROUTER, 80);
    guest.pump();
    const s = host.connections[0];
    s.onConnect();
    guest.run(10 * MS);
    s.acceptWrites = false;
    const data = bytes(2 * 1024 * 1024, 3);
    let off = 0;
    for (let i = 0; i < 200 && off < data.length; i++) {
      off += c.ep.write(data.subarray(off));
      guest.run(20 * MS);
    }
    // The router took at most its receive buffer (256 KiB) beyond what the host accepted.
    const held = s.bytes.length;
    expect(held).toBeLessThan(600 * 1024);
    expect(held).toBeGreaterThan(0);
    // The host drains: the rest flows.
    s.acceptWrites = true;
    s.onDrain();
    for (let i = 0; i < 400 && off < data.length; i++) {
      off += c.ep.write(data.subarray(off));
      guest.run(20 * MS);
    }
    guest.run(500 * MS, 10 * MS);
    expect(same(s.bytes, data)).toBe(true);
  });

  it('flow control host -> guest: the host stream is paused while the guest does not read, resumed after', () => {
    const { host, guest } = setup();
    const c = guest.connect(ROUTER, 80, { receiveBuffer: 64 * 1024 });
    guest.pump();
    const s = host.connections[0];
    s.onConnect();
    guest.run(10 * MS);
    // The guest application stops reading: its window closes.
    c.ep.setReceiveBacklog(64 * 1024);
    const chunk = bytes(64 * 1024, 4);
    let pushed = 0;
    for (let i = 0; i < 20 && !s.paused; i++) {
      s.onData(chunk);
      pushed += chunk.length;
      guest.run(10 * MS);
    }
    expect(s.paused).toBe(true);
    // The guest reads again: the router's endpoint drains and the host is resumed.
    c.ep.setReceiveBacklog(0);
    guest.run(2000 * MS, 5 * MS);
    expect(s.paused).toBe(false);
    guest.run(2000 * MS, 10 * MS);
    expect(c.received.reduce((a, r) => a + r.length, 0)).toBe(pushed);
  });

  it('hostfwd: an accepted host connection ARPs for the guest, SYNs it from 10.0.2.2, and relays both ways', async () => {
    const { host, net, guest } = setup({ hostfwd: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8022, guestPort: 22 }] });
    await net.start();
    expect(host.tcpListeners.map((l) => [l.address, l.port])).toEqual([['127.0.0.1', 8022]]);
    guest.listening.add(22);
    const s: TestStream = host.tcpListeners[0].connect({ address: '127.0.0.1', port: 50000 });
    // Nothing from the host until the guest accepted.
    expect(s.paused).toBe(true);
    guest.run(10 * MS);
    const c = [...guest.conns.values()][0];
    expect(c.established).toBe(true);
    expect(net.describe().tcpFlows).toMatchObject([{ guest: '10.0.2.15:22', destination: '10.0.2.2:49152', hostfwd: true }]);
    expect(s.paused).toBe(false);
    s.onData(Uint8Array.of(104, 105));
    guest.run(10 * MS);
    expect([...concat(c.received)]).toEqual([104, 105]);
    c.ep.write(Uint8Array.of(111, 107));
    guest.run(100 * MS);
    expect([...s.bytes]).toEqual([111, 107]);
    expect(net.stats.tcp.forwarded).toBe(1);
    net.close();
    expect(host.tcpListeners[0].closed).toBe(true);
    expect(s.destroyed).toBe(true);
  });

  it('hostfwd to a guest that refuses: the host stream is destroyed', async () => {
    const { host, net, guest } = setup({ hostfwd: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80 }] });
    await net.start();
    const s = host.tcpListeners[0].connect({ address: '127.0.0.1', port: 50001 });
    guest.run(10 * MS);
    // Nobody listens on the guest's port 80: answer the SYN with RST as the guest's kernel would.
    const syn = guest.stray.find((x) => x.seg.flags === TCP_SYN)!.seg;
    guest.sendSegment(ROUTER, { srcPort: 80, dstPort: syn.srcPort, seq: 0, ack: (syn.seq + 1) >>> 0, flags: TCP_RST | TCP_ACK, window: 0, payload: new Uint8Array(0) });
    guest.run(10 * MS);
    expect(s.destroyed).toBe(true);
    expect(net.stats.tcp.active).toBe(0);
  });

  it('start() rejects with the rule named when the host port is taken', async () => {
    const host = new TestHost();
    host.takenPorts.add(8022);
    const { net } = makeNet({ hostfwd: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8022, guestPort: 22 }] }, host);
    await expect(net.start()).rejects.toThrow(/hostfwd=tcp:127.0.0.1:8022-:22: cannot listen: .*EADDRINUSE/);
  });


  it('a retransmitted SYN while the host connect is under way opens nothing more; a connect that never completes gets RST', () => {
    const { host, net, guest } = setup();
    const syn = { srcPort: 5557, dstPort: 81, seq: 500, ack: 0, flags: TCP_SYN, window: 1000, payload: new Uint8Array(0) };
    guest.sendSegment(ROUTER, syn);
    guest.sendSegment(ROUTER, syn);
    guest.pump();
    expect(host.connections.length).toBe(1);
    expect(guest.stray).toEqual([]);
    guest.run(TCP_CONNECT_TIMEOUT_NS + MS, 1000 * MS);
    expect(host.connections[0].destroyed).toBe(true);
    expect(guest.stray[0].seg).toMatchObject({ flags: TCP_RST | TCP_ACK, ack: 501 });
    expect(net.stats.tcp).toMatchObject({ connectTimeouts: 1, active: 0 });
  });

  it('restricted: TCP to the DNS address (no DNS over TCP) and to another guest address gets RST', () => {
    const { host, guest } = setup({ restrict: true });
    guest.sendSegment(ip('10.0.2.3'), { srcPort: 5558, dstPort: 53, seq: 1, ack: 0, flags: TCP_SYN, window: 1000, payload: new Uint8Array(0) });
    guest.sendSegment(ip('10.0.2.16'), { srcPort: 5559, dstPort: 22, seq: 1, ack: 0, flags: TCP_SYN, window: 1000, payload: new Uint8Array(0) });
    guest.pump();
    expect(host.connections.length).toBe(0);
    expect(guest.stray.map((x) => [x.src, x.seg.flags])).toEqual([[ip('10.0.2.3'), TCP_RST | TCP_ACK], [ip('10.0.2.16'), TCP_RST | TCP_ACK]]);
  });

  it('guest data after the host stream is gone is answered with RST', () => {
    const { host, net, guest } = setup();
    const c = guest.connect(ROUTER, 80);
    guest.pump();
    const s = host.connections[0];
    s.onConnect();
    guest.run(10 * MS);
    s.onData(Uint8Array.of(1));
    s.onEnd();
    s.onClose();
    guest.run(10 * MS);
    expect(c.remoteClosed).toBe(true);
    c.ep.write(Uint8Array.of(2, 3));
    guest.run(10 * MS);
    expect(c.closed).toBe('reset');
    expect(s.written).toEqual([]);
    expect(net.stats.tcp).toMatchObject({ dataAfterClose: 1, active: 0 });
  });
});
