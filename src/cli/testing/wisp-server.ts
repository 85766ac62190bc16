/**
 * A Wisp server (v1.2, or v2 with the UDP extension) for tests and benches, on Node's
 * sockets and the `ws` package. It reaches 127.0.0.1 (and "localhost") only: any other
 * destination is refused with CLOSE 0x48 (blocked), so a test can never leave the
 * machine.
 *
 * Flow control as protocol.md asks: every stream starts with `credit` packets; the
 * server grants more (CONTINUE) once all were used and what it holds for the TCP socket
 * has drained (and counts packets a client sends beyond its credit); from the socket to the client it pauses the socket while the
 * WebSocket has much unsent.
 *
 * Switches to misbehave, for the client's tests:
 * - 'garbage': answers its first CONNECT with a text message, a packet of an unknown
 *   type, then a 3-byte message that is no packet at all;
 * - 'close-mid-stream': drops the WebSocket (no CLOSE) after `closeAfterBytes` bytes
 *   went to the client;
 * - 'no-credit': announces a buffer of 0 packets and never grants any.
 *
 * By hand: `node bin/run.mjs src/cli/testing/wisp-server.ts --port 8001 [--v1] [--misbehave MODE]`.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { listening } from './ws-listen.ts';
import {
  decodeWisp, encodeWisp, infoPayload, parseConnect, parseInfo, u32Payload, WISP_CLOSE, WISP_CONNECT, WISP_CONTINUE, WISP_DATA,
  WISP_EXT_UDP, WISP_INFO, WISP_TCP, WISP_UDP,
} from '../../emulator/net/wisp.ts';

export type WispMisbehaviour = 'none' | 'garbage' | 'close-mid-stream' | 'no-credit';

export interface WispServerOptions {
  /** 0 (default): any free port. */
  port?: number;
  /** 2 (default) sends INFO; 1 does not. */
  version?: 1 | 2;
  /** Packets each stream may send before a CONTINUE (default 64). */
  credit?: number;
  misbehave?: WispMisbehaviour;
  /** For 'close-mid-stream' (default 256 KiB). */
  closeAfterBytes?: number;
  /** Offer UDP (default true). */
  udp?: boolean;
  /** v2 in the draft's order: CONTINUE, then INFO (default: INFO, the client's INFO, then CONTINUE). */
  infoAfterContinue?: boolean;
  log?: (line: string) => void;
}

export interface WispServerStats {
  connections: number;
  streams: number;
  refused: number;
  /** CONTINUE packets sent on streams (not the handshake's). */
  continues: number;
  dataIn: number;
  dataOut: number;
  bytesIn: number;
  bytesOut: number;
  /** INFO packets received from clients (v2 clients send one). */
  clientInfos: number;
  /** DATA packets a client sent beyond the credit it was granted (a client that does not honour CONTINUE). */
  creditViolations: number;
}

