/**
 * The machine's network in the page's worker (issue 24): builds the network the user's
 * uplink setting asks for (network-protocol.ts), lends the router the browser's upstreams
 * (fetch, Wisp) or joins the LAN to a WebSocket relay or to the other tabs, and watches
 * the first NIC's port: a bounded capture for the pcap download, and the packets the
 * panel lists, batched until it asks.
 *
 * Two phases, because the router is made inside createMachine: `config()` and
 * `environment()` before it (the NIC, the router's upstreams as MachineNetwork builds
 * them from `user,fetch=,wisp=`), `attach(machine)` after (the layer-2 uplink, the taps).
 *
 * Everything that arrives from outside (a fetch's body, a Wisp packet, a relay's or a
 * tab's frame) wakes the run loop (`onActivity`), as the CLI's sockets do: a guest idling
 * until its next timer would otherwise see the data only when it wakes.
 */
import type { NetworkConfig } from '../emulator/machine/config.ts';
import type { Machine } from '../emulator/machine/machine.ts';
import type { NetworkEnvironment } from '../emulator/machine/network.ts';
import { BroadcastLan, routerSwitch } from '../emulator/net/broadcast-lan.ts';
import { CaptureRing } from '../emulator/net/capture-ring.ts';
import { defaultMac, macToString } from '../emulator/net/ethernet.ts';
import type { FetchLike } from '../emulator/net/http-fetch.ts';
import type { WebSocketFactory } from '../emulator/net/upstream.ts';
import type { WispHostNetwork } from '../emulator/net/wisp.ts';
import { WebSocketRelayUplink } from '../emulator/net/ws-relay.ts';
import { RouterProbe } from '../emulator/net/router-probe.ts';
import type { UserNetwork } from '../emulator/net/user-net.ts';
import type { NetworkEventView, NetworkView, PacketBatch, UplinkSetting, UplinkState } from './network-protocol.ts';

/** The LAN's id, as the default network names it (QEMU's first user netdev). */
const LAN = 'user.0';
/** Events kept for the panel. */
const EVENTS = 50;
/** Packets a batch holds before further ones are counted as lost (the panel asks twice a second). */
const BATCH_PACKETS = 8192;
/** Bytes kept of a packet for the list: Ethernet, IPv4 and TCP headers with options, and an HTTP request line. */
const SNAP_TCP = 192;
/** UDP (DHCP, DNS) is kept whole up to this. */
const SNAP_OTHER = 1514;

export interface NetworkHostOptions {
  uplink: UplinkSetting;
  /** Run the machine's next slice now (something arrived). */
  wake: () => void;
  /** What 10.0.2.2:80 is through fetch: the page's origin; null where there is none (a Node host). */
  origin: string | null;
  fetch?: FetchLike | null;
  createWebSocket?: WebSocketFactory | null;
  /** This tab's id on a tab LAN, and when its router started (Date.now()). */
  memberId: string;
  since: number;
  /** Random bytes for a NIC's MAC on a shared LAN (crypto.getRandomValues). */
  random: (n: number) => Uint8Array;
  /** Virtual time 0 on the wall clock, in ns since 1970 (pcap timestamps). */
  epochNs: number;
}

export class NetworkHost {
  private wispUp: WispHostNetwork | null = null;
  /** What the router's upstreams are given, once checked: the page's origin for fetch, the Wisp server. */
  private readonly upstreams: { fetch?: string; wisp?: string } = {};
  /** fetch() as the upstream calls it, counted for the panel. */
  private readonly fetches = { requests: 0, failed: 0 };
  private relay: WebSocketRelayUplink | null = null;
  private tabLan: BroadcastLan | null = null;
  /** On a relay: finds a router already on it, and turns ours off then. */
  private relayProbe: RouterProbe | null = null;
  private router: UserNetwork | null = null;
  private machine: Machine | null = null;
  private readonly ring = new CaptureRing();
  private readonly events: NetworkEventView[] = [];
  private readonly mac: Uint8Array;
  private problem: string | null = null;
  private closed = false;
  // The packet batch being filled.
  private batchBytes = new Uint8Array(64 << 10);
  private batchUsed = 0;
  private batchMeta: number[] = [];
  private batchLost = 0;
  private untap: (() => void) | null = null;

