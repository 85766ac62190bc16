/**
 * The tab-to-tab LAN: one port of the machine's switch whose other side is a
 * `BroadcastChannel`. Every tab of the page (and every machine in one page, and Node
 * worker threads) that opens a channel of the same name is on one Ethernet segment: a
 * frame the switch hands this port is posted as one message (a Uint8Array, copied by the
 * structured clone), and every message from the channel that is a frame enters the switch
 * as if it came down a wire. A channel never delivers a message to the object that posted
 * it, so a frame never comes back to the LAN it left.
 *
 * One router per LAN. Every tab's machine has its user-mode router (10.0.2.2: DHCP, DNS);
 * two on one segment would answer every DHCP DISCOVER twice with the same addresses and
 * share one MAC. So the members elect one, with control messages on the same channel
 * (plain objects, never mistaken for frames):
 *   - on joining, a member says `hello` with its router's claim (when it has a router);
 *   - a member whose router serves answers every `hello` with `router` and its claim;
 *   - a member that hears a claim better than its own (older `since`; then the smaller
 *     id) turns its router off: its switch forgets the router's port, and its guest gets
 *     its lease from the LAN's router, through the channel, like any other station;
 *   - a member that leaves says `bye`; when the router's member leaves, every member whose
 *     router had stepped down turns it back on and claims again: the best claim stays.
 * Claims form a total order, so however the messages cross, one router is left serving.
 * Guests on one LAN need distinct MACs (the page gives each tab's NIC a random one).
 *
 * Bad input never throws: a message that is neither a frame nor a control message, a
 * runt or an oversized frame is counted and dropped.
 */
import { ETH_HEADER } from './ethernet.ts';
import type { EthernetSwitch, SwitchPort } from './switch.ts';

/** Longest frame accepted from the channel: 1514 plus an 802.1Q tag (IEEE 802.1Q §6.4). */
const MAX_FRAME = 1518;

/** What the LAN needs of a BroadcastChannel (the DOM's and Node's both fit). */
export interface ChannelLike {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  close(): void;
}

/** A router's claim to serve the LAN: older `since` wins, then the smaller id. */
export interface RouterClaim {
  since: number;
  id: string;
}

/** Control messages on the channel, beside the frames. */
export type LanControl =
  | { t: 'trapdoor-lan'; kind: 'hello'; id: string; claim: RouterClaim | null }
  | { t: 'trapdoor-lan'; kind: 'router'; id: string; claim: RouterClaim }
  | { t: 'trapdoor-lan'; kind: 'bye'; id: string; router: boolean };

/** Turns the machine's router on and off on its LAN. */
export interface RouterSwitch {
  enable(): void;
  disable(): void;
}

export interface BroadcastLanCounters {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  /** Messages that were neither frames nor control messages. */
  dropNotFrame: number;
  /** Frames shorter than an Ethernet header. */
  dropShort: number;
  /** Frames longer than MAX_FRAME. */
  dropOversized: number;
  /** Frames the channel refused to post (it was closed, or the clone failed). */
  dropPost: number;
  /** Other members heard from (by id). */
  members: number;
}

export type BroadcastLanState = 'open' | 'closed';

export interface BroadcastLanOptions {
  /** The channel's name: tabs that use the same name share the LAN. */
  channel: string;
  /** This member's id (unique per tab; the page draws a random one). */
  id: string;
  /** When this member's router started serving (the page: Date.now() at power-on). */
  since: number;
  /** The machine's router, when it has one: the LAN elects one among the members'. */
  router?: RouterSwitch;
  /** Open the channel (default: the global BroadcastChannel). */
  open?: (name: string) => ChannelLike;
  /** Called when a frame arrived from the channel (the host wakes an idle machine). */
  onActivity?: () => void;
  /** State changes in words, for the network panel. */
  onEvent?: (message: string) => void;
}

export class BroadcastLan {
  readonly counters: BroadcastLanCounters = {
    framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, dropNotFrame: 0, dropShort: 0, dropOversized: 0, dropPost: 0, members: 0,
  };
  readonly port: SwitchPort;
  private readonly channel: ChannelLike;
  private readonly claim: RouterClaim | null;
  /** Whether this member's router serves the LAN now. */
  private serving: boolean;
  private readonly peers = new Set<string>();
  private closedFlag = false;
  /** The member whose router serves, when known (for the panel). */
  routerMember: string | null = null;

  constructor(sw: EthernetSwitch, private readonly options: BroadcastLanOptions) {
    const open = options.open ?? ((name: string) => {
      const Channel = (globalThis as unknown as { BroadcastChannel?: new (name: string) => ChannelLike }).BroadcastChannel;
      if (!Channel) throw new Error('this environment has no BroadcastChannel');
      return new Channel(name);
    });
    this.channel = open(options.channel);
    this.claim = options.router ? { since: options.since, id: options.id } : null;
    this.serving = this.claim !== null;
    if (this.serving) this.routerMember = options.id;
    this.port = sw.addPort(`tab-lan:${options.channel}`, { receive: (frame) => this.toChannel(frame) });
    this.channel.onmessage = (e) => this.fromChannel(e.data);
    this.post({ t: 'trapdoor-lan', kind: 'hello', id: options.id, claim: this.claim });
  }

