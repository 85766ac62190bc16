/**
 * The test WebSocket servers' common end (wisp-server.ts, ws-relay-server.ts): wait until
 * the server listens on loopback, then give its port, its ws:// URL and a close() that
 * drops every client first (so no test waits on a client that would never close).
 */
import type * as net from 'node:net';
import type { WebSocketServer } from 'ws';

export interface Listening {
  port: number;
  url: string;
  close(): Promise<void>;
}

export function listening(wss: WebSocketServer): Promise<Listening> {
  return new Promise((resolve, reject) => {
    wss.once('error', reject);
    wss.once('listening', () => {
      const port = (wss.address() as net.AddressInfo).port;
      resolve({
        port,
        url: `ws://127.0.0.1:${port}/`,
        close: () => new Promise<void>((r) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => r());
        }),
      });
    });
  });
}
