/**
 * The user-mode router's way out in Node (src/emulator/net/host.ts): real TCP streams,
 * UDP sockets, listening ports for hostfwd and the host's resolver. 10.0.2.2 leads to the
 * host's 127.0.0.1, as in QEMU.
 *
 * Every callback into the router runs on Node's event loop, between two runs of the
 * machine; `onActivity` is called after each so a run loop sleeping through an idle
 * guest wakes up and lets the frames in at once.
 */
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import type { HostDatagramSocket, HostListener, HostNetwork, HostStream } from '../emulator/net/host.ts';

function describeError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ECONNRESET': return 'connection reset by the host peer';
    case 'ETIMEDOUT': return 'connection timed out';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ENETUNREACH': return 'network unreachable';
    case 'EPIPE': return 'the host peer closed the connection';
    default: return e.code ? `${e.code}: ${e.message}` : e.message;
  }
}

const noop = () => {};

/** A Node socket as a HostStream. */
function wrapSocket(socket: net.Socket, activity: () => void, connected: boolean): HostStream {
  let closedWith: string | undefined;
  const stream: HostStream = {
    write: (data) => (socket.destroyed ? false : socket.write(data)),
    end: () => {
      if (!socket.destroyed) socket.end();
    },
    destroy: () => {
      // resetAndDestroy sends a RST (Node 16.17+), as a guest's RST asks.
      if (!socket.destroyed) socket.resetAndDestroy();
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    onConnect: noop,
    onData: noop,
    onEnd: noop,
    onClose: noop,
    onDrain: noop,
  };
  // A copy: the router may keep the bytes after Node reuses its buffer pool.
  socket.on('data', (b: Buffer) => {
    stream.onData(new Uint8Array(b));
    activity();
  });
  socket.on('end', () => {
    stream.onEnd();
    activity();
  });
  socket.on('drain', () => {
    stream.onDrain();
    activity();
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    closedWith = describeError(e);
  });
  socket.on('close', () => {
    stream.onClose(closedWith);
    activity();
  });
  if (connected) queueMicrotask(() => stream.onConnect());
  else {
    socket.on('connect', () => {
      socket.setNoDelay(true);
      stream.onConnect();
      activity();
    });
  }
  return stream;
}

function wrapUdp(sock: dgram.Socket, activity: () => void): HostDatagramSocket {
  let open = true;
  const d: HostDatagramSocket = {
    send: (data, address, port) => {
      if (open) sock.send(data, port, address, (e) => e && d.onError(describeError(e)));
    },
    close: () => {
      if (open) {
        open = false;
        sock.close();
      }
    },
    onMessage: noop,
    onError: noop,
  };
  sock.on('message', (msg, rinfo) => {
    d.onMessage(new Uint8Array(msg), rinfo.address, rinfo.port);
    activity();
  });
  sock.on('error', (e) => d.onError(describeError(e)));
  return d;
}

export function nodeHostNetwork(onActivity: () => void = noop): HostNetwork & { close(): void } {
  const listeners = new Set<{ close(): void }>();
  const sockets = new Set<net.Socket | dgram.Socket>();
  const track = <T extends net.Socket | dgram.Socket>(s: T): T => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    return s;
  };
  return {
    loopback: '127.0.0.1',
    connectTcp(address, port) {
      // allowHalfOpen: the host peer's FIN closes only its direction; what the guest still
      // sends goes on reaching it, as TCP's half-close allows (RFC 793 §3.5).
      const socket = track(net.connect({ host: address, port, allowHalfOpen: true }));
      return wrapSocket(socket, onActivity, false);
    },
    openUdp() {
      const sock = track(dgram.createSocket('udp4'));
      sock.bind(0);
      return wrapUdp(sock, onActivity);
    },
    listenTcp(address, port, onConnection) {
      return new Promise<HostListener>((resolve, reject) => {
        const server = net.createServer({ allowHalfOpen: true }, (socket) => {
          track(socket);
          socket.setNoDelay(true);
          onConnection(wrapSocket(socket, onActivity, true), { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 });
          onActivity();
        });
        server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`hostfwd: cannot listen on ${address}:${port}: ${describeError(e)}`)));
        server.listen(port, address, () => {
          const l = { close: () => server.close() };
          listeners.add(l);
          resolve(l);
        });
      });
    },
    listenUdp(address, port) {
      return new Promise<HostDatagramSocket>((resolve, reject) => {
        const sock = track(dgram.createSocket('udp4'));
        sock.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`hostfwd: cannot bind UDP ${address}:${port}: ${describeError(e)}`)));
        sock.bind(port, address, () => resolve(wrapUdp(sock, onActivity)));
      });
    },
    resolve4: (name) => dns.promises.resolve4(name),
    close() {
      for (const l of listeners) l.close();
      listeners.clear();
      for (const s of sockets) {
        if (s instanceof net.Socket) s.destroy();
        else s.close();
      }
      sockets.clear();
    },
  };
}
