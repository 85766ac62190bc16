/**
 * QEMU's `-netdev socket` in Node: the LAN's frames over TCP, each a 4-byte big-endian
 * length and the frame (stream-framing.ts), so two Trapdoor processes, or Trapdoor and a
 * real qemu-system-i386, share one Ethernet segment. Each connection is one port of the
 * LAN's switch. listen= accepts any number of peers (QEMU takes one at a time); connect=
 * retries for a while, as a peer started a moment later is the usual case in scripts.
 *
 * A peer that sends what is not a frame (a length an Ethernet frame cannot have) is
 * counted; one whose stream is out of step is disconnected with a message; one that
 * closes mid-frame is counted as truncated. None of it stops the machine.
 */
import * as net from 'node:net';
import type { EthernetSwitch, SwitchPort } from '../emulator/net/switch.ts';
import type { SocketNetdevConfig } from '../emulator/machine/config.ts';
import { encodeStreamFrame, StreamFrameDecoder, type StreamDecoderCounters } from '../emulator/net/stream-framing.ts';

/** Bytes queued towards a slow peer before frames for it are dropped (counted). */
const MAX_QUEUED = 4 << 20;
const CONNECT_TRIES = 50;
const CONNECT_RETRY_MS = 200;

export interface SocketUplinkCounters extends StreamDecoderCounters {
  connections: number;
  /** Peers that closed in the middle of a frame. */
  truncated: number;
  /** Streams dropped for being out of step. */
  corrupt: number;
  /** Frames dropped because the peer did not read fast enough. */
  dropSlowPeer: number;
}

export interface SocketUplink {
  readonly id: string;
  readonly counters: SocketUplinkCounters;
  /** Where it listens (the port actually bound, for listen=:0) or connects. */
  readonly address: string;
  /** Resolves once listening, or once connected (rejects when every try failed). */
  readonly ready: Promise<void>;
  close(): void;
}

export function socketUplink(sw: EthernetSwitch, cfg: SocketNetdevConfig, log: (message: string) => void, onActivity: () => void): SocketUplink {
  const counters: SocketUplinkCounters = { frames: 0, bytes: 0, dropShort: 0, dropOversized: 0, connections: 0, truncated: 0, corrupt: 0, dropSlowPeer: 0 };
  const sockets = new Set<net.Socket>();
  let server: net.Server | null = null;
  let closed = false;
  let address = '';

  const attach = (socket: net.Socket, name: string) => {
    counters.connections++;
    sockets.add(socket);
    socket.setNoDelay(true);
    const decoder = new StreamFrameDecoder();
    const port: SwitchPort = sw.addPort(name, {
      receive: (frame) => {
        if (socket.destroyed) return;
        if (socket.writableLength > MAX_QUEUED) {
          counters.dropSlowPeer++;
          return;
        }
        socket.write(encodeStreamFrame(frame));
      },
    });
    const before = { ...decoder.counters };
    socket.on('data', (b: Buffer) => {
      decoder.push(new Uint8Array(b), (f) => port.send(f));
      for (const k of ['frames', 'bytes', 'dropShort', 'dropOversized'] as const) {
        counters[k] += decoder.counters[k] - before[k];
        before[k] = decoder.counters[k];
      }
      if (decoder.corrupt !== null) {
        counters.corrupt++;
        log(`netdev ${cfg.id}: ${name}: ${decoder.corrupt}; disconnecting it`);
        socket.destroy();
      }
      onActivity();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => log(`netdev ${cfg.id}: ${name}: ${e.code ?? e.message}`));
    socket.on('close', () => {
      sockets.delete(socket);
      if (decoder.pendingBytes > 0 && decoder.corrupt === null) {
        counters.truncated++;
        log(`netdev ${cfg.id}: ${name} closed in the middle of a frame (${decoder.pendingBytes} bytes dropped)`);
      }
      port.remove();
      if (!closed) log(`netdev ${cfg.id}: ${name} disconnected`);
      onActivity();
    });
  };

  let ready: Promise<void>;
  if (cfg.listen) {
    const { address: host, port } = cfg.listen;
    address = `${host}:${port}`;
    ready = new Promise((resolve, reject) => {
      server = net.createServer((socket) => attach(socket, `socket:${socket.remoteAddress}:${socket.remotePort}`));
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`netdev ${cfg.id}: cannot listen on ${host}:${port}: ${e.code ?? e.message}`)));
      server.listen(port, host, () => {
        const a = server!.address() as net.AddressInfo;
        address = `${a.address}:${a.port}`;
        resolve();
      });
    });
  } else {
    const { address: host, port } = cfg.connect!;
    address = `${host}:${port}`;
    ready = new Promise((resolve, reject) => {
      let tries = 0;
      const attempt = () => {
        if (closed) return;
        const socket = net.connect({ host, port });
        socket.once('connect', () => {
          socket.removeAllListeners('error');
          attach(socket, `socket:${host}:${port}`);
          resolve();
        });
        socket.once('error', (e: NodeJS.ErrnoException) => {
          if (++tries >= CONNECT_TRIES) reject(new Error(`netdev ${cfg.id}: cannot connect to ${host}:${port}: ${e.code ?? e.message}`));
          else setTimeout(attempt, CONNECT_RETRY_MS);
        });
      };
      attempt();
    });
  }
  return {
    id: cfg.id,
    counters,
    get address() {
      return address;
    },
    ready,
    close() {
      closed = true;
      server?.close();
      for (const s of sockets) s.destroy();
    },
  };
}
