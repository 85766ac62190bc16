/**
 * The machine's networks, built from NetworkConfig: one Ethernet switch per netdev (a
 * LAN, QEMU's netdev), the NICs plugged into them, and a user-mode router on each `user`
 * LAN. Uplinks that need the host's sockets (QEMU's `socket` netdev) are attached by
 * whoever runs the machine (the CLI), through `lan(id)`: the emulator itself opens
 * nothing. A `websocket` netdev (a relay, ws-relay.ts) is the exception that proves it:
 * its WebSocket comes from the environment's factory, so the page and the CLI get one.
 *
 *   NE2000 (00:03.0) ── port ─┐
 *                              ├─ EthernetSwitch "user.0" ── port ── UserNetwork 10.0.2.2 ── HostNetwork
 *   socket uplink ───── port ─┘
 */
import type { Clock } from '../bus/device.ts';
import type { NetworkConfig, NicConfig } from './config.ts';
import type { HostNetwork, NetEvent } from '../net/host.ts';
import { SyntheticNames, UpstreamSelector, type WebSocketFactory } from '../net/upstream.ts';
import { WispHostNetwork, type WispStats } from '../net/wisp.ts';
import { FetchHostNetwork, type FetchInit, type FetchLike, type FetchResponseLike } from '../net/http-fetch.ts';
import { WebSocketRelayUplink, type RelayState, type WebSocketRelayCounters } from '../net/ws-relay.ts';
import { EthernetSwitch, type PortCounters, type SwitchPort } from '../net/switch.ts';
import { UserNetwork } from '../net/user-net.ts';
import type { TftpFiles } from '../net/tftp.ts';
import { Ne2000 } from '../devices/ne2000.ts';
import { defaultMac, macToString } from '../net/ethernet.ts';
import {
  DROP_FILTERED, DROP_LINK, DROP_MALFORMED, DROP_RING_FULL, DROP_STOPPED, FRAMES_RECEIVED, FRAMES_SENT, NET_BYTES_RECEIVED, NET_BYTES_SENT, type DeviceStats,
} from '../bus/stats.ts';

/** QEMU's default when no network is asked for: one ne2k_pci (00:03.0) on a user network. */
export function defaultNetworkConfig(): NetworkConfig {
  return {
    netdevs: [{ kind: 'user', id: 'user.0', restrict: false, hostfwd: [] }],
    nics: [{ model: 'ne2k_pci', mac: defaultMac(0), netdev: 'user.0' }],
  };
}

/** What the host running the machine lends its networks. */
export interface NetworkEnvironment {
  /** The router's way out (real sockets in the CLI); null or absent: the router serves only itself. */
  host?: HostNetwork | null;
  /** tftp=DIR: read files of a host folder (the CLI guards the path); absent: TFTP answers "not found". */
  tftpFiles?: (dir: string) => TftpFiles;
  /** Diagnostics for the user. */
  log?: (message: string) => void;
  /** fetch() for user,fetch=; absent: the global fetch. */
  fetch?: FetchLike;
  /** Makes WebSockets for `websocket` netdevs (relays); absent: the global WebSocket if there is one. */
  createWebSocket?: WebSocketFactory;
  /** What the routers' upstreams and the relays report in words, with the netdev's id (the page's network panel). */
  onEvent?: (netdev: string, event: NetEvent) => void;
  /** Called when a relay has delivered frames or changed state (the CLI wakes its run loop). */
  onActivity?: () => void;
}

export interface NetworkSnapshot {
  lans: { id: string; ports: ({ name: string; linkUp: boolean } & PortCounters)[]; flooded: number }[];
  nics: { name: string; model: string; mac: string; netdev: string | null; counters: Record<string, number> }[];
  routers: { id: string; stats: unknown }[];
  relays: { id: string; url: string; state: RelayState; counters: WebSocketRelayCounters; lastError: string | null }[];
  /** Routers going out through Wisp (user,wisp=URL). */
  wisps: { id: string; url: string; state: string; version: string | null; stats: WispStats; lastError: string | null }[];
}

