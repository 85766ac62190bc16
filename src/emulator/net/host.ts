/**
 * What the user-mode router needs from the host to reach the world: TCP streams, UDP
 * sockets, listening ports for hostfwd, and name lookups. src/emulator has no Node or
 * DOM imports, so the router sees only these interfaces; the command line gives it
 * real sockets (src/cli/node-host-network.ts), the page gives it what a browser
 * offers (fetch, Wisp; issue 9).
 *
 * Addresses are IPv4 as dotted strings ("127.0.0.1"); ports are numbers. Every callback
 * is called from the host's event loop, never from inside a call the router made.
 */

/** A TCP connection on the host side of the router (a connect, or an accepted hostfwd). */
export interface HostStream {
  /** Queue bytes for the host peer. Returns false when the host's buffer is full: wait for onDrain. */
  write(data: Uint8Array): boolean;
  /** Half-close: FIN to the host peer after what was written. */
  end(): void;
  /** Abort: RST to the host peer, drop what is queued. */
  destroy(): void;
  /** Stop (and restart) delivering onData: flow control from the guest's window back to the host. */
  pause(): void;
  resume(): void;
  onConnect: () => void;
  onData: (data: Uint8Array) => void;
  /** The host peer half-closed (FIN). */
  onEnd: () => void;
  /** The connection is gone; `error` says why when it did not close cleanly (refused, reset, unreachable). */
  onClose: (error?: string) => void;
  /** The host accepted what was queued: writing may go on. */
  onDrain: () => void;
}

/** A UDP socket on the host, bound to an ephemeral port (one per guest flow, for NAT). */
export interface HostDatagramSocket {
  send(data: Uint8Array, address: string, port: number): void;
  close(): void;
  onMessage: (data: Uint8Array, address: string, port: number) => void;
  onError: (error: string) => void;
}

/** A listening socket for hostfwd. */
export interface HostListener {
  close(): void;
}

/**
 * Something the host has to tell the user in words: a fetch the browser blocked, a Wisp
 * server that went away, a relay sending what is not a frame. `kind` is a short stable
 * tag for filtering ('fetch-failed', 'wisp-closed', ...); `flow` names the connection
 * ("10.0.2.15:40000 > example.com:80") or is '' for the uplink as a whole.
 */
export interface NetEvent {
  kind: string;
  flow: string;
  message: string;
}

export interface HostNetwork {
  /**
   * Set by the router that uses this host (UserNetwork): where the host reports events.
   * A host with nothing to say ignores it.
   */
  onEvent?: (event: NetEvent) => void;
  /** Open a TCP connection; failures arrive as onClose(error). */
  connectTcp(address: string, port: number): HostStream;
  openUdp(): HostDatagramSocket;
  /** hostfwd=tcp: accept connections on the host; each becomes a guest connection. */
  listenTcp(address: string, port: number, onConnection: (stream: HostStream, peer: { address: string; port: number }) => void): Promise<HostListener>;
  /** hostfwd=udp: datagrams arriving on the host port; reply with the socket given. */
  listenUdp(address: string, port: number): Promise<HostDatagramSocket>;
  /** IPv4 addresses of a name (the DNS forwarder when not restricted); rejects when unknown. */
  resolve4(name: string): Promise<string[]>;
  /**
   * The loopback address 10.0.2.2 leads to (QEMU: the host's 127.0.0.1). A browser host
   * may return null: then connections to 10.0.2.2 are refused unless it handles them.
   */
  readonly loopback: string | null;
}
