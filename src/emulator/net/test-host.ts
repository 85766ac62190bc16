/**
 * For unit tests only: a test double for the *host* side of the router (HostNetwork),
 * driven by the test — it accepts or refuses a connection, pushes host bytes, applies
 * back-pressure, delivers datagrams. The router under test is the real one; end-to-end
 * tests (the integrator's) use real sockets.
 */
import type { HostDatagramSocket, HostListener, HostNetwork, HostStream } from './host.ts';

export class TestStream implements HostStream {
  /** Everything the router wrote, concatenated on read. */
  readonly written: Uint8Array[] = [];
  ended = false;
  destroyed = false;
  paused = false;
  /** What write() returns: false simulates a full host buffer. */
  acceptWrites = true;
  onConnect: () => void = () => {};
  onData: (data: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  onClose: (error?: string) => void = () => {};
  onDrain: () => void = () => {};

  constructor(readonly address: string, readonly port: number) {}

  write(data: Uint8Array): boolean {
    this.written.push(data.slice());
    return this.acceptWrites;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }

  get bytes(): Uint8Array {
    const n = this.written.reduce((a, b) => a + b.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const w of this.written) {
      out.set(w, o);
      o += w.length;
    }
    return out;
  }
}

export class TestDatagramSocket implements HostDatagramSocket {
  readonly sent: { data: Uint8Array; address: string; port: number }[] = [];
  closed = false;
  onMessage: (data: Uint8Array, address: string, port: number) => void = () => {};
  onError: (error: string) => void = () => {};

  constructor(readonly boundAddress = '0.0.0.0', readonly boundPort = 0) {}

  send(data: Uint8Array, address: string, port: number): void {
    this.sent.push({ data: data.slice(), address, port });
  }
  close(): void {
    this.closed = true;
  }
}

export class TestHost implements HostNetwork {
  readonly loopback: string | null = '127.0.0.1';
  readonly connections: TestStream[] = [];
  readonly udpSockets: TestDatagramSocket[] = [];
  readonly tcpListeners: { address: string; port: number; closed: boolean; connect(peer: { address: string; port: number }): TestStream }[] = [];
  readonly udpListeners: TestDatagramSocket[] = [];
  /** Ports listen* refuses, as if something else held them. */
  readonly takenPorts = new Set<number>();
  /** resolve4's answers; other names reject with ENOTFOUND. */
  readonly names = new Map<string, string[]>();

  connectTcp(address: string, port: number): HostStream {
    const s = new TestStream(address, port);
    this.connections.push(s);
    return s;
  }

  openUdp(): HostDatagramSocket {
    const s = new TestDatagramSocket();
    this.udpSockets.push(s);
    return s;
  }

  async listenTcp(address: string, port: number, onConnection: (stream: HostStream, peer: { address: string; port: number }) => void): Promise<HostListener> {
    if (this.takenPorts.has(port)) throw new Error(`listen EADDRINUSE: address already in use ${address}:${port}`);
    const l = {
      address, port, closed: false,
      connect: (peer: { address: string; port: number }) => {
        const s = new TestStream(peer.address, peer.port);
        onConnection(s, peer);
        return s;
      },
      close: () => {
        l.closed = true;
      },
    };
    this.tcpListeners.push(l);
    return l;
  }

  async listenUdp(address: string, port: number): Promise<HostDatagramSocket> {
    if (this.takenPorts.has(port)) throw new Error(`bind EADDRINUSE: address already in use ${address}:${port}`);
    const s = new TestDatagramSocket(address, port);
    this.udpListeners.push(s);
    return s;
  }

  async resolve4(name: string): Promise<string[]> {
    const a = this.names.get(name);
    if (a) return a;
    throw Object.assign(new Error(`queryA ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  }
}