export class MachineNetwork {
  readonly lans = new Map<string, EthernetSwitch>();
  readonly routers = new Map<string, UserNetwork>();
  readonly relays = new Map<string, WebSocketRelayUplink>();
  /** Routers whose way out is a Wisp server (user,wisp=URL). */
  readonly wisps = new Map<string, WispHostNetwork>();
  readonly nics: { nic: Ne2000; config: NicConfig; port: SwitchPort | null }[] = [];

  constructor(readonly config: NetworkConfig, clock: Clock, env: NetworkEnvironment, nicRom?: Uint8Array) {
    for (const nd of config.netdevs) {
      const lan = new EthernetSwitch(clock, nd.id);
      this.lans.set(nd.id, lan);
      if (nd.kind === 'user') {
        let host = env.host ?? null;
        if (nd.wisp !== undefined || nd.fetch !== undefined) {
          // The browser's upstreams, asked for by name (the CLI can use them too).
          const names = new SyntheticNames();
          let wisp: WispHostNetwork | null = null;
          let fetchUp: FetchHostNetwork | null = null;
          if (nd.wisp !== undefined) {
            const factory = env.createWebSocket ?? globalWebSocket();
            if (!factory) throw new Error(`netdev ${nd.id}: wisp= needs WebSockets, and this host has none`);
            wisp = new WispHostNetwork({ url: nd.wisp, createWebSocket: factory, clock, names, onActivity: env.onActivity });
            this.wisps.set(nd.id, wisp);
          }
          if (nd.fetch !== undefined) {
            const f = env.fetch ?? (globalThis.fetch ? (u: string, i: FetchInit) => globalThis.fetch(u, i) : null);
            if (!f) throw new Error(`netdev ${nd.id}: fetch= needs fetch(), and this host has none`);
            const inner = f;
            fetchUp = new FetchHostNetwork({
              ownOrigin: nd.fetch, names,
              // The CLI sleeps while its guest idles: a response's progress must wake it.
              fetch: async (u, i) => wrapActivity(await inner(u, i), env.onActivity),
            });
          }
          host = new UpstreamSelector({ names, wisp, fetch: fetchUp });
        }
        const router = new UserNetwork(clock, host, {
          restrict: nd.restrict,
          hostfwd: nd.hostfwd,
          tftp: nd.tftpDir !== undefined && env.tftpFiles ? env.tftpFiles(nd.tftpDir) : undefined,
          bootfile: nd.bootfile,
          hostname: nd.hostname,
          hosts: nd.hosts,
          net: nd.net,
          host: nd.host,
          dns: nd.dns,
          dhcpStart: nd.dhcpStart,
        });
        const port = lan.addPort('router', router);
        router.transmit = (frame) => port.send(frame);
        router.onEvent = (event) => {
          env.onEvent?.(nd.id, event);
          if (nd.wisp !== undefined) env.log?.(`netdev ${nd.id}: ${event.message}`);
        };
        this.routers.set(nd.id, router);
      } else if (nd.kind === 'websocket') {
        const factory = env.createWebSocket ?? globalWebSocket();
        if (!factory) throw new Error(`netdev ${nd.id}: a WebSocket relay needs WebSockets, and this host has none`);
        this.relays.set(nd.id, new WebSocketRelayUplink(lan, {
          url: nd.url, createWebSocket: factory, clock, name: 'relay',
          onEvent: (event) => {
            env.onEvent?.(nd.id, event);
            env.log?.(`netdev ${nd.id}: ${event.message}`);
          },
          onActivity: env.onActivity,
        }));
      }
    }
    let pci = 0;
    let isa = 0;
    config.nics.forEach((c, i) => {
      const name = i === 0 ? 'ne2k' : `ne2k${i}`;
      const nic = new Ne2000(c.model === 'ne2k_isa'
        ? { name, mac: c.mac, model: 'isa', isa: { port: c.iobase ?? 0x300 + 0x20 * isa++, irq: c.irq ?? 9 } }
        : { name, mac: c.mac, model: 'pci', rom: pci++ === 0 ? nicRom : undefined });
      const lan = c.netdev === null ? undefined : this.lans.get(c.netdev);
      if (c.netdev !== null && !lan) throw new Error(`NIC ${name}: no network with the id '${c.netdev}'`);
      const port = lan ? lan.addPort(name, nic) : null;
      if (port && c.shape) port.setShape(c.shape);
      nic.onTransmit = port ? (frame) => port.send(frame) : () => {};
      this.nics.push({ nic, config: c, port });
    });
  }