  get state(): BroadcastLanState {
    return this.closedFlag ? 'closed' : 'open';
  }

  /** Whether this member's router is the LAN's router (false when it has none). */
  get routerServing(): boolean {
    return this.serving;
  }

  /** Other members heard from so far. */
  get memberCount(): number {
    return this.peers.size;
  }

  /** Leave the LAN: say so (the router's member hands the router over), take the port off the switch. */
  close(): void {
    if (this.closedFlag) return;
    this.post({ t: 'trapdoor-lan', kind: 'bye', id: this.options.id, router: this.serving });
    this.closedFlag = true;
    this.channel.onmessage = null;
    try {
      this.channel.close();
    } catch {
      // Already closed: nothing more to say.
    }
    this.port.remove();
  }

  private toChannel(frame: Uint8Array): void {
    if (this.closedFlag) return;
    if (this.post(frame)) {
      this.counters.framesOut++;
      this.counters.bytesOut += frame.length;
    } else {
      this.counters.dropPost++;
    }
  }

  private post(message: Uint8Array | LanControl): boolean {
    if (this.closedFlag) return false;
    try {
      this.channel.postMessage(message);
      return true;
    } catch {
      return false;
    }
  }

  private fromChannel(data: unknown): void {
    if (this.closedFlag) return;
    if (data instanceof Uint8Array) return this.frameIn(data);
    if (isControl(data)) return this.control(data);
    this.counters.dropNotFrame++;
  }

  private frameIn(frame: Uint8Array): void {
    if (frame.length < ETH_HEADER) {
      this.counters.dropShort++;
      return;
    }
    if (frame.length > MAX_FRAME) {
      this.counters.dropOversized++;
      return;
    }
    this.counters.framesIn++;
    this.counters.bytesIn += frame.length;
    this.port.send(frame);
    this.options.onActivity?.();
  }

  private control(m: LanControl): void {
    if (m.id === this.options.id) return; // our own id from another object: ignore (two machines given one id)
    if (!this.peers.has(m.id) && m.kind !== 'bye') {
      this.peers.add(m.id);
      this.counters.members = this.peers.size;
    }
    switch (m.kind) {
      case 'hello':
        if (m.claim) this.heard(m.claim);
        // Whoever serves tells the newcomer (which steps down if its claim is worse).
        if (this.serving) this.post({ t: 'trapdoor-lan', kind: 'router', id: this.options.id, claim: this.claim! });
        return;
      case 'router':
        this.heard(m.claim);
        return;
      case 'bye':
        this.peers.delete(m.id);
        this.counters.members = this.peers.size;
        if (m.router) {
          this.routerMember = null;
          // The LAN lost its router: a member that has one offers it again; the claims settle who serves.
          if (this.claim && !this.serving) {
            this.setServing(true, `the router's tab left; this tab's router serves the LAN again`);
            this.post({ t: 'trapdoor-lan', kind: 'router', id: this.options.id, claim: this.claim });
          }
        }
        return;
    }
  }

  /** Another member's router claims the LAN. */
  private heard(other: RouterClaim): void {
    if (!this.claim || !this.serving) {
      if (!this.serving) this.routerMember = other.id;
      return;
    }
    if (better(other, this.claim)) {
      this.routerMember = other.id;
      this.setServing(false, `another tab's router serves this LAN (member ${other.id}): this tab's router stepped down`);
    } else {
      // Ours is the better claim: make sure the other side hears it and steps down.
      this.post({ t: 'trapdoor-lan', kind: 'router', id: this.options.id, claim: this.claim });
    }
  }

  private setServing(on: boolean, why: string): void {
    if (on === this.serving) return;
    this.serving = on;
    if (on) {
      this.routerMember = this.options.id;
      this.options.router?.enable();
    } else {
      this.options.router?.disable();
    }
    this.options.onEvent?.(why);
  }
}

function better(a: RouterClaim, b: RouterClaim): boolean {
  return a.since < b.since || (a.since === b.since && a.id < b.id);
}

function isControl(d: unknown): d is LanControl {
  if (typeof d !== 'object' || d === null) return false;
  const m = d as Record<string, unknown>;
  if (m.t !== 'trapdoor-lan' || typeof m.id !== 'string') return false;
  const claimOk = (c: unknown) => typeof c === 'object' && c !== null
    && typeof (c as RouterClaim).since === 'number' && typeof (c as RouterClaim).id === 'string';
  if (m.kind === 'hello') return m.claim === null || claimOk(m.claim);
  if (m.kind === 'router') return claimOk(m.claim);
  if (m.kind === 'bye') return typeof m.router === 'boolean';
  return false;
}

/**
 * Turn a LAN's router on and off by plugging its port in and out of the switch (the
 * router keeps its state; while out, it hears nothing and sends nothing).
 */
export function routerSwitch(sw: EthernetSwitch, router: { transmit: (frame: Uint8Array) => void; receive(frame: Uint8Array): void }, portName = 'router'): RouterSwitch {
  return {
    disable() {
      const p = sw.port(portName);
      if (p) p.remove();
      router.transmit = () => {};
    },
    enable() {
      if (sw.port(portName)) return;
      const p = sw.addPort(portName, router);
      router.transmit = (frame) => p.send(frame);
    },
  };
}
