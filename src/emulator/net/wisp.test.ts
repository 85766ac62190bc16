/**
 * The Wisp client end to end: a guest's TCP and UDP through the real router and
 * WispHostNetwork, over a `ws` WebSocket, to the test Wisp server (src/cli/testing), which
 * reaches echo servers on 127.0.0.1 only. The server's misbehaving modes show what the
 * guest sees when a server is broken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { startTrapdoor, type TestProcess } from '../../cli/testing/process.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';
import { startWispServer, type WispServer, type WispServerOptions } from '../../cli/testing/wisp-server.ts';
import { nodeWebSocketFactory } from '../../cli/ws-factory.ts';
import type { NetEvent } from './host.ts';
import { ipFromString } from './ipv4.ts';
import { GuestTcpStack, ROUTER_IP, testBytes } from './test-guest-tcp.ts';
import { VirtualClock } from '../machine/clock.ts';
import { SyntheticNames, UpstreamSelector } from './upstream.ts';
import {
  decodeWisp, encodeWisp, infoPayload, parseConnect, parseInfo, WispHostNetwork, WISP_CONNECT, WISP_EXT_UDP, WISP_INFO, WISP_TCP,
} from './wisp.ts';

const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
let echo: net.Server;
let echoPort = 0;
let udpEcho: dgram.Socket;
let udpPort = 0;
let deadPort = 0;
const servers: WispServer[] = [];

beforeAll(async () => {
  echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  echoPort = await new Promise<number>((r) => echo.listen(0, '127.0.0.1', () => r((echo.address() as net.AddressInfo).port)));
  udpEcho = dgram.createSocket('udp4');
  udpEcho.on('message', (m, from) => udpEcho.send(Buffer.concat([Buffer.from('echo:'), m]), from.port, from.address));
  udpPort = await new Promise<number>((r) => udpEcho.bind(0, '127.0.0.1', () => r(udpEcho.address().port)));
  const tmp = net.createServer();
  deadPort = await new Promise<number>((r) => tmp.listen(0, '127.0.0.1', () => r((tmp.address() as net.AddressInfo).port)));
  await new Promise((r) => tmp.close(r));
});

afterAll(async () => {
  echo.close();
  udpEcho.close();
  for (const s of servers) await s.close();
});

async function setup(serverOptions: WispServerOptions = {}, clientOptions: { stallTimeoutNs?: number; viaSelector?: boolean } = {}) {
  const server = await startWispServer(serverOptions);
  servers.push(server);
  const names = new SyntheticNames();
  const clock = new VirtualClock();
  const wisp = new WispHostNetwork({ url: server.url.replace(/^ws:/, 'wisp:'), createWebSocket: nodeWebSocketFactory, clock, names, stallTimeoutNs: clientOptions.stallTimeoutNs });
  const guest = new GuestTcpStack(clientOptions.viaSelector === false ? wisp : new UpstreamSelector({ names, wisp }), {}, clock);
  const events: NetEvent[] = [];
  guest.net.onEvent = (e) => events.push(e);
  return { server, wisp, guest, events };
}

describe('the Wisp protocol\'s packets', () => {
  it('encode and decode: header, CONNECT, INFO with extensions; garbage is an error, not an exception', () => {
    const p = decodeWisp(encodeWisp(WISP_CONNECT, 0x01020304, Uint8Array.of(WISP_TCP, 0x50, 0x00, 0x61)));
    expect(p).toMatchObject({ type: WISP_CONNECT, stream: 0x01020304 });
    expect(parseConnect((p as { payload: Uint8Array }).payload)).toEqual({ streamType: WISP_TCP, port: 80, host: 'a' });
    expect(parseInfo(infoPayload(2, 0, [{ id: WISP_EXT_UDP, payload: new Uint8Array(0) }, { id: 4, payload: Uint8Array.of(104, 105) }]))).toEqual({
      major: 2, minor: 0, extensions: [{ id: WISP_EXT_UDP, payload: new Uint8Array(0) }, { id: 4, payload: Uint8Array.of(104, 105) }],
    });
    expect(decodeWisp(Uint8Array.of(2, 0, 0))).toMatch(/shorter than a Wisp header/);
    expect(parseInfo(Uint8Array.of(2, 0, 1, 9, 0, 0, 0))).toBeNull();
    expect(parseConnect(Uint8Array.of(1, 0, 0, 0xff))).toBeNull();
    expect(encodeWisp(WISP_INFO, 0).length).toBe(5);
  });
});

describe('Wisp: a guest\'s TCP and UDP through a Wisp server on loopback', () => {
  it('v2: the INFO handshake, then 1 MiB echoed through 10.0.2.2 with a small credit honoured end to end', async () => {
    const { server, wisp, guest } = await setup({ version: 2, credit: 8 });
    const data = testBytes(1 << 20, 3);
    const c = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => c.established, 10_000, 'the connection');
    c.send(data);
    await guest.until(() => c.receivedBytes >= data.length, 60_000, 'the echo of 1 MiB');
    expect(sha(c.bytes())).toBe(sha(data));
    expect(wisp.serverVersion).toEqual({ major: 2, minor: 0 });
    expect(wisp.serverExtensions).toContain(WISP_EXT_UDP);
    expect(server.stats.clientInfos).toBe(1);
    // The client never sent beyond its credit, and the server had to grant more many times.
    expect(server.stats.creditViolations).toBe(0);
    expect(server.stats.continues).toBeGreaterThan(20);
    c.ep.close();
    await guest.until(() => c.closed, 10_000, 'the close');
    expect(c.closed).toBe('normal');
    guest.close();
  });

  it('v2 in the draft\'s order (CONTINUE before INFO) works the same', async () => {
    const { server, wisp, guest } = await setup({ version: 2, infoAfterContinue: true });
    const c = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => c.established, 10_000, 'the connection');
    c.send(new TextEncoder().encode('draft order'));
    await guest.until(() => c.receivedBytes >= 11, 10_000, 'the echo');
    expect(wisp.serverVersion).toEqual({ major: 2, minor: 0 });
    expect(server.stats.clientInfos).toBe(1);
    guest.close();
  });

  it('v1: a server without INFO is spoken to as v1; half-close: the guest\'s FIN still lets the reply through', async () => {
    const { server, wisp, guest } = await setup({ version: 1 });
    const c = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => c.established, 10_000, 'the connection');
    c.send(new TextEncoder().encode('hello over wisp v1'));
    c.ep.close(); // FIN right after the data
    await guest.until(() => c.receivedBytes >= 18, 10_000, 'the echo after the FIN');
    expect(c.text()).toBe('hello over wisp v1');
    expect(wisp.serverVersion).toEqual({ major: 1, minor: 2 });
    expect(server.stats.clientInfos).toBe(0);
    guest.close();
  });

  it('DNS through the server: a name gets its own address and the server is asked for the name; a blocked name is refused with an event', async () => {
    const { server, guest, events } = await setup();
    const [a] = await guest.resolve('localhost');
    const [b] = await guest.resolve('example.com');
    expect(a).toMatch(/^198\.1[89]\./);
    expect(b).not.toBe(a);
    const c = guest.connect(ipFromString(a)!, echoPort);
    await guest.until(() => c.established, 10_000, 'the connection to localhost');
    c.send(new TextEncoder().encode('by name'));
    await guest.until(() => c.receivedBytes >= 7, 10_000, 'the echo');
    const d = guest.connect(ipFromString(b)!, 80);
    await guest.until(() => d.closed, 10_000, 'the refusal', 100_000);
    expect(d.closed).toBe('refused');
    expect(server.stats.refused).toBe(1);
    expect(events.find((e) => e.kind === 'wisp-stream-closed')?.message).toMatch(/blocked by the server.*refused/);
    guest.close();
  });

  it('a refused host connection is a refused guest connection; UDP goes through the server both ways', async () => {
    const { guest } = await setup();
    const c = guest.connect(ROUTER_IP, deadPort);
    await guest.until(() => c.closed, 10_000, 'the refusal', 100_000);
    expect(c.closed).toBe('refused');
    guest.sendUdp(ROUTER_IP, 7777, udpPort, new TextEncoder().encode('ping'));
    const r = await guest.until(() => guest.udp.find((u) => u.dstPort === 7777), 10_000, 'the UDP echo');
    expect(r.src).toBe(ROUTER_IP);
    expect(r.srcPort).toBe(udpPort);
    expect(new TextDecoder().decode(r.payload)).toBe('echo:ping');
    guest.close();
  });

  it('a server that sends garbage: the connection is dropped with an event, the guest refused, and the next connection works', async () => {
    const { wisp, guest, events } = await setup({ misbehave: 'garbage' });
    const c = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => c.closed, 10_000, 'the refusal');
    expect(c.closed).toBe('refused');
    expect(wisp.stats.textMessages).toBe(1);
    expect(wisp.stats.unknownType).toBe(1);
    expect(wisp.stats.malformed).toBe(1);
    expect(events.find((e) => e.kind === 'wisp-closed')?.message).toMatch(/malformed packet/);
    const d = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => d.established, 10_000, 'a new connection');
    d.send(new TextEncoder().encode('again'));
    await guest.until(() => d.receivedBytes >= 5, 10_000, 'its echo');
    expect(wisp.stats.connects).toBe(2);
    guest.close();
  });

  it('a server that closes mid-stream: the guest is reset and told why', async () => {
    const { guest, events } = await setup({ misbehave: 'close-mid-stream', closeAfterBytes: 200_000 });
    const c = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => c.established, 10_000, 'the connection');
    c.send(testBytes(1 << 20, 5));
    await guest.until(() => c.closed, 30_000, 'the reset');
    expect(c.closed).toBe('reset');
    expect(c.receivedBytes).toBeGreaterThan(0);
    expect(events.find((e) => e.kind === 'wisp-closed')?.message).toMatch(/closed the WebSocket.*1 connection reset/);
    guest.close();
  });

  it('a server that never grants credit: nothing is sent beyond it, the guest\'s window closes, then a reset after the stall timeout', async () => {
    const { server, wisp, guest, events } = await setup({ misbehave: 'no-credit' }, { stallTimeoutNs: 3e9 });
    const c = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => c.established, 10_000, 'the connection (confirmed by silence)');
    c.send(testBytes(256 << 10, 9));
    await guest.until(() => c.closed, 30_000, 'the reset', 5_000_000);
    expect(c.closed).toBe('reset');
    expect(server.stats.dataIn).toBe(0);
    expect(wisp.stats.stalls).toBe(1);
    expect(events.find((e) => e.kind === 'wisp-stalled')?.message).toMatch(/granted no buffer for 3 s/);
    guest.close();
  });

  it('a guest that stops reading while the server keeps sending: held up to 16 MiB, then a reset with an event', async () => {
    // A host server that sends 24 MiB as soon as it is connected, whatever the guest does.
    const flood = net.createServer((sock) => {
      sock.on('error', () => {});
      const chunk = Buffer.alloc(1 << 20, 0x33);
      let n = 0;
      const pump = () => {
        while (n < 24) {
          n++;
          if (!sock.write(chunk)) return sock.once('drain', pump);
        }
      };
      pump();
    });
    const floodPort = await new Promise<number>((r) => flood.listen(0, '127.0.0.1', () => r((flood.address() as net.AddressInfo).port)));
    try {
      const { guest, events, wisp } = await setup();
      const c = guest.connect(ROUTER_IP, floodPort);
      await guest.until(() => c.established, 10_000, 'the connection');
      // The guest's application reads nothing: its window closes.
      c.ep.setReceiveBacklog(1 << 30);
      await guest.until(() => c.closed, 60_000, 'the reset');
      expect(c.closed).toBe('reset');
      expect(c.receivedBytes).toBeLessThan(8 << 20);
      expect(events.find((e) => e.kind === 'wisp-overrun')?.message).toMatch(/has not read/);
      expect(wisp.state).toBe('open');
      guest.close();
    } finally {
      flood.close();
    }
  });

  it('a Wisp server that is not there: the guest is refused, an event says so', async () => {
    const names = new SyntheticNames();
    const clock = new VirtualClock();
    const wisp = new WispHostNetwork({ url: `ws://127.0.0.1:${deadPort}/`, createWebSocket: nodeWebSocketFactory, clock, names });
    const guest = new GuestTcpStack(new UpstreamSelector({ names, wisp }), {}, clock);
    const events: NetEvent[] = [];
    guest.net.onEvent = (e) => events.push(e);
    const c = guest.connect(ROUTER_IP, echoPort);
    await guest.until(() => c.closed, 10_000, 'the refusal');
    expect(c.closed).toBe('refused');
    expect(events.find((e) => e.kind === 'wisp-closed')?.message).toMatch(/failed|closed/);
    guest.close();
  });
});

const haveTiny = fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage'));

describe.skipIf(!haveTiny)('the CLI\'s router through Wisp (-nic user,wisp=URL)', { retry: 1 }, () => {
  it('tiny-linux moves 1 MiB each way through nc to a host echo server over the test Wisp server, with a small credit', { timeout: 240_000 }, async () => {
    const server = await startWispServer({ credit: 16 });
    servers.push(server);
    const p: TestProcess = startTrapdoor(['--image', 'tiny-linux', '-nic', `user,restrict=on,wisp=${server.url.replace(/^ws:/, 'wisp:')}`, '--timeout', '220']);
    try {
      const run = async (command: string, until: RegExp, ms = 60_000) => {
        const from = p.output().length;
        p.send(command + '\n');
        return p.waitFor(until, ms, from);
      };
      await p.waitFor(/TRAPDOOR GUEST READY/, 150_000);
      await run('udhcpc -i eth0 -q', /lease of 10\.0\.2\.15 obtained/);
      await run('dd if=/dev/urandom of=/tmp/a bs=1024 count=1024 2>/dev/null; echo MADE-$((1+1))', /MADE-2/);
      // The echo server never closes: the guest's FIN is held, and 5 s of silence close the stream.
      await run(`nc 10.0.2.2 ${echoPort} < /tmp/a > /tmp/b; echo NC-DONE $?`, /NC-DONE \d/, 150_000);
      const m = await run('sha256sum /tmp/a /tmp/b', /([0-9a-f]{64})\s+\/tmp\/a\r?\n([0-9a-f]{64})\s+\/tmp\/b/);
      expect(m[1]).toBe(m[2]);
      expect(server.stats.bytesIn).toBe(1 << 20);
      expect(server.stats.creditViolations).toBe(0);
      expect(server.stats.continues).toBeGreaterThan(10);
    } finally {
      p.kill();
    }
  });
});