  /** The LAN (switch) of a netdev, to attach an uplink to. */
  lan(id: string): EthernetSwitch {
    const l = this.lans.get(id);
    if (!l) throw new Error(`no network with the id '${id}'`);
    return l;
  }

  /** Open what the routers listen on (hostfwd); rejects with a plain message if a port is taken. */
  async start(): Promise<void> {
    for (const r of this.routers.values()) await r.start();
  }

  close(): void {
    for (const r of this.routers.values()) r.close();
    for (const r of this.relays.values()) r.close();
    for (const w of this.wisps.values()) w.close();
  }

  /**
   * Copy each NIC's traffic into its statistics row, where the devices panel and --stats
   * read every device's counters: frames and bytes each way, and drops by reason (the
   * chip's own refusals, and what its link lost). Called after each run of the CPU.
   */
  publish(stats: DeviceStats, rowOf: (nic: Ne2000) => number): void {
    for (const { nic, port } of this.nics) {
      const row = rowOf(nic);
      const c = nic.counters;
      stats.set(row, FRAMES_RECEIVED, c.rxFrames);
      stats.set(row, NET_BYTES_RECEIVED, c.rxBytes);
      stats.set(row, FRAMES_SENT, c.txFrames);
      stats.set(row, NET_BYTES_SENT, c.txBytes);
      stats.set(row, DROP_RING_FULL, c.dropRingFull);
      stats.set(row, DROP_STOPPED, c.dropStopped + c.dropBadRing);
      stats.set(row, DROP_FILTERED, c.dropFiltered);
      stats.set(row, DROP_MALFORMED, c.dropMalformed + c.txErrors);
      if (port) {
        const p = port.counters;
        stats.set(row, DROP_LINK, p.dropLinkDown + p.dropLoss + p.dropQueueFull + p.dropMalformed);
      }
    }
  }

  snapshot(): NetworkSnapshot {
    return {
      lans: [...this.lans].map(([id, sw]) => ({
        id,
        flooded: sw.flooded,
        ports: sw.ports.map((p) => ({ name: p.name, linkUp: p.linkUp, ...p.counters })),
      })),
      nics: this.nics.map(({ nic, config }) => ({
        name: nic.name,
        model: config.model,
        mac: macToString(config.mac),
        netdev: config.netdev,
        counters: { ...nic.counters },
      })),
      routers: [...this.routers].map(([id, r]) => ({ id, stats: r.stats })),
      relays: [...this.relays].map(([id, r]) => ({ id, url: r.url, state: r.state, counters: { ...r.counters }, lastError: r.lastError })),
      wisps: [...this.wisps].map(([id, w]) => ({
        id, url: w.url, state: w.state, version: w.serverVersion ? `${w.serverVersion.major}.${w.serverVersion.minor}` : null, stats: { ...w.stats }, lastError: w.lastError,
      })),
    };
  }
}

/** The host's own WebSocket (a browser's, a worker's), as a factory; null where there is none (Node 20). */
function globalWebSocket(): WebSocketFactory | null {
  const W = (globalThis as { WebSocket?: new (url: string) => unknown }).WebSocket;
  return W ? (url) => new W(url) as ReturnType<WebSocketFactory> : null;
}

/** A response whose body's every read calls `onActivity` (the CLI's run loop sleeps while its guest idles). */
function wrapActivity(res: FetchResponseLike, onActivity: (() => void) | undefined): FetchResponseLike {
  if (!onActivity || !res.body) return res;
  const body = res.body;
  return {
    status: res.status, statusText: res.statusText, type: res.type, url: res.url, redirected: res.redirected, headers: res.headers,
    body: {
      getReader() {
        const r = body.getReader();
        return {
          read: async () => {
            const x = await r.read();
            onActivity();
            return x;
          },
          cancel: (reason?: unknown) => r.cancel(reason),
        };
      },
    },
  };
}
