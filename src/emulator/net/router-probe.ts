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
 * when we asked, or joined at the same moment) make ours step down as well, unless ours
 * has already leased addresses: then it is the one in use, and it stays.
 */
import { arpRequestFrame } from './packets.ts';
import type { SwitchPort } from './switch.ts';
import type { RouterSwitch } from './broadcast-lan.ts';

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

  constructor(
    private readonly uplink: SwitchPort,
    private readonly router: ProbedRouter,
    private readonly control: RouterSwitch,
    /** The MAC the probe is sent from (this machine's NIC: the answer is for it). */
    private readonly probeMac: Uint8Array,
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
  }

  private heard(frame: Uint8Array): void {
    if (frame.length < 14) return;
    for (let i = 0; i < 6; i++) if (frame[6 + i] !== this.router.mac[i]) return;
    this.othersHeard++;
    if (!this.serving) return;
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
}