  constructor(private readonly options: NetworkHostOptions) {
    const u = options.uplink;
    // On a LAN shared with other machines every NIC needs its own MAC: a random one in
    // QEMU's 52:54:00 block (a locally administered address).
    if (u.kind === 'tab-lan' || u.kind === 'relay') {
      const r = options.random(3);
      this.mac = Uint8Array.of(0x52, 0x54, 0x00, r[0], r[1], r[2]);
    } else {
      this.mac = defaultMac(0);
    }
    // What this host can lend the router's upstreams; what it cannot is said, and the
    // machine runs with the router alone.
    const why = (kind: string, problem: string) => {
      this.problem = problem;
      this.event('uplink-error', '', `The ${kind} uplink cannot start: ${problem}`);
    };
    if (u.kind === 'fetch' || u.kind === 'wisp') {
      if (this.options.fetch && this.options.origin) this.upstreams.fetch = this.options.origin;
      else if (u.kind === 'fetch') why(u.kind, 'this host has no fetch or no origin for 10.0.2.2');
    }
    if (u.kind === 'wisp') {
      if (this.options.createWebSocket) this.upstreams.wisp = u.url;
      else why(u.kind, 'this host has no WebSocket');
    }
  }

  /** The machine's NICs and LANs for this uplink (MachineInputs.network). */
  config(): NetworkConfig {
    if (this.options.uplink.kind === 'none') return { nics: [], netdevs: [] };
    const up = this.upstreams;
    const any = up.fetch !== undefined || up.wisp !== undefined;
    return {
      // The page's router never listens on the host: no hostfwd. `restrict` stays off when an
      // upstream is there to carry connections; with none, the router serves only itself.
      netdevs: [{ kind: 'user', id: LAN, restrict: !any, hostfwd: [], ...(up.fetch !== undefined ? { fetch: up.fetch } : {}), ...(up.wisp !== undefined ? { wisp: up.wisp } : {}) }],
      nics: [{ model: 'ne2k_pci', mac: this.mac, netdev: LAN }],
    };
  }

  /** What the machine's network is lent: the router's way out. */
  environment(log: (message: string) => void): NetworkEnvironment {
    const f = this.options.fetch;
    const counted: FetchLike | undefined = f
      ? async (url, init) => {
        this.fetches.requests++;
        try {
          return await f(url, init);
        } catch (e) {
          this.fetches.failed++;
          throw e;
        }
      }
      : undefined;
    return {
      log,
      fetch: counted,
      createWebSocket: this.options.createWebSocket ?? undefined,
      onActivity: this.options.wake,
      onEvent: (_netdev, e) => this.event(e.kind, e.flow, e.message),
    };
  }

