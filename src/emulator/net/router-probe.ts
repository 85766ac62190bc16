/**
 * One router per segment on an uplink that carries only frames (a WebSocket relay): a
 * machine joining it asks, with an ARP probe (RFC 5227 §2.1.1: sender address 0.0.0.0,
 * so no one's table learns from it), who has the router's address (10.0.2.2). Any router
 * already on the segment answers; the answer comes back through the uplink with the
 * router's MAC as its source, and then this machine's own router steps down: its port
 * leaves the switch and its guest's DHCP goes to the segment's router like any other
 * station's. The probe is sent straight into the uplink, so this machine's own router
 * never sees it.
 *
 * Later frames with a router's MAC coming in from the uplink (a router that was silent
 * when we asked) make ours step down as well, unless ours has already leased addresses:
 * then it is the one in use, and it stays.
 *
 * Two machines joining at the same moment each answer the other's probe, and each would
 * step down for the other's router, leaving the segment with none. Every router has the
 * same MAC, so the tie is broken by the probes' senders, the machines' own NIC addresses:
 * a machine that has heard another machine probe within SETTLE_NS, from a higher address
 * and none from a lower one, takes the router it then hears for that machine's (which
 * steps down for ours), keeps serving and probes again once SETTLE_NS has passed. A router
 * that answers that second probe is one that stays (a third machine's, already serving),
 * and ours steps down for it.
 */
import { ARP_REQUEST } from './arp.ts';
import { arpRequestFrame, decodeFrame } from './packets.ts';
import type { SwitchPort } from './switch.ts';
import type { RouterSwitch } from './broadcast-lan.ts';
import type { TimerId } from '../bus/device.ts';

/** How long a machine that probed at the same moment has to step down before this one asks again (virtual ns). */
export const SETTLE_NS = 500e6;

/** The virtual clock, as far as the probe needs it. */
export interface ProbeClock {
  now(): number;
  setTimer(atNs: number, callback: () => void): TimerId;
  cancelTimer(id: TimerId): void;
}

export interface ProbedRouter {
  readonly mac: Uint8Array;
  readonly hostIp: number;
  /** Leases it has handed out (ACKed): a router in use keeps serving. */
  leases(): number;
}

export class RouterProbe {
  /** Whether this machine's router serves the segment. */
  serving = true;
  probesSent = 0;
  /** Frames from another router seen coming in through the uplink. */
  othersHeard = 0;
  private warned = false;
  private readonly untap: () => void;
  /** When a machine with a higher (lower) NIC address than ours last probed for a router. */
  private higherProbedAt = -Infinity;
  private lowerProbedAt = -Infinity;
  /** The second probe after a tie, while it is pending. */
  private recheck: TimerId | null = null;

  constructor(
    private readonly uplink: SwitchPort,
    private readonly router: ProbedRouter,
    private readonly control: RouterSwitch,
    /** The MAC the probe is sent from (this machine's NIC: the answer is for it). */
    private readonly probeMac: Uint8Array,
    private readonly clock: ProbeClock,
    private readonly onEvent: (message: string) => void = () => {},
  ) {
    this.untap = uplink.addTap((frame, _t, direction) => {
      if (direction === 'in') this.heard(frame);
    });
  }

  /** Ask the segment for a router (call when the uplink opens, and again on each reconnection). */
  probe(): void {
    if (!this.serving) return;
    this.probesSent++;
    // Straight out through the uplink: the endpoint of the uplink's port is the relay.
    this.uplink.endpoint.receive(arpRequestFrame(this.probeMac, 0, this.router.hostIp));
  }

  close(): void {
    this.untap();
    if (this.recheck !== null) this.clock.cancelTimer(this.recheck);
    this.recheck = null;
  }

  private heard(frame: Uint8Array): void {
    if (frame.length < 14) return;
    if (compareMac(frame, 6, this.router.mac) !== 0) {
      this.heardProbe(frame);
      return;
    }
    this.othersHeard++;
    if (!this.serving) return;
    const now = this.clock.now();
    if (this.router.leases() === 0 && now - this.higherProbedAt <= SETTLE_NS && now - this.lowerProbedAt > SETTLE_NS) {
      // A tie (above): that machine's router is leaving; ask again when it has.
      if (this.recheck === null) {
        this.recheck = this.clock.setTimer(now + SETTLE_NS, () => {
          this.recheck = null;
          this.higherProbedAt = -Infinity;
          this.probe();
        });
      }
      return;
    }
    if (this.router.leases() > 0) {
      if (this.warned) return;
      this.warned = true;
      this.onEvent('Another router answers on this segment, but this one has leased addresses already: it keeps serving (two routers on one segment confuse its stations).');
      return;
    }
    this.serving = false;
    this.control.disable();
    this.onEvent('Another router serves this segment: this machine\'s router stepped down, and its guest leases from that one.');
  }

  /** Another machine's probe for the router (ARP request from 0.0.0.0 for its address): note when, and whose. */
  private heardProbe(frame: Uint8Array): void {
    const arp = decodeFrame(frame)?.arp;
    if (!arp || arp.oper !== ARP_REQUEST || arp.spa !== 0 || arp.tpa !== this.router.hostIp) return;
    const order = compareMac(arp.sha, 0, this.probeMac);
    if (order > 0) this.higherProbedAt = this.clock.now();
    else if (order < 0) this.lowerProbedAt = this.clock.now();
  }
}

/** Compare the six bytes at `bytes[at]` with `mac`: -1, 0 or 1. */
function compareMac(bytes: Uint8Array, at: number, mac: Uint8Array): number {
  for (let i = 0; i < 6; i++) {
    const d = bytes[at + i] - mac[i];
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
