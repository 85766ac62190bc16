/**
 * A WebSocket relay for tests and benches: a hub. Every binary message from one client
 * goes to every other client as it is (one Ethernet frame per message, the
 * websockproxy/v86/JSLinux convention); it learns nothing and filters nothing, so
 * whatever is on the relay is one Ethernet segment. Listens on 127.0.0.1 only.
 *
 * For the uplink's tests it can misbehave on demand: `sendToAll(data)` sends any message
 * (text, a runt, an oversized blob) to every client.
 *
 * By hand: `node bin/run.mjs src/cli/testing/ws-relay-server.ts --port 8002`.
 */
import { listening } from './ws-listen.ts';
import { WebSocketServer, type WebSocket } from 'ws';

export interface RelayServerStats {
  connections: number;
  /** Binary messages received, and copies sent on. */
  messagesIn: number;
  messagesOut: number;
  /** Text messages received (dropped). */
  textIn: number;
}

export interface RelayServer {
  readonly port: number;
  /** ws://127.0.0.1:PORT/ */
  readonly url: string;
  readonly stats: RelayServerStats;
  /** Clients connected now. */
  readonly clients: number;
  sendToAll(data: Uint8Array | string): void;
  close(): Promise<void>;
}

export async function startRelayServer(options: { port?: number } = {}): Promise<RelayServer> {
  const stats: RelayServerStats = { connections: 0, messagesIn: 0, messagesOut: 0, textIn: 0 };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: options.port ?? 0 });
  wss.on('connection', (ws: WebSocket) => {
    stats.connections++;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        stats.textIn++;
        return;
      }
      stats.messagesIn++;
      for (const other of wss.clients) {
        if (other === ws || other.readyState !== other.OPEN) continue;
        other.send(data, { binary: true });
        stats.messagesOut++;
      }
    });
    ws.on('error', () => {});
  });
  return {
    ...(await listening(wss)),
    stats,
    get clients() {
      return wss.clients.size;
    },
    sendToAll(data) {
      for (const c of wss.clients) if (c.readyState === c.OPEN) c.send(data);
    },
  };
}

if (process.argv[1]?.endsWith('ws-relay-server.ts')) {
  const i = process.argv.indexOf('--port');
  const server = await startRelayServer({ port: i >= 0 ? Number(process.argv[i + 1]) : 0 });
  process.stdout.write(`relay (a hub: every frame to every other client) at ${server.url}\n`);
}
