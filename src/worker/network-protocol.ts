/**
 * The network's part of the page-worker protocol (protocol.ts includes these): the uplink
 * the user chose in the machine's settings, what the network panel is shown of the
 * machine's network, the packets it lists, and the capture it downloads.
 */
import type { PortCounters } from '../emulator/net/switch.ts';

/**
 * Where the machine's LAN leads (issue 24), kept with the machine's settings:
 * - none: no NIC at all (QEMU's `-nic none`);
 * - router: the user-mode router alone (DHCP, DNS from its table, pings to itself), as QEMU's
 *   `-nic user,restrict=on`: nothing leaves the page (the default);
 * - fetch: the router's HTTP on port 80 through the browser's fetch (10.0.2.2 is the page's own origin);
 * - wisp: the router's TCP and UDP through a Wisp server (fetch still carries 10.0.2.2:80);
 * - relay: the LAN joins a WebSocket relay (one Ethernet frame per message);
 * - tab-lan: the LAN joins the other tabs (and machines) on a BroadcastChannel of that name.
 */
export type UplinkSetting =
  | { kind: 'none' }
  | { kind: 'router' }
  | { kind: 'fetch' }
  | { kind: 'wisp'; url: string }
  | { kind: 'relay'; url: string }
  | { kind: 'tab-lan'; channel: string };

export type UplinkKind = UplinkSetting['kind'];

export const DEFAULT_UPLINK: UplinkSetting = { kind: 'router' };

/** A setting read back from storage or a message: a valid one, or null. */
export function checkUplink(v: unknown): UplinkSetting | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  switch (o.kind) {
    case 'none':
    case 'router':
    case 'fetch':
      return { kind: o.kind };
    case 'wisp':
    case 'relay':
      return typeof o.url === 'string' ? { kind: o.kind, url: o.url } : null;
    case 'tab-lan':
      return typeof o.channel === 'string' ? { kind: 'tab-lan', channel: o.channel } : null;
    default:
      return null;
  }
}

/** The uplink's state as the panel says it. */
export type UplinkState = 'off' | 'ready' | 'connecting' | 'open' | 'waiting' | 'closed' | 'error';

/** Something the network said in words (the router's upstreams, the uplink), with when (page clock, ms since 1970). */
export interface NetworkEventView {
  atMs: number;
  kind: string;
  flow: string;
  message: string;
}

export interface NetworkView {
  uplink: UplinkSetting;
  state: UplinkState;
  /** One sentence: what the uplink is doing now. */
  stateText: string;
  /** The first NIC's MAC (random on a shared LAN, so tabs differ), or null without a NIC. */
  mac: string | null;
  /** Every port of every LAN, as the switch counts it ("in" is from the port's endpoint into the switch). */
  ports: ({ lan: string; name: string; linkUp: boolean } & PortCounters)[];
  /** The uplink's own counters (frames, drops by reason, streams, ...), flat. */
  uplinkCounters: Record<string, number>;
  /** This machine's router; `serving` false when another tab's router serves the LAN. */
  router: null | {
    serving: boolean;
    leases: { mac: string; ip: string; state: string }[];
    tcpFlows: number;
    drops: Record<string, number>;
    counters: Record<string, number>;
  };
  /** The newest events, oldest first. */
  events: NetworkEventView[];
  /** The capture ring the pcap download is made from. */
  capture: { frames: number; bytes: number; dropped: number; seen: number };
}

/**
 * Packets seen on the first NIC's port since the last batch: their first bytes (enough for
 * the headers and an HTTP request line; all of a UDP datagram), packed. `meta` has four
 * numbers per packet: bytes kept, length on the wire, virtual time in ns, direction (0: the
 * guest sent it, 1: the guest received it). `lost`: packets left out because the batch was full.
 */
export interface PacketBatch {
  bytes: Uint8Array;
  meta: Float64Array;
  lost: number;
}

/** Page -> worker, the network's messages. */
export type NetworkToWorker =
  /** Ask for a `network` message (the panel's refresh). */
  | { type: 'network' }
  /** Ask for a `pcap` message: the capture ring as a file. */
  | { type: 'pcap' };

/** Worker -> page, the network's messages. */
export type NetworkFromWorker =
  | { type: 'network'; view: NetworkView | null; packets: PacketBatch | null }
  | { type: 'pcap'; file: Uint8Array | null; packets: number; reason?: string };
