/**
 * An HTTP server on 127.0.0.1 that answers every request with `size` bytes (0x5A), written
 * as fast as the socket drains: the far end of the benches' guest `wget`s. `firstRequestAt`
 * is the host time (performance.now()) the first request arrived, 0 before that, so a bench
 * can time the transfer from the server's side.
 */
import * as http from 'node:http';
import type * as net from 'node:net';

export interface BulkServer {
  readonly port: number;
  readonly firstRequestAt: number;
  close(): void;
}

export async function startBulkServer(size: number, contentType = 'application/octet-stream'): Promise<BulkServer> {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  let firstRequestAt = 0;
  const server = http.createServer((_req, res) => {
    if (firstRequestAt === 0) firstRequestAt = performance.now();
    res.writeHead(200, { 'content-length': size, 'content-type': contentType });
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const n = Math.min(chunk.length, size - sent);
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get firstRequestAt() {
      return firstRequestAt;
    },
    close: () => server.close(),
  };
}