  /** The machine exists: join the uplink, tap the NIC. */
  attach(machine: Machine): void {
    this.machine = machine;
    const u = this.options.uplink;
    const router = machine.network.routers.get(LAN) ?? null;
    this.router = router;
    this.wispUp = machine.network.wisps.get(LAN) ?? null;
    const port = machine.network.nics[0]?.port;
    if (port) {
      const ring = this.ring;
      this.untap = port.addTap((frame, timeNs, direction) => {
        ring.add(frame, timeNs);
        this.batch(frame, timeNs, direction === 'in' ? 0 : 1);
      });
    }
    if (this.problem || machine.network.lans.size === 0) return;
    if (machine.config.deterministic && u.kind !== 'router') {
      // Instruction-count time runs ahead of the world's while the guest idles: a peer in
      // real time (a server, another tab) looks slow to it, and its timeouts come early.
      this.event('deterministic', '', 'This machine runs on deterministic (instruction-count) time: while its guest idles, its clock runs ahead of the real world\'s, so peers seem slow and timeouts come early. Use wall-clock time for the network.');
    }
    const lan = machine.network.lan(LAN);
    try {
      if (u.kind === 'tab-lan') {
        this.tabLan = new BroadcastLan(lan, {
          channel: u.channel,
          id: this.options.memberId,
          since: this.options.since,
          router: router ? routerSwitch(lan, router) : undefined,
          onActivity: this.options.wake,
          onEvent: (message) => this.event('tab-lan', '', message),
        });
        this.event('tab-lan', '', `Joined the tab LAN '${u.channel}' as ${macToString(this.mac)}.`);
      } else if (u.kind === 'relay') {
        if (!this.options.createWebSocket) throw new Error('this host has no WebSocket');
        this.relay = new WebSocketRelayUplink(lan, {
          url: u.url,
          createWebSocket: this.options.createWebSocket,
          clock: machine.bus.clock,
          onEvent: (e) => {
            this.event(e.kind, e.flow, e.message);
            // Each time the relay (re)opens: is there a router on it already?
            if (e.kind === 'relay-open') this.relayProbe?.probe();
          },
          onActivity: this.options.wake,
        });
        if (router) {
          this.relayProbe = new RouterProbe(this.relay.port, { mac: router.mac, hostIp: router.hostIp, leases: () => router.stats.dhcp.bound },
            routerSwitch(lan, router), this.mac, machine.bus.clock, (message) => this.event('relay-router', '', message));
        }
      } else if (u.kind === 'wisp') {
        this.wispUp?.connect();
      }
    } catch (e) {
      this.problem = e instanceof Error ? e.message : String(e);
      this.event('uplink-error', '', `The ${u.kind} uplink cannot start: ${this.problem}`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.untap?.();
    this.tabLan?.close();
    this.relayProbe?.close();
    this.relay?.close();
    this.wispUp?.close();
  }

  private event(kind: string, flow: string, message: string): void {
    this.events.push({ atMs: Date.now(), kind, flow, message });
    if (this.events.length > EVENTS) this.events.splice(0, this.events.length - EVENTS);
  }

  /** Keep a packet's first bytes for the panel's list. */
  private batch(frame: Uint8Array, timeNs: number, direction: number): void {
    if (this.batchMeta.length >= BATCH_PACKETS * 4) {
      this.batchLost++;
      return;
    }
    // IPv4 carrying TCP: the headers are enough; anything else whole (DHCP, DNS, ARP are small).
    const tcp = frame.length > 23 && frame[12] === 0x08 && frame[13] === 0x00 && frame[23] === 6;
    const keep = Math.min(frame.length, tcp ? SNAP_TCP : SNAP_OTHER);
    if (this.batchUsed + keep > this.batchBytes.length) {
      const bigger = new Uint8Array(Math.max(this.batchBytes.length * 2, this.batchUsed + keep));
      bigger.set(this.batchBytes.subarray(0, this.batchUsed));
      this.batchBytes = bigger;
    }
    this.batchBytes.set(frame.subarray(0, keep), this.batchUsed);
    this.batchUsed += keep;
    this.batchMeta.push(keep, frame.length, timeNs, direction);
  }

  /** The packets since the last call. */
  takePackets(): PacketBatch {
    const b: PacketBatch = { bytes: this.batchBytes.slice(0, this.batchUsed), meta: Float64Array.from(this.batchMeta), lost: this.batchLost };
    this.batchUsed = 0;
    this.batchMeta = [];
    this.batchLost = 0;
    if (this.batchBytes.length > 1 << 20) this.batchBytes = new Uint8Array(64 << 10);
    return b;
  }

  /** The capture ring as a pcap file. */
  pcap(): { file: Uint8Array; packets: number } {
    return { file: this.ring.toPcap(this.options.epochNs), packets: this.ring.length };
  }

  view(): NetworkView {
    const m = this.machine;
    const u = this.options.uplink;
    const snap = m?.network.snapshot();
    const ports = (snap?.lans ?? []).flatMap((l) => l.ports.map((p) => ({ lan: l.id, ...p })));
    const { state, text } = this.state();
    const r = this.router;
    let router: NetworkView['router'] = null;
    if (r) {
      const d = r.describe();
      const s = r.stats;
      router = {
        serving: this.tabLan ? this.tabLan.routerServing : this.relayProbe ? this.relayProbe.serving : true,
        leases: d.leases.map((l) => ({ mac: l.mac, ip: l.ip, state: l.state })),
        tcpFlows: d.tcpFlows.length,
        drops: { ...s.drops },
        counters: {
          framesIn: s.framesIn, framesOut: s.framesOut, dhcpOffers: s.dhcp.offer, dhcpAcks: s.dhcp.ack, dnsQueries: s.dns.queries,
          icmpEchoReplies: s.icmpEchoReplies, tcpOpened: s.tcp.opened, tcpRefused: s.tcp.refused,
        },
      };
    }
    return {
      uplink: u,
      state,
      stateText: text,
      mac: m && m.network.nics.length > 0 ? macToString(this.mac) : null,
      ports,
      uplinkCounters: this.uplinkCounters(),
      router,
      events: this.events.slice(),
      capture: { frames: this.ring.length, bytes: this.ring.bytes, dropped: this.ring.dropped, seen: this.ring.seen },
    };
  }

  private uplinkCounters(): Record<string, number> {
    const out: Record<string, number> = {};
    const add = (prefix: string, o: object | undefined) => {
      for (const [k, v] of Object.entries(o ?? {})) if (typeof v === 'number') out[`${prefix}${k}`] = v;
    };
    if (this.tabLan) add('', this.tabLan.counters);
    if (this.relay) add('', this.relay.counters);
    if (this.upstreams.fetch !== undefined) add('fetch.', this.fetches);
    if (this.wispUp) add('wisp.', this.wispUp.stats);
    return out;
  }

  private state(): { state: UplinkState; text: string } {
    const u = this.options.uplink;
    if (this.problem) return { state: 'error', text: `The ${u.kind} uplink cannot work: ${this.problem}.` };
    switch (u.kind) {
      case 'none':
        return { state: 'off', text: 'No network card (QEMU\'s -nic none).' };
      case 'router':
        return { state: 'ready', text: 'The router alone: DHCP, DNS from its table and pings to 10.0.2.2; nothing leaves the page.' };
      case 'fetch':
        return { state: 'ready', text: `HTTP on port 80 through the browser's fetch; 10.0.2.2 is this page's origin (${this.options.origin}).` };
      case 'wisp': {
        const w = this.wispUp;
        if (!w) return { state: 'error', text: 'No Wisp client.' };
        const st = w.state;
        const version = w.serverVersion ? ` (Wisp v${w.serverVersion.major}.${w.serverVersion.minor})` : '';
        if (st === 'open') return { state: 'open', text: `Connected to the Wisp server at ${w.url}${version}; HTTP to 10.0.2.2 goes through fetch.` };
        if (st === 'connecting' || st === 'handshake') return { state: 'connecting', text: `Connecting to the Wisp server at ${w.url}…` };
        // Idle (or closed): a lost connection is opened again by the guest's next connection.
        if (w.lastError) return { state: 'error', text: `The Wisp server at ${w.url} is not connected: ${w.lastError}; the guest's next connection tries again.` };
        return { state: st === 'closed' ? 'closed' : 'ready', text: `The Wisp server at ${w.url} is not connected; the guest's first connection opens it.` };
      }
      case 'relay': {
        const r = this.relay;
        if (!r) return { state: 'error', text: 'No relay.' };
        if (r.state === 'open') {
          const who = this.relayProbe && !this.relayProbe.serving ? "another machine's router serves it" : "this machine's router serves it (no other answered)";
          return { state: 'open', text: `On the relay at ${r.url}; ${who}.` };
        }
        if (r.state === 'connecting') return { state: 'connecting', text: `Connecting to the relay at ${r.url}…` };
        return { state: r.state === 'waiting' ? 'waiting' : 'closed', text: `Not on the relay at ${r.url}${r.lastError ? `: ${r.lastError}` : ''}${r.state === 'waiting' ? '; trying again soon' : ''}.` };
      }
      case 'tab-lan': {
        const t = this.tabLan;
        if (!t) return { state: 'error', text: 'Not on the tab LAN.' };
        if (t.state === 'closed') return { state: 'closed', text: `Left the tab LAN '${u.channel}'.` };
        const others = t.memberCount;
        const who = t.routerServing ? "this tab's router serves it" : t.routerMember ? `another tab's router serves it (${t.routerMember})` : 'no router heard from yet';
        return { state: 'open', text: `On the tab LAN '${u.channel}' with ${others} other machine${others === 1 ? '' : 's'}; ${who}.` };
      }
    }
  }
}