export interface WispServer {
  readonly port: number;
  /** ws://127.0.0.1:PORT/ */
  readonly url: string;
  readonly stats: WispServerStats;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost']);
/** Bytes unsent on the WebSocket before TCP sockets feeding it are paused. */
const WS_HIGH = 1 << 20;

export async function startWispServer(options: WispServerOptions = {}): Promise<WispServer> {
  const version = options.version ?? 2;
  const credit = options.misbehave === 'no-credit' ? 0 : options.credit ?? 64;
  const udp = options.udp ?? true;
  const log = options.log ?? (() => {});
  const stats: WispServerStats = { connections: 0, streams: 0, refused: 0, continues: 0, dataIn: 0, dataOut: 0, bytesIn: 0, bytesOut: 0, clientInfos: 0, creditViolations: 0 };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: options.port ?? 0 });
  // 'garbage' answers the first CONNECT the server ever gets; later connections are served.
  let garbageSent = false;

  wss.on('connection', (ws: WebSocket) => {
    stats.connections++;
    let sentBytes = 0;
    const streams = new Map<number, { kind: 'tcp'; socket: net.Socket; used: number; allowed: number } | { kind: 'udp'; socket: dgram.Socket; port: number }>();
    const paused = new Set<net.Socket>();
    const send = (type: number, id: number, payload?: Uint8Array) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(encodeWisp(type, id, payload));
    };
    const close = (id: number, reason: number) => {
      send(WISP_CLOSE, id, Uint8Array.of(reason));
      streams.delete(id);
    };
    // When the WebSocket has drained, the paused sockets may go on.
    const checkResume = () => {
      if (ws.bufferedAmount > WS_HIGH) return;
      for (const s of paused) s.resume();
      paused.clear();
    };
    const timer = setInterval(checkResume, 5);

    // v1: CONTINUE at once. v2 as released (wisp-js does it so): INFO, the client's INFO,
    // then CONTINUE; `infoAfterContinue` gives protocol.md's draft order (CONTINUE, INFO).
    const info = () => send(WISP_INFO, 0, infoPayload(2, 0, udp ? [{ id: WISP_EXT_UDP, payload: new Uint8Array(0) }] : []));
    let continueSent = false;
    const sendContinue = () => {
      if (continueSent) return;
      continueSent = true;
      send(WISP_CONTINUE, 0, u32Payload(credit));
    };
    if (version === 1 || options.infoAfterContinue) sendContinue();
    if (version === 2) info();

    const toClient = (id: number, data: Uint8Array, socket: net.Socket | null) => {
      for (let o = 0; o < data.length; o += 65536) {
        const chunk = data.subarray(o, o + 65536);
        send(WISP_DATA, id, chunk);
        stats.dataOut++;
        stats.bytesOut += chunk.length;
        sentBytes += chunk.length;
      }
      if (options.misbehave === 'close-mid-stream' && sentBytes >= (options.closeAfterBytes ?? 256 << 10)) {
        log('wisp-server: dropping the WebSocket mid-stream (misbehave)');
        ws.terminate();
        return;
      }
      if (socket && ws.bufferedAmount > WS_HIGH) {
        socket.pause();
        paused.add(socket);
      }
    };

    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      const p = decodeWisp(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
      if (typeof p === 'string') return;
      if (p.type === WISP_INFO && p.stream === 0) {
        if (parseInfo(p.payload)) stats.clientInfos++;
        if (version === 2) sendContinue();
        return;
      }
      if (p.type === WISP_CONNECT) {
        const c = parseConnect(p.payload);
        if (options.misbehave === 'garbage' && !garbageSent) {
          garbageSent = true;
          ws.send('this is not a Wisp packet');
          ws.send(encodeWisp(0x7e, p.stream, Uint8Array.of(1, 2, 3)));
          ws.send(Uint8Array.of(2, 1, 0));
          return;
        }
        if (!c || (c.streamType !== WISP_TCP && c.streamType !== WISP_UDP)) return close(p.stream, 0x41);
        if (!LOOPBACK.has(c.host.toLowerCase())) {
          stats.refused++;
          log(`wisp-server: refusing ${c.host}:${c.port} (loopback only)`);
          return close(p.stream, 0x48);
        }
        stats.streams++;
        const id = p.stream;
        if (c.streamType === WISP_UDP) {
          if (!udp) return close(id, 0x41);
          const socket = dgram.createSocket('udp4');
          // Only the destination's datagrams belong to the stream.
          socket.on('message', (m, from) => {
            if (from.port === c.port) toClient(id, new Uint8Array(m), null);
          });
          socket.on('error', () => close(id, 0x03));
          streams.set(id, { kind: 'udp', socket, port: c.port });
          return;
        }
        const socket = net.connect({ host: '127.0.0.1', port: c.port });
        const st = { kind: 'tcp' as const, socket, used: 0, allowed: credit };
        streams.set(id, st);
        socket.on('connect', () => {
          // What is left of the stream's buffer: the client's sign that the connect succeeded.
          if (credit > 0) {
            send(WISP_CONTINUE, id, u32Payload(Math.max(0, st.allowed)));
            stats.continues++;
          }
        });
        socket.on('data', (b: Buffer) => toClient(id, new Uint8Array(b.buffer, b.byteOffset, b.byteLength), socket));
        socket.on('drain', () => grant(id));
        socket.on('end', () => {
          if (streams.get(id) === st) close(id, 0x02);
        });
        socket.on('error', (e: NodeJS.ErrnoException) => {
          if (streams.get(id) !== st) return;
          close(id, e.code === 'ECONNREFUSED' ? 0x44 : e.code === 'ETIMEDOUT' ? 0x43 : 0x03);
        });
        socket.on('close', () => {
          paused.delete(socket);
          if (streams.get(id) === st) close(id, 0x02);
        });
        return;
      }
      const s = streams.get(p.stream);
      if (!s) return;
      if (p.type === WISP_DATA) {
        stats.dataIn++;
        stats.bytesIn += p.payload.length;
        if (s.kind === 'udp') {
          s.socket.send(p.payload, s.port, '127.0.0.1');
          return;
        }
        if (--s.allowed < 0) stats.creditViolations++;
        s.socket.write(p.payload.slice());
        s.used++;
        grant(p.stream);
      } else if (p.type === WISP_CLOSE) {
        streams.delete(p.stream);
        if (s.kind === 'udp') s.socket.close();
        else if (p.payload[0] === 0x02) s.socket.end();
        else s.socket.destroy();
      }
    });

    /**
     * CONTINUE once the whole buffer is used (protocol.md: "when it has received the same
     * number of packets ... as its own maximum buffer size") and the socket holds little:
     * granting earlier would race the client's packets already on the way.
     */
    function grant(id: number): void {
      const s = streams.get(id);
      if (!s || s.kind !== 'tcp' || credit === 0) return;
      if (s.allowed <= 0 && s.socket.writableLength < 256 << 10) {
        s.used = 0;
        s.allowed = credit;
        send(WISP_CONTINUE, id, u32Payload(credit));
        stats.continues++;
      }
    }

    ws.on('close', () => {
      clearInterval(timer);
      for (const s of streams.values()) {
        if (s.kind === 'udp') s.socket.close();
        else s.socket.destroy();
      }
      streams.clear();
    });
    ws.on('error', () => {});
  });

  return { ...(await listening(wss)), stats };
}

if (process.argv[1]?.endsWith('wisp-server.ts')) {
  const args = process.argv.slice(2);
  const get = (k: string) => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const server = await startWispServer({
    port: Number(get('--port') ?? 0),
    version: args.includes('--v1') ? 1 : 2,
    misbehave: (get('--misbehave') ?? 'none') as WispMisbehaviour,
    log: (l) => process.stderr.write(l + '\n'),
  });
  process.stdout.write(`wisp server (loopback destinations only) at ${server.url}\n`);
}
