/**
 * One end of a TCP connection, as the user-mode router uses it to terminate a guest's
 * connection: the guest's TCP talks to this endpoint, the router relays its data to and
 * from a host socket. It is an ordinary TCP peer:
 *
 * - the RFC 793 / RFC 9293 §3.10 state machine, with simultaneous open and close,
 *   half-close both ways and TIME-WAIT (short: the other end is a LAN);
 * - RST and SYN checks against blind injection as RFC 5961 §3–4 (challenge ACKs);
 * - MSS (RFC 9293 §3.7.1) and window scaling (RFC 7323 §2), so the window can exceed 64 KiB;
 * - the sliding window, persist timer and zero-window probes (RFC 1122 §4.2.2.17),
 *   sender and receiver silly-window avoidance (RFC 1122 §4.2.3.3–4);
 * - the retransmission timer of RFC 6298 (SRTT/RTTVAR, Karn's algorithm, backoff);
 * - slow start, congestion avoidance, fast retransmit (RFC 5681), limited transmit
 *   (RFC 3042) and NewReno recovery (RFC 6582), with an initial window of 10 segments
 *   (RFC 6928);
 * - an out-of-order queue, trimming of duplicate and overlapping data, delayed ACKs
 *   (RFC 1122 §4.2.3.2: every second segment, or a 40 ms timer), window updates as the
 *   application drains;
 * - optional keep-alive (RFC 1122 §4.2.3.6).
 *
 * Flow control both ways: write() takes only what the send buffer holds and writable()
 * says when to go on; setReceiveBacklog() tells the endpoint how much delivered data the
 * application still holds, and the announced window shrinks and reopens with it.
 * Not implemented: SACK (never offered, so the peer sends none), timestamps (ignored, not
 * echoed, so the peer turns them off), urgent data (delivered inline), Nagle (segments go
 * out as soon as the window allows, as with TCP_NODELAY: the router relays, it does not
 * coalesce), saving and loading a connection with the machine's state.
 *
 * Time is the machine's virtual clock (DESIGN.md seam 6): every timer is a Clock timer.
 * The connection's variables are the Transmission Control Block as plain data (`tcb`),
 * named as RFC 793 §3.2 and RFC 6298/5681 name them. Nothing a peer sends can make this
 * throw: bad segments are counted and dropped or answered as the RFCs say.
 */
import type { Clock, TimerId } from '../bus/device.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from './tcp-segment.ts';

export {
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  encodeTcpSegment,
  parseTcpSegment,
  type TcpSegment,
} from './tcp-segment.ts';

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

export type TcpCloseReason = 'normal' | 'reset' | 'timeout' | 'refused';

export interface TcpEvents {
  /** A segment to send to the peer (the router wraps it in IPv4/Ethernet). */
  output(seg: TcpSegment): void;
  established(): void;
  /** In-order bytes for the application. The array is the application's to keep. */
  data(bytes: Uint8Array): void;
  /** The peer's FIN, after all its data. */
  remoteClosed(): void;
  /** The send buffer has room again after write() returned less than asked. */
  writable(): void;
  /** The connection is gone; no more calls after this. */
  closed(reason: TcpCloseReason): void;
}

export interface TcpOptions {
  /** Our MSS to announce (default 1460: a 1500-byte MTU less 40 bytes of headers). */
  mss?: number;
  /** Send buffer, bytes (default 256 KiB). */
  sendBuffer?: number;
  /** Receive buffer, bytes (default 256 KiB): the window we announce, scaled when the peer offers scaling. */
  receiveBuffer?: number;
  /** Initial send sequence number; by default derived from the addresses, ports and the clock. */
  iss?: number;
  /** Consecutive retransmission timeouts of data before giving up with closed('timeout') (default 10). */
  maxRetries?: number;
  /** Retransmissions of a SYN or SYN-ACK before giving up (default 5). */
  synRetries?: number;
  /** TIME-WAIT length in ns (default 2 s: 2*MSL for a LAN, not RFC 793's 4 minutes). */
  timeWait?: number;
  /**
   * Keep-alive (RFC 1122 §4.2.3.6), off by default: after `idle` ns without hearing from
   * the peer, send a probe every `interval` ns; after `probes` unanswered ones give up with
   * closed('timeout'). It is how the router learns that a guest vanished (a reset machine)
   * from a connection that was idle or half-closed.
   */
  keepAlive?: { idle: number; interval: number; probes: number };
}

/** Nanoseconds, as the Clock counts. */
const MS = 1_000_000;
/** RFC 6298 §2.1: RTO before any measurement. */
export const TCP_INITIAL_RTO = 1000 * MS;
/** RFC 6298 §2.4 says 1 s; 200 ms as Linux uses suits a LAN-like link (the task allows it). */
export const TCP_MIN_RTO = 200 * MS;
/** RFC 6298 §2.5: an upper bound of at least 60 s. */
export const TCP_MAX_RTO = 60_000 * MS;
/** RFC 6298 §5.7: RTO once data flows after the SYN had to be retransmitted. */
const RTO_AFTER_SYN_LOSS = 3000 * MS;
/** The clock granularity G of RFC 6298 §2. */
const CLOCK_G = 1 * MS;
/** RFC 1122 §4.2.3.2: an ACK may be delayed at most 500 ms; Linux's minimum is 40 ms. */
const DELAYED_ACK = 40 * MS;
/** RFC 1122 §4.2.2.6 / RFC 9293 §3.7.1: the MSS to assume when the peer sends none. */
const DEFAULT_PEER_MSS = 536;
/** RFC 7323 §2.3: the largest shift. */
const MAX_WSCALE = 14;
const DEFAULT_BUFFER = 256 * 1024;

/** The Transmission Control Block (RFC 793 §3.2), plain data. Times and durations are ns. */
export interface Tcb {
  state: TcpState;
  /** Send sequence variables (RFC 793 §3.2 figure 4). */
  iss: number;
  snd_una: number;
  snd_nxt: number;
  /** Highest sequence sent + 1: snd_nxt falls back below it after a timeout (go-back-N). */
  snd_max: number;
  /** The peer's window in bytes, scaled. */
  snd_wnd: number;
  snd_wl1: number;
  snd_wl2: number;
  /** Largest window the peer ever offered (sender SWS avoidance, RFC 1122 §4.2.3.4). */
  max_snd_wnd: number;
  /** Receive sequence variables. */
  irs: number;
  rcv_nxt: number;
  /** The window we last announced, in bytes from rcv_nxt. */
  rcv_wnd: number;
  /** rcv_nxt + rcv_wnd when we last announced: never moved left (RFC 1122 §4.2.2.16). */
  rcv_adv: number;
  /** Window scaling (RFC 7323): the peer's shift for its window field, ours for what we announce. */
  snd_wscale: number;
  rcv_wscale: number;
  /** Both SYNs carried the option, so windows after the SYNs are scaled. */
  wscale_ok: boolean;
  /** Segment size we send: the peer's MSS, capped by ours. */
  smss: number;
  /** RFC 6298 §2. srtt 0 with rtt_measured false means no measurement yet. */
  srtt: number;
  rttvar: number;
  rto: number;
  rtt_measured: boolean;
  /** The one segment being timed (Karn): its end sequence and send time; rtt_seq_valid false when none. */
  rtt_seq: number;
  rtt_time: number;
  rtt_seq_valid: boolean;
  /** Consecutive retransmission timeouts without progress. */
  retries: number;
  /** RFC 5681 congestion control. */
  cwnd: number;
  ssthresh: number;
  dupacks: number;
  /** RFC 6582: highest sequence sent when recovery began; in_recovery while it is not yet acked. */
  recover: number;
  in_recovery: boolean;
  /** The application called close(): FIN follows the queued data, at fin_seq. */
  fin_queued: boolean;
  fin_seq: number;
  /** The persist timer runs (the peer's window is too small to send into). */
  persisting: boolean;
  persist_backoff: number;
  /** Bytes delivered that the application still holds (receive-side flow control). */
  rcv_backlog: number;
  /** In-order segments received since our last ACK (delayed ACK). */
  ack_pending: number;
  syn_retransmitted: boolean;
}

export interface TcpStats {
  segmentsIn: number;
  segmentsOut: number;
  retransmits: number;
  timeouts: number;
  /** Bytes delivered to the application. */
  bytesIn: number;
  /** Bytes of data sent for the first time. */
  bytesOut: number;
  /** Segments that arrived ahead of rcv_nxt and were queued. */
  outOfOrder: number;
  /** ns */
  srtt: number;
  /** ns */
  rto: number;
  fastRetransmits: number;
  dupAcksIn: number;
  windowProbes: number;
  keepAliveProbes: number;
  challengeAcks: number;
  /** Segments dropped as unacceptable (outside the window, wrong ports, bad ACK). */
  dropped: number;
}

// Sequence arithmetic modulo 2^32 (RFC 793 §3.3).
const seqAdd = (a: number, n: number): number => (a + n) >>> 0;
/** a - b as a signed distance. */
const seqSub = (a: number, b: number): number => (a - b) | 0;
const seqLt = (a: number, b: number): boolean => seqSub(a, b) < 0;
const seqLe = (a: number, b: number): boolean => seqSub(a, b) <= 0;
const seqGt = (a: number, b: number): boolean => seqSub(a, b) > 0;
const seqGe = (a: number, b: number): boolean => seqSub(a, b) >= 0;

interface OooSegment {
  seq: number;
  data: Uint8Array;
}

export class TcpEndpoint {
  readonly tcb: Tcb;
  readonly stats: TcpStats = {
    segmentsIn: 0,
    segmentsOut: 0,
    retransmits: 0,
    timeouts: 0,
    bytesIn: 0,
    bytesOut: 0,
    outOfOrder: 0,
    srtt: 0,
    rto: TCP_INITIAL_RTO,
    fastRetransmits: 0,
    dupAcksIn: 0,
    windowProbes: 0,
    keepAliveProbes: 0,
    challengeAcks: 0,
    dropped: 0,
  };

  private readonly ourMss: number;
  private readonly sendBufferSize: number;
  private readonly receiveBufferSize: number;
  private readonly maxRetries: number;
  private readonly synRetries: number;
  private readonly timeWaitNs: number;
  private readonly keepAlive: { idle: number; interval: number; probes: number } | null;
  /** The shift we use when the peer agrees to scaling: the smallest that fits the receive buffer in 16 bits. */
  private readonly ourWscale: number;

  /**
   * Send buffer: a ring holding bytes from sndBufSeq (the first unacknowledged data byte)
   * on. It starts small and grows to sendBufferSize as writes need, so an idle connection
   * costs little.
   */
  private sndBuf: Uint8Array;
  private sndBufHead = 0;
  private sndBufLen = 0;
  private sndBufSeq = 0;
  private writeBlocked = false;

  /** Out-of-order queue: disjoint, sorted by seq, all beyond rcv_nxt. */
  private ooo: OooSegment[] = [];
  /** Sequence number of a FIN seen beyond a gap, or null. */
  private oooFin: number | null = null;

  private rtxTimer: TimerId = 0;
  private persistTimer: TimerId = 0;
  private delackTimer: TimerId = 0;
  private timeWaitTimer: TimerId = 0;
  private keepAliveTimer: TimerId = 0;
  /** When the peer was last heard from, and keep-alive probes sent since. */
  private lastHeard = 0;
  private keepAliveSent = 0;

  /** Application events are queued while a segment or timer is processed and delivered after. */
  private pendingEvents: (() => void)[] = [];
  /**
   * Bytes taken in whose data() event is still queued: the application cannot have counted
   * them in its backlog yet, so the window we announce meanwhile leaves room for them.
   */
  private undelivered = 0;
  private flushing = false;
  private gone = false;

  constructor(
    private readonly clock: Clock,
    readonly local: { ip: number; port: number },
    readonly remote: { ip: number; port: number },
    private readonly events: TcpEvents,
    options: TcpOptions = {},
  ) {
    this.ourMss = clampInt(options.mss ?? 1460, 64, 65495);
    this.sendBufferSize = clampInt(options.sendBuffer ?? DEFAULT_BUFFER, 1, 1 << 30);
    this.receiveBufferSize = clampInt(options.receiveBuffer ?? DEFAULT_BUFFER, 1, 1 << 30);
    this.maxRetries = clampInt(options.maxRetries ?? 10, 1, 100);
    this.synRetries = clampInt(options.synRetries ?? 5, 0, 100);
    this.timeWaitNs = Math.max(0, options.timeWait ?? 2000 * MS);
    const ka = options.keepAlive;
    this.keepAlive =
      ka && ka.idle > 0 && ka.interval > 0
        ? { idle: ka.idle, interval: ka.interval, probes: clampInt(ka.probes, 1, 1000) }
        : null;
    this.sndBuf = new Uint8Array(Math.min(this.sendBufferSize, 16 * 1024));
    let shift = 0;
    while (shift < MAX_WSCALE && this.receiveBufferSize / 2 ** shift > 0xffff) shift++;
    this.ourWscale = shift;
    const iss = (options.iss ?? deriveIss(local, remote, clock.now())) >>> 0;
    this.tcb = {
      state: 'CLOSED',
      iss,
      snd_una: iss,
      snd_nxt: iss,
      snd_max: iss,
      snd_wnd: 0,
      snd_wl1: 0,
      snd_wl2: 0,
      max_snd_wnd: 0,
      irs: 0,
      rcv_nxt: 0,
      rcv_wnd: 0,
      rcv_adv: 0,
      snd_wscale: 0,
      rcv_wscale: 0,
      wscale_ok: false,
      smss: Math.min(DEFAULT_PEER_MSS, this.ourMss),
      srtt: 0,
      rttvar: 0,
      rto: TCP_INITIAL_RTO,
      rtt_measured: false,
      rtt_seq: 0,
      rtt_time: 0,
      rtt_seq_valid: false,
      retries: 0,
      cwnd: 0,
      ssthresh: 0x7fffffff,
      dupacks: 0,
      recover: iss,
      in_recovery: false,
      fin_queued: false,
      fin_seq: 0,
      persisting: false,
      persist_backoff: 0,
      rcv_backlog: 0,
      ack_pending: 0,
      syn_retransmitted: false,
    };
    this.sndBufSeq = seqAdd(iss, 1);
  }

  get state(): TcpState {
    return this.tcb.state;
  }

  get sendBufferFree(): number {
    if (this.tcb.fin_queued || !this.canSend()) return 0;
    return this.sendBufferSize - this.sndBufLen;
  }

  /** Bytes written and not yet acknowledged by the peer. */
  get sendQueued(): number {
    return this.sndBufLen;
  }

  // ---- Opening -------------------------------------------------------------------------

  /** Passive open from the peer's SYN (the router saw a SYN for a new flow): answers SYN-ACK. */
  acceptSyn(syn: TcpSegment): void {
    const t = this.tcb;
    if (t.state !== 'CLOSED' || this.gone) return;
    this.stats.segmentsIn++;
    if ((syn.flags & (TCP_SYN | TCP_RST | TCP_ACK)) !== TCP_SYN) {
      // Not an opening SYN: answer as a closed port would (RFC 793 "Reset Generation").
      const rst = resetFor(syn);
      if (rst) this.emitSegment(rst);
      this.finish('refused');
      this.flush();
      return;
    }
    this.takeSynOptions(syn);
    t.irs = syn.seq >>> 0;
    t.rcv_nxt = seqAdd(t.irs, 1);
    // RFC 7323 §2.2: the window in a SYN is never scaled.
    this.updateSendWindow(syn.window, syn.seq, 0, true);
    t.state = 'SYN-RECEIVED';
    this.sendSyn(true);
    this.armRtx();
    this.flush();
  }

  /** Active open (hostfwd): sends SYN. */
  connect(): void {
    const t = this.tcb;
    if (t.state !== 'CLOSED' || this.gone) return;
    t.state = 'SYN-SENT';
    t.rcv_wscale = this.ourWscale;
    this.sendSyn(false);
    this.armRtx();
    this.flush();
  }

  // ---- Application side ------------------------------------------------------------------

  /** Queue application bytes; returns how many were taken (send buffer space). */
  write(data: Uint8Array): number {
    if (this.gone || this.tcb.fin_queued || !this.canSend()) return 0;
    const n = Math.min(data.length, this.sendBufferSize - this.sndBufLen);
    if (n > 0) {
      if (this.sndBufLen + n > this.sndBuf.length) this.growSendBuffer(this.sndBufLen + n);
      const size = this.sndBuf.length;
      const tail = (this.sndBufHead + this.sndBufLen) % size;
      const first = Math.min(n, size - tail);
      this.sndBuf.set(data.subarray(0, first), tail);
      if (n > first) this.sndBuf.set(data.subarray(first, n), 0);
      this.sndBufLen += n;
    }
    if (n < data.length) this.writeBlocked = true;
    if (this.isSynchronized()) this.trySend();
    this.flush();
    return n;
  }

  /** The application will send no more: FIN after the queued data (half-close). */
  close(): void {
    const t = this.tcb;
    if (this.gone || t.fin_queued) return;
    switch (t.state) {
      case 'CLOSED':
      case 'LISTEN':
      case 'SYN-SENT':
        // RFC 793 CLOSE call: nothing was synchronized, so nothing to tell the peer.
        this.finish('normal');
        break;
      case 'SYN-RECEIVED':
        // FIN goes out once the handshake completes (RFC 793: "queue for processing after
        // entering ESTABLISHED state").
        this.queueFin();
        break;
      case 'ESTABLISHED':
        this.queueFin();
        t.state = 'FIN-WAIT-1';
        this.trySend();
        break;
      case 'CLOSE-WAIT':
        this.queueFin();
        t.state = 'LAST-ACK';
        this.trySend();
        break;
      default:
        break; // already closing
    }
    this.flush();
  }

  /** RST now (RFC 793 ABORT call), then closed('reset'). */
  abort(): void {
    if (this.gone) return;
    const t = this.tcb;
    if (this.isSynchronized() || t.state === 'SYN-RECEIVED') {
      this.emitSegment(this.makeSegment(t.snd_nxt, TCP_RST | TCP_ACK, new Uint8Array(0)));
    }
    this.finish('reset');
    this.flush();
  }

  /**
   * Receive-side flow control: the application still holds `bytes` of what was delivered
   * (the host socket is backed up). The window we announce is the receive buffer less this,
   * never moving its right edge left (RFC 1122 §4.2.2.16); when the backlog shrinks enough
   * to matter (RFC 1122 §4.2.3.3) a window update goes out.
   */
  setReceiveBacklog(bytes: number): void {
    if (this.gone) return;
    const t = this.tcb;
    t.rcv_backlog = clampInt(bytes, 0, this.receiveBufferSize);
    if (!this.receiving()) return;
    const current = Math.max(0, seqSub(t.rcv_adv, t.rcv_nxt));
    if (this.receiveWindowTarget() - current >= this.windowUpdateThreshold()) this.sendAck();
    this.flush();
  }

  get receiveBacklog(): number {
    return this.tcb.rcv_backlog;
  }

  // ---- Segments from the peer --------------------------------------------------------

  /** A segment from the peer for this connection. */
  input(seg: TcpSegment): void {
    if (this.gone) return;
    this.stats.segmentsIn++;
    if (seg.srcPort !== this.remote.port || seg.dstPort !== this.local.port) {
      this.stats.dropped++;
      return;
    }
    this.lastHeard = this.clock.now();
    this.keepAliveSent = 0;
    switch (this.tcb.state) {
      case 'CLOSED':
      case 'LISTEN':
        this.stats.dropped++;
        break;
      case 'SYN-SENT':
        this.inputSynSent(seg);
        break;
      default:
        this.inputSynchronized(seg);
        break;
    }
    this.flush();
  }

  /**
   * A SYN for this connection's address pair arrived while it lingers in TIME-WAIT: if its
   * sequence number lies beyond everything of the old connection (RFC 1122 §4.2.2.13,
   * RFC 6191 without timestamps), end this endpoint now (closed('normal')) and return true,
   * so the router can open a new connection for it. Otherwise false: pass it to input().
   */
  yieldToSyn(seg: TcpSegment): boolean {
    const t = this.tcb;
    if (this.gone || t.state !== 'TIME-WAIT') return false;
    if ((seg.flags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN || !seqGt(seg.seq, t.rcv_nxt)) return false;
    this.finish('normal');
    this.flush();
    return true;
  }

  /** RFC 793 p.66 "If the state is SYN-SENT". */
  private inputSynSent(seg: TcpSegment): void {
    const t = this.tcb;
    const hasAck = (seg.flags & TCP_ACK) !== 0;
    if (hasAck && (seqLe(seg.ack, t.iss) || seqGt(seg.ack, t.snd_max))) {
      if (!(seg.flags & TCP_RST)) this.emitSegment(this.makeRst(seg.ack));
      this.stats.dropped++;
      return;
    }
    if (seg.flags & TCP_RST) {
      // Only an RST that acknowledges our SYN refuses the connection (RFC 5961 §3.2 keeps this rule).
      if (hasAck) this.finish('refused');
      else this.stats.dropped++;
      return;
    }
    if (!(seg.flags & TCP_SYN)) {
      this.stats.dropped++;
      return;
    }
    this.takeSynOptions(seg);
    t.irs = seg.seq >>> 0;
    t.rcv_nxt = seqAdd(t.irs, 1);
    t.rcv_adv = seqAdd(t.rcv_nxt, t.rcv_wnd); // what our SYN announced
    if (hasAck) {
      this.sampleRtt(seg.ack);
      t.snd_una = seg.ack >>> 0;
      this.updateSendWindow(seg.window, seg.seq, seg.ack, true);
      this.enterEstablished();
      if (this.gone) return;
      // Data or FIN riding on the SYN-ACK is processed as in ESTABLISHED.
      const rest: TcpSegment = { ...seg, seq: t.rcv_nxt, flags: seg.flags & ~TCP_SYN };
      if (rest.payload.length > 0 || rest.flags & TCP_FIN) this.processData(rest);
      else this.sendAck();
      this.trySend();
    } else {
      // Simultaneous open (RFC 793 figure 8): answer with SYN-ACK from our ISS.
      this.updateSendWindow(seg.window, seg.seq, 0, true);
      t.state = 'SYN-RECEIVED';
      t.snd_nxt = t.iss;
      this.sendSyn(true);
      this.armRtx();
    }
  }

  /** RFC 793 p.69 "Otherwise" (every synchronized state and SYN-RECEIVED). */
  private inputSynchronized(seg: TcpSegment): void {
    const t = this.tcb;
    const flags = seg.flags;

    // A retransmitted SYN while our SYN-ACK is unacknowledged: it was lost, send it again.
    if (t.state === 'SYN-RECEIVED' && flags & TCP_SYN && !(flags & TCP_ACK) && seg.seq >>> 0 === t.irs) {
      this.sendSyn(true);
      return;
    }

    const segLen = seg.payload.length + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
    const wnd = Math.max(0, seqSub(t.rcv_adv, t.rcv_nxt));
    const seq = seg.seq >>> 0;
    const acceptable = this.sequenceAcceptable(seq, segLen, wnd);

    // RST (RFC 5961 §3.2): exactly rcv_nxt resets; elsewhere in the window draws a
    // challenge ACK; outside the window it is dropped.
    if (flags & TCP_RST) {
      if (!acceptable) {
        this.stats.dropped++;
      } else if (seq === t.rcv_nxt) {
        // RFC 1337: a TIME-WAIT connection ignores RST and lets its timer run out.
        if (t.state !== 'TIME-WAIT') this.finish('reset');
      } else {
        this.challengeAck();
      }
      return;
    }

    if (!acceptable) {
      // RFC 793: answer with an ACK (this is also how keep-alives and retransmitted FINs
      // are answered). RFC 793 p.69 makes an allowance for ACKs when our window is zero:
      // the ACK field is still looked at.
      this.stats.dropped++;
      if (t.state === 'TIME-WAIT' && flags & TCP_FIN) this.armTimeWait();
      if (flags & TCP_ACK && t.state !== 'SYN-RECEIVED') this.processAck(seg, true);
      if (this.gone) return;
      this.sendAck();
      // The ACK may have opened the window or freed the pipe (a retransmitted FIN carries one).
      this.trySend();
      return;
    }

    // SYN in a synchronized state (RFC 5961 §4): challenge ACK, drop.
    if (flags & TCP_SYN) {
      this.challengeAck();
      return;
    }
    if (!(flags & TCP_ACK)) {
      this.stats.dropped++;
      return;
    }

    if (t.state === 'SYN-RECEIVED') {
      if (seqGt(seg.ack, t.snd_una) && seqLe(seg.ack, t.snd_max)) {
        this.enterEstablished();
        if (this.gone) return;
      } else {
        // RFC 793: an unacceptable ACK in SYN-RECEIVED draws <SEQ=SEG.ACK><CTL=RST>.
        this.emitSegment(this.makeRst(seg.ack));
        this.stats.dropped++;
        return;
      }
    }

    if (!this.processAck(seg, false)) return;
    if (this.gone) return;
    this.processData(seg);
    if (this.gone) return;
    this.trySend();
  }

  /** RFC 793 p.69: the four cases of the acceptability test, with a zero-length probe allowed at the window's edge. */
  private sequenceAcceptable(seq: number, segLen: number, wnd: number): boolean {
    const t = this.tcb;
    if (segLen === 0) {
      if (wnd === 0) return seq === t.rcv_nxt;
      return seqGe(seq, t.rcv_nxt) && seqLe(seq, seqAdd(t.rcv_nxt, wnd));
    }
    if (wnd === 0) return false;
    const end = seqAdd(seq, segLen - 1);
    const right = seqAdd(t.rcv_nxt, wnd);
    return (seqGe(seq, t.rcv_nxt) && seqLt(seq, right)) || (seqGe(end, t.rcv_nxt) && seqLt(end, right));
  }

  /**
   * The ACK field (RFC 793 p.72, RFC 5681 §3.2, RFC 6582 §3.2). Returns false when the
   * segment is to be dropped (it acknowledged something never sent).
   */
  private processAck(seg: TcpSegment, onlyAck: boolean): boolean {
    const t = this.tcb;
    const ack = seg.ack >>> 0;
    if (seqGt(ack, t.snd_max)) {
      // RFC 793: ACK of something not yet sent: send an ACK, drop the segment.
      this.stats.dropped++;
      if (!onlyAck) this.sendAck();
      return false;
    }
    if (seqLt(ack, t.snd_una)) return true; // old duplicate ACK: ignore it, keep the data

    const wndBefore = t.snd_wnd;
    if (seqGt(ack, t.snd_una)) {
      this.newAck(ack);
    } else if (
      seg.payload.length === 0 &&
      !(seg.flags & (TCP_SYN | TCP_FIN)) &&
      seqGt(t.snd_max, t.snd_una) &&
      // Answers to zero-window probes repeat the same ACK; they say nothing about loss.
      !t.persisting &&
      t.snd_wnd > 0 &&
      (seg.window & 0xffff) * 2 ** t.snd_wscale === t.snd_wnd
    ) {
      // RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT".
      this.stats.dupAcksIn++;
      this.duplicateAck();
    }
    this.updateSendWindow(seg.window, seg.seq, ack, false);
    if (t.snd_wnd > 0 && wndBefore === 0) this.stopPersist();
    // The peer answers while its window is closed: it is alive, so however long the window
    // stays shut the connection is not timed out (RFC 1122 §4.2.2.17).
    if (t.snd_wnd === 0) t.retries = 0;

    if (this.finAcked()) {
      switch (t.state) {
        case 'FIN-WAIT-1':
          t.state = 'FIN-WAIT-2';
          break;
        case 'CLOSING':
          this.enterTimeWait();
          break;
        case 'LAST-ACK':
          this.finish('normal');
          return false;
        default:
          break;
      }
    }
    return true;
  }

  private finAcked(): boolean {
    const t = this.tcb;
    return t.fin_queued && seqGt(t.snd_una, t.fin_seq);
  }

  /** snd_una advances to `ack`: RTT sample, release buffer, grow cwnd or continue recovery, re-arm timers. */
  private newAck(ack: number): void {
    const t = this.tcb;
    const acked = seqSub(ack, t.snd_una);
    this.sampleRtt(ack);
    // Release acknowledged data from the buffer (the SYN and FIN occupy no buffer bytes).
    const dataAcked = Math.max(0, Math.min(seqSub(ack, this.sndBufSeq), this.sndBufLen));
    if (dataAcked > 0) {
      this.sndBufHead = (this.sndBufHead + dataAcked) % this.sndBuf.length;
      this.sndBufLen -= dataAcked;
      this.sndBufSeq = seqAdd(this.sndBufSeq, dataAcked);
    }
    t.snd_una = ack;
    if (seqLt(t.snd_nxt, ack)) t.snd_nxt = ack;
    t.retries = 0;

    if (t.in_recovery) {
      if (seqGt(ack, t.recover)) {
        // Full acknowledgment (RFC 6582 §3.2 step 3, option 1).
        const flight = seqSub(t.snd_max, t.snd_una);
        t.cwnd = Math.min(t.ssthresh, Math.max(flight, t.smss) + t.smss);
        t.in_recovery = false;
        t.dupacks = 0;
      } else {
        // Partial acknowledgment (step 4): the next hole is lost too; retransmit it now,
        // deflate the window by what was acked, and restart the timer ("Slow-but-Steady", §4).
        this.retransmitFirst();
        t.cwnd = Math.max(t.smss, t.cwnd - acked + (acked >= t.smss ? t.smss : 0));
        this.armRtx();
      }
    } else {
      t.dupacks = 0;
      if (t.cwnd < t.ssthresh) t.cwnd += Math.min(acked, t.smss); // slow start, RFC 5681 (2)
      else t.cwnd += Math.max(1, Math.floor((t.smss * t.smss) / t.cwnd)); // congestion avoidance (3)
      // Beyond what the send buffer can ever have in flight cwnd means nothing; keep it finite.
      t.cwnd = Math.min(t.cwnd, 2 * this.sendBufferSize + 4 * t.smss);
    }

    // RFC 6298 §5.2–5.3: stop the timer when everything is acknowledged, else restart it.
    if (t.snd_una === t.snd_max) this.cancelRtx();
    else if (!t.in_recovery && !t.persisting) this.armRtx();

    if (this.writeBlocked && (this.sendBufferSize - this.sndBufLen >= this.sendBufferSize / 4 || this.sndBufLen === 0)) {
      this.writeBlocked = false;
      this.queueEvent(() => this.events.writable());
    }
  }

  /** RFC 5681 §3.2 / RFC 6582 §3.2 steps 1–2. */
  private duplicateAck(): void {
    const t = this.tcb;
    t.dupacks++;
    if (t.in_recovery) {
      t.cwnd += t.smss; // inflate for the segment that left the network
      return;
    }
    // RFC 6582 §3.2 step 2: not again for losses inside the window already recovered.
    if (t.dupacks === 3 && seqGt(t.snd_una, t.recover)) {
      const flight = seqSub(t.snd_max, t.snd_una);
      t.ssthresh = Math.max(Math.floor(flight / 2), 2 * t.smss); // RFC 5681 (4)
      t.recover = seqSub(t.snd_max, 1) >>> 0;
      t.in_recovery = true;
      this.stats.fastRetransmits++;
      this.retransmitFirst();
      t.cwnd = t.ssthresh + 3 * t.smss;
      this.armRtx();
    }
  }

  /** RFC 793 p.72 window update, guarded by snd_wl1/snd_wl2 against old segments. */
  private updateSendWindow(window: number, seq: number, ack: number, force: boolean): void {
    const t = this.tcb;
    if (force || seqLt(t.snd_wl1, seq) || (t.snd_wl1 === seq >>> 0 && seqLe(t.snd_wl2, ack))) {
      t.snd_wnd = (window & 0xffff) * (force ? 1 : 2 ** t.snd_wscale);
      t.snd_wl1 = seq >>> 0;
      t.snd_wl2 = ack >>> 0;
      if (t.snd_wnd > t.max_snd_wnd) t.max_snd_wnd = t.snd_wnd;
    }
  }

  /** Segment text and FIN (RFC 793 p.74–75) for a segment that passed the checks. */
  private processData(seg: TcpSegment): void {
    const t = this.tcb;
    if (!this.receiving()) return;
    let seq = seg.seq >>> 0;
    let data = seg.payload;
    let fin = (seg.flags & TCP_FIN) !== 0;
    if (data.length === 0 && !fin) return;

    // Trim what we already have from the front, and what lies beyond the window from the back.
    if (seqLt(seq, t.rcv_nxt)) {
      const cut = Math.min(data.length, seqSub(t.rcv_nxt, seq));
      data = data.subarray(cut);
      seq = seqAdd(seq, cut);
      if (seqLt(seq, t.rcv_nxt)) return; // only a FIN already counted
    }
    const right = seqAdd(t.rcv_nxt, Math.max(0, seqSub(t.rcv_adv, t.rcv_nxt)));
    if (seqGt(seqAdd(seq, data.length), right)) {
      data = data.subarray(0, Math.max(0, seqSub(right, seq)));
      fin = false;
    }

    if (seq !== t.rcv_nxt) {
      // Ahead of a gap: keep it and ACK at once so the sender sees the hole (RFC 5681 §4.2).
      this.stats.outOfOrder++;
      this.queueOutOfOrder(seq, data);
      if (fin) this.oooFin = seqAdd(seq, data.length);
      this.sendAck();
      return;
    }

    if (data.length === 0 && !fin) {
      // All of it was a duplicate: ACK at once so the sender learns where we are.
      this.sendAck();
      return;
    }
    const finSeq = seqAdd(seq, data.length);
    const hadGap = this.ooo.length > 0;
    if (data.length > 0) this.deliver(data);
    if (hadGap) this.drainOutOfOrder();
    if ((fin && t.rcv_nxt === finSeq) || (this.oooFin !== null && this.oooFin === t.rcv_nxt)) {
      this.receiveFin();
      return;
    }
    if (hadGap) {
      // A segment that fills (part of) a gap is ACKed at once (RFC 5681 §4.2).
      this.sendAck();
      return;
    }
    // Delayed ACK (RFC 1122 §4.2.3.2): at least every second segment, else within 40 ms.
    t.ack_pending++;
    if (t.ack_pending >= 2) this.sendAck();
    else if (this.delackTimer === 0) {
      this.delackTimer = this.clock.setTimer(this.clock.now() + DELAYED_ACK, () => {
        this.delackTimer = 0;
        if (this.gone) return;
        if (this.tcb.ack_pending > 0) this.sendAck();
        this.flush();
      });
    }
  }

  private deliver(data: Uint8Array): void {
    const t = this.tcb;
    t.rcv_nxt = seqAdd(t.rcv_nxt, data.length);
    this.stats.bytesIn += data.length;
    const copy = data.slice();
    this.undelivered += copy.length;
    this.queueEvent(() => {
      this.undelivered -= copy.length;
      this.events.data(copy);
    });
  }

  /** Insert [seq, seq+data.length) into the out-of-order queue, keeping only bytes not held yet. */
  private queueOutOfOrder(seq: number, data: Uint8Array): void {
    const pieces: OooSegment[] = [];
    let a = seq;
    let d = data;
    for (const q of this.ooo) {
      if (d.length === 0) break;
      const qEnd = seqAdd(q.seq, q.data.length);
      if (seqLe(qEnd, a)) continue;
      if (seqGe(q.seq, seqAdd(a, d.length))) break;
      if (seqLt(a, q.seq)) {
        const n = seqSub(q.seq, a);
        pieces.push({ seq: a, data: d.slice(0, n) });
        d = d.subarray(n);
        a = q.seq;
      }
      const skip = Math.min(d.length, seqSub(qEnd, a));
      d = d.subarray(skip);
      a = seqAdd(a, skip);
    }
    if (d.length > 0) pieces.push({ seq: a, data: d.slice() });
    if (pieces.length === 0) return;
    const base = this.tcb.rcv_nxt;
    this.ooo.push(...pieces);
    this.ooo.sort((x, y) => seqSub(x.seq, base) - seqSub(y.seq, base));
  }

  /** Deliver queued segments that the advancing rcv_nxt has reached. */
  private drainOutOfOrder(): void {
    const t = this.tcb;
    while (this.ooo.length > 0 && seqLe(this.ooo[0]!.seq, t.rcv_nxt)) {
      const q = this.ooo.shift()!;
      const skip = seqSub(t.rcv_nxt, q.seq);
      if (skip < q.data.length) this.deliver(q.data.subarray(skip));
    }
  }

  /** The peer's FIN is next in sequence (RFC 793 p.75 "eighth, check the FIN bit"). */
  private receiveFin(): void {
    const t = this.tcb;
    t.rcv_nxt = seqAdd(t.rcv_nxt, 1);
    this.ooo = [];
    this.oooFin = null;
    this.queueEvent(() => this.events.remoteClosed());
    switch (t.state) {
      case 'ESTABLISHED':
        t.state = 'CLOSE-WAIT';
        break;
      case 'FIN-WAIT-1':
        if (this.finAcked()) this.enterTimeWait();
        else t.state = 'CLOSING';
        break;
      case 'FIN-WAIT-2':
        this.enterTimeWait();
        break;
      default:
        break;
    }
    this.sendAck();
  }

  // ---- Sending ----------------------------------------------------------------------

  /** Send what the windows allow (RFC 793 SEND, RFC 5681 cwnd, RFC 1122 §4.2.3.4 SWS avoidance). */
  private trySend(): void {
    const t = this.tcb;
    if (this.gone || !this.isSynchronized()) return;
    if (t.state === 'SYN-RECEIVED') return;
    for (;;) {
      const bufEnd = seqAdd(this.sndBufSeq, this.sndBufLen);
      const avail = Math.max(0, seqSub(bufEnd, t.snd_nxt));
      const finPending = t.fin_queued && seqLe(t.snd_nxt, t.fin_seq);
      if (avail === 0 && !finPending) break;
      const flight = seqSub(t.snd_nxt, t.snd_una);
      // Limited transmit (RFC 3042): the first two duplicate ACKs each let one new segment
      // out, so a small window still produces the three duplicates fast retransmit needs.
      const limited = !t.in_recovery && t.dupacks > 0 && t.dupacks < 3 && t.snd_nxt === t.snd_max ? t.dupacks * t.smss : 0;
      const usable = Math.max(0, Math.min(t.snd_wnd, t.cwnd + limited) - flight);
      const len = Math.min(t.smss, avail, usable);
      const fin = finPending && len === avail;
      if (len === 0 && !fin) break;
      // Sender SWS avoidance: a short segment only when it empties the buffer or is at
      // least half the largest window the peer has offered.
      if (len < t.smss && len < avail && len < t.max_snd_wnd / 2) break;
      if (t.persisting) this.stopPersist();
      this.sendDataAt(t.snd_nxt, len, fin);
      t.snd_nxt = seqAdd(t.snd_nxt, len + (fin ? 1 : 0));
      if (seqGt(t.snd_nxt, t.snd_max)) t.snd_max = t.snd_nxt;
    }
    // Nothing in flight yet data waiting that the peer's window will not take: probe.
    const bufEnd = seqAdd(this.sndBufSeq, this.sndBufLen);
    const waiting = seqLt(t.snd_nxt, bufEnd) || (t.fin_queued && seqLe(t.snd_nxt, t.fin_seq));
    if (waiting && t.snd_una === t.snd_max && this.rtxTimer === 0) this.startPersist();
    if (t.snd_una !== t.snd_max && this.rtxTimer === 0 && !t.persisting) this.armRtx();
  }

  /** Reallocate the ring with at least `need` bytes (doubling, capped at sendBufferSize), unwrapped. */
  private growSendBuffer(need: number): void {
    let size = this.sndBuf.length;
    while (size < need) size *= 2;
    const next = new Uint8Array(Math.min(this.sendBufferSize, size));
    const first = Math.min(this.sndBufLen, this.sndBuf.length - this.sndBufHead);
    next.set(this.sndBuf.subarray(this.sndBufHead, this.sndBufHead + first));
    if (this.sndBufLen > first) next.set(this.sndBuf.subarray(0, this.sndBufLen - first), first);
    this.sndBuf = next;
    this.sndBufHead = 0;
  }

  /** Send `len` data bytes (and FIN) from sequence `seq`; counts a retransmission when it is below snd_max. */
  private sendDataAt(seq: number, len: number, fin: boolean): void {
    const t = this.tcb;
    const off = seqSub(seq, this.sndBufSeq);
    const payload = new Uint8Array(len);
    if (len > 0) {
      const start = (this.sndBufHead + off) % this.sndBuf.length;
      const first = Math.min(len, this.sndBuf.length - start);
      payload.set(this.sndBuf.subarray(start, start + first));
      if (len > first) payload.set(this.sndBuf.subarray(0, len - first), first);
    }
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    if (seqLt(seq, t.snd_max)) {
      this.stats.retransmits++;
      // Karn: a retransmitted segment's ACK is ambiguous; drop the measurement.
      t.rtt_seq_valid = false;
    } else {
      const newBytes = len;
      this.stats.bytesOut += newBytes;
      if (!t.rtt_seq_valid) {
        t.rtt_seq_valid = true;
        t.rtt_seq = end;
        t.rtt_time = this.clock.now();
      }
    }
    let flags = TCP_ACK;
    if (fin) flags |= TCP_FIN;
    if (len > 0 && seqAdd(seq, len) === seqAdd(this.sndBufSeq, this.sndBufLen)) flags |= TCP_PSH;
    this.emitSegment(this.makeSegment(seq, flags, payload));
  }

  /** Retransmit the segment at snd_una (fast retransmit, partial ACK, timeout); returns the sequence after it. */
  private retransmitFirst(): number {
    const t = this.tcb;
    if (t.state === 'SYN-SENT' || t.state === 'SYN-RECEIVED') {
      t.syn_retransmitted = true;
      this.stats.retransmits++;
      t.rtt_seq_valid = false;
      this.sendSyn(t.state === 'SYN-RECEIVED');
      return t.snd_nxt;
    }
    const bufEnd = seqAdd(this.sndBufSeq, this.sndBufLen);
    const len = Math.min(t.smss, Math.max(0, seqSub(bufEnd, t.snd_una)), Math.max(0, seqSub(t.snd_max, t.snd_una)));
    const fin = t.fin_queued && seqAdd(t.snd_una, len) === t.fin_seq && seqGt(t.snd_max, t.fin_seq);
    if (len === 0 && !fin) return t.snd_una;
    this.sendDataAt(t.snd_una, len, fin);
    return seqAdd(t.snd_una, len + (fin ? 1 : 0));
  }

  private sendSyn(withAck: boolean): void {
    const t = this.tcb;
    const seg = this.makeSegment(t.iss, withAck ? TCP_SYN | TCP_ACK : TCP_SYN, new Uint8Array(0));
    seg.mss = this.ourMss;
    // RFC 7323 §2.2: offer scaling in a SYN; in a SYN-ACK only if the peer offered it.
    if (!withAck || this.tcb.wscale_ok) seg.wscale = this.tcb.rcv_wscale;
    // The window in a SYN is unscaled (RFC 7323 §2.2).
    const wnd = Math.min(0xffff, this.receiveWindowTarget());
    seg.window = wnd;
    t.rcv_wnd = wnd;
    if (withAck) t.rcv_adv = seqAdd(t.rcv_nxt, wnd);
    if (seqGe(t.snd_max, seqAdd(t.iss, 1))) {
      // A retransmission: Karn's rule applies to the SYN too.
      t.rtt_seq_valid = false;
    } else {
      t.rtt_seq_valid = true;
      t.rtt_seq = seqAdd(t.iss, 1);
      t.rtt_time = this.clock.now();
    }
    t.snd_nxt = seqAdd(t.iss, 1);
    t.snd_max = t.snd_nxt;
    this.emitSegment(seg);
  }

  /** Options of the peer's SYN: its MSS caps our segments; scaling only if both offer it. */
  private takeSynOptions(syn: TcpSegment): void {
    const t = this.tcb;
    const peerMss = syn.mss !== undefined && syn.mss > 0 ? syn.mss : DEFAULT_PEER_MSS;
    t.smss = Math.max(1, Math.min(peerMss, this.ourMss));
    if (syn.wscale !== undefined) {
      this.tcb.wscale_ok = true;
      t.rcv_wscale = this.ourWscale;
      // RFC 7323 §2.3: a shift above 14 is used as 14.
      t.snd_wscale = Math.min(syn.wscale, MAX_WSCALE);
    } else {
      this.tcb.wscale_ok = false;
      t.snd_wscale = 0;
      t.rcv_wscale = 0;
    }
  }

  private enterEstablished(): void {
    const t = this.tcb;
    t.state = 'ESTABLISHED';
    this.cancelRtx();
    t.retries = 0;
    // RFC 6928: initial window min(10*MSS, max(2*MSS, 14600)).
    t.cwnd = Math.min(10 * t.smss, Math.max(2 * t.smss, 14600));
    if (t.syn_retransmitted && !t.rtt_measured) t.rto = RTO_AFTER_SYN_LOSS; // RFC 6298 §5.7
    this.stats.rto = t.rto;
    this.queueEvent(() => this.events.established());
    this.lastHeard = this.clock.now();
    if (this.keepAlive) this.armKeepAlive(this.lastHeard + this.keepAlive.idle);
    if (t.fin_queued) t.state = 'FIN-WAIT-1';
  }

  private queueFin(): void {
    const t = this.tcb;
    t.fin_queued = true;
    t.fin_seq = seqAdd(this.sndBufSeq, this.sndBufLen);
  }

  private sendAck(): void {
    this.emitSegment(this.makeSegment(this.tcb.snd_nxt, TCP_ACK, new Uint8Array(0)));
  }

  private challengeAck(): void {
    this.stats.challengeAcks++;
    this.sendAck();
  }

  private makeRst(seq: number): TcpSegment {
    return this.makeSegment(seq >>> 0, TCP_RST, new Uint8Array(0));
  }

  /** A segment carrying our current ACK and window (every segment but a bare RST acknowledges). */
  private makeSegment(seq: number, flags: number, payload: Uint8Array): TcpSegment {
    const t = this.tcb;
    let window = 0;
    if (flags & TCP_ACK && !(flags & TCP_SYN)) window = this.announceWindow();
    return {
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq: seq >>> 0,
      ack: flags & TCP_ACK ? t.rcv_nxt : 0,
      flags,
      window,
      payload,
    };
  }

  /** The window we would like to offer: the buffer less what the application holds or has not been given yet. */
  private receiveWindowTarget(): number {
    return Math.max(0, this.receiveBufferSize - this.tcb.rcv_backlog - this.undelivered);
  }

  /** RFC 1122 §4.2.3.3: open the window only in steps of min(buffer/2, MSS). */
  private windowUpdateThreshold(): number {
    return Math.min(Math.floor(this.receiveBufferSize / 2), this.ourMss);
  }

  /** The window field for an outgoing segment, recording the right edge it promises. */
  private announceWindow(): number {
    const t = this.tcb;
    const current = Math.max(0, seqSub(t.rcv_adv, t.rcv_nxt));
    let wnd = this.receiveWindowTarget();
    if (wnd < current) wnd = current; // never move the right edge left (RFC 1122 §4.2.2.16)
    else if (wnd - current < this.windowUpdateThreshold()) wnd = current; // receiver SWS avoidance
    const shift = t.rcv_wscale;
    // Round up so that scaling never shrinks what was promised.
    let field = Math.ceil(wnd / (1 << shift));
    if (field > 0xffff) field = 0xffff;
    const promised = field * (1 << shift);
    t.rcv_wnd = promised;
    const edge = seqAdd(t.rcv_nxt, promised);
    if (seqGt(edge, t.rcv_adv)) t.rcv_adv = edge;
    t.ack_pending = 0;
    if (this.delackTimer !== 0) {
      this.clock.cancelTimer(this.delackTimer);
      this.delackTimer = 0;
    }
    return field;
  }

  private emitSegment(seg: TcpSegment): void {
    this.stats.segmentsOut++;
    try {
      this.events.output(seg);
    } catch {
      // The router's output must not unwind our state half-updated; the segment is lost
      // as if the link dropped it, and retransmission covers it.
      this.stats.dropped++;
    }
  }

  // ---- Timers -------------------------------------------------------------------------

  /** RFC 6298 §2–3: fold a measurement into SRTT/RTTVAR and derive RTO, if `ack` covers the timed segment. */
  private sampleRtt(ack: number): void {
    const t = this.tcb;
    if (!t.rtt_seq_valid || seqLt(ack, t.rtt_seq)) return;
    t.rtt_seq_valid = false;
    this.addRttSample(this.clock.now() - t.rtt_time);
  }

  /** RFC 6298 §2.2–2.4 with K = 4, G = 1 ms, and the bounds above. */
  private addRttSample(r: number): void {
    const t = this.tcb;
    const rtt = Math.max(0, r);
    if (!t.rtt_measured) {
      t.srtt = rtt;
      t.rttvar = rtt / 2;
      t.rtt_measured = true;
    } else {
      t.rttvar = (3 / 4) * t.rttvar + (1 / 4) * Math.abs(t.srtt - rtt);
      t.srtt = (7 / 8) * t.srtt + (1 / 8) * rtt;
    }
    t.rto = Math.min(TCP_MAX_RTO, Math.max(TCP_MIN_RTO, t.srtt + Math.max(CLOCK_G, 4 * t.rttvar)));
    this.stats.srtt = t.srtt;
    this.stats.rto = t.rto;
  }

  private armRtx(): void {
    this.cancelRtx();
    this.rtxTimer = this.clock.setTimer(this.clock.now() + this.tcb.rto, () => {
      this.rtxTimer = 0;
      if (this.gone) return;
      this.onRtxTimeout();
      this.flush();
    });
  }

  private cancelRtx(): void {
    if (this.rtxTimer !== 0) this.clock.cancelTimer(this.rtxTimer);
    this.rtxTimer = 0;
  }

  /** RFC 6298 §5.4–5.6 and RFC 5681 §3.1 on a retransmission timeout. */
  private onRtxTimeout(): void {
    const t = this.tcb;
    if (t.snd_una === t.snd_max && t.state !== 'SYN-SENT' && t.state !== 'SYN-RECEIVED') return;
    this.stats.timeouts++;
    t.retries++;
    const handshake = t.state === 'SYN-SENT' || t.state === 'SYN-RECEIVED';
    if (t.retries > (handshake ? this.synRetries : this.maxRetries)) {
      if (!handshake) this.emitSegment(this.makeSegment(t.snd_nxt, TCP_RST | TCP_ACK, new Uint8Array(0)));
      this.finish('timeout');
      return;
    }
    if (!handshake) {
      const flight = seqSub(t.snd_max, t.snd_una);
      // RFC 5681 (4): ssthresh from the flight at the first timeout; a repeated timeout of the same segment keeps it.
      if (t.retries === 1) t.ssthresh = Math.max(Math.floor(flight / 2), 2 * t.smss);
      t.cwnd = t.smss; // loss window
      t.recover = seqSub(t.snd_max, 1) >>> 0; // RFC 6582 §3.2 step 4
      t.in_recovery = false;
      t.dupacks = 0;
      t.snd_nxt = t.snd_una; // go back N, slow start refills the pipe
    }
    t.rto = Math.min(TCP_MAX_RTO, t.rto * 2); // RFC 6298 §5.5 back off
    this.stats.rto = t.rto;
    t.rtt_seq_valid = false; // Karn
    const end = this.retransmitFirst();
    if (!handshake) t.snd_nxt = end;
    this.armRtx(); // RFC 6298 §5.6
  }

  /** RFC 1122 §4.2.2.17: probe a closed window, with exponential backoff, for as long as the peer answers. */
  private startPersist(): void {
    const t = this.tcb;
    if (t.persisting) return;
    t.persisting = true;
    t.persist_backoff = 0;
    this.armPersist();
  }

  private armPersist(): void {
    const t = this.tcb;
    if (this.persistTimer !== 0) this.clock.cancelTimer(this.persistTimer);
    const interval = Math.min(TCP_MAX_RTO, Math.max(TCP_MIN_RTO, t.rto) * 2 ** t.persist_backoff);
    this.persistTimer = this.clock.setTimer(this.clock.now() + interval, () => {
      this.persistTimer = 0;
      if (this.gone) return;
      this.onPersist();
      this.flush();
    });
  }

  private stopPersist(): void {
    const t = this.tcb;
    t.persisting = false;
    t.persist_backoff = 0;
    if (this.persistTimer !== 0) this.clock.cancelTimer(this.persistTimer);
    this.persistTimer = 0;
  }

  private onPersist(): void {
    const t = this.tcb;
    if (!this.isSynchronized()) {
      this.stopPersist();
      return;
    }
    const bufEnd = seqAdd(this.sndBufSeq, this.sndBufLen);
    const avail = Math.max(0, seqSub(bufEnd, t.snd_una));
    if (t.snd_wnd === 0 || avail === 0) {
      // The probe: one byte beyond the window (or the FIN); snd_max covers it so an ACK of
      // it is acceptable, snd_nxt stays so it is sent again when the window opens.
      this.stats.windowProbes++;
      const len = Math.min(1, avail);
      const fin = len === 0 && t.fin_queued;
      if (len === 0 && !fin) {
        this.stopPersist();
        return;
      }
      this.sendDataAt(t.snd_una, len, fin);
      const end = seqAdd(t.snd_una, len + (fin ? 1 : 0));
      if (seqGt(end, t.snd_max)) t.snd_max = end;
      t.persist_backoff = Math.min(t.persist_backoff + 1, 16);
      this.armPersist();
      return;
    }
    // The window is open but too small for SWS avoidance to send: the timeout overrides it
    // (RFC 1122 §4.2.3.4), send what fits.
    this.stopPersist();
    const len = Math.min(t.smss, avail, t.snd_wnd);
    this.sendDataAt(t.snd_nxt, len, false);
    t.snd_nxt = seqAdd(t.snd_nxt, len);
    if (seqGt(t.snd_nxt, t.snd_max)) t.snd_max = t.snd_nxt;
    this.armRtx();
  }

  private armKeepAlive(at: number): void {
    if (this.keepAlive === null) return;
    if (this.keepAliveTimer !== 0) this.clock.cancelTimer(this.keepAliveTimer);
    this.keepAliveTimer = this.clock.setTimer(at, () => {
      this.keepAliveTimer = 0;
      if (this.gone) return;
      this.onKeepAlive();
      this.flush();
    });
  }

  /**
   * RFC 1122 §4.2.3.6: an idle connection is probed with a segment at snd_una - 1, which
   * the peer must answer with an ACK. The timer is not moved on every segment; when it
   * fires it checks when the peer was last heard and sleeps again if that was recent.
   */
  private onKeepAlive(): void {
    const ka = this.keepAlive!;
    const t = this.tcb;
    if (t.state === 'TIME-WAIT') return;
    const now = this.clock.now();
    if (this.keepAliveSent === 0 && now - this.lastHeard < ka.idle) {
      this.armKeepAlive(this.lastHeard + ka.idle);
      return;
    }
    // With data outstanding the retransmission or persist timer already probes the peer.
    if (t.snd_una === t.snd_max && !t.persisting) {
      if (this.keepAliveSent >= ka.probes) {
        this.emitSegment(this.makeSegment(t.snd_nxt, TCP_RST | TCP_ACK, new Uint8Array(0)));
        this.finish('timeout');
        return;
      }
      this.keepAliveSent++;
      this.stats.keepAliveProbes++;
      this.emitSegment(this.makeSegment(seqSub(t.snd_una, 1) >>> 0, TCP_ACK, new Uint8Array(0)));
    }
    this.armKeepAlive(now + ka.interval);
  }

  private enterTimeWait(): void {
    this.tcb.state = 'TIME-WAIT';
    this.cancelRtx();
    this.stopPersist();
    if (this.keepAliveTimer !== 0) this.clock.cancelTimer(this.keepAliveTimer);
    this.keepAliveTimer = 0;
    this.armTimeWait();
  }

  /** RFC 793: TIME-WAIT lasts 2*MSL and restarts when the peer's FIN comes again. */
  private armTimeWait(): void {
    if (this.timeWaitTimer !== 0) this.clock.cancelTimer(this.timeWaitTimer);
    this.timeWaitTimer = this.clock.setTimer(this.clock.now() + this.timeWaitNs, () => {
      this.timeWaitTimer = 0;
      if (this.gone) return;
      this.finish('normal');
      this.flush();
    });
  }

  // ---- Bookkeeping ----------------------------------------------------------------------

  /** States in which the peer may still send us data. */
  private receiving(): boolean {
    const s = this.tcb.state;
    return s === 'ESTABLISHED' || s === 'FIN-WAIT-1' || s === 'FIN-WAIT-2';
  }

  private canSend(): boolean {
    const s = this.tcb.state;
    return s === 'SYN-SENT' || s === 'SYN-RECEIVED' || s === 'ESTABLISHED' || s === 'CLOSE-WAIT';
  }

  private isSynchronized(): boolean {
    const s = this.tcb.state;
    return s !== 'CLOSED' && s !== 'LISTEN' && s !== 'SYN-SENT';
  }

  /** Enter CLOSED for good: cancel every timer, report once. */
  private finish(reason: TcpCloseReason): void {
    if (this.gone) return;
    this.gone = true;
    this.tcb.state = 'CLOSED';
    this.cancelRtx();
    this.stopPersist();
    if (this.delackTimer !== 0) this.clock.cancelTimer(this.delackTimer);
    if (this.timeWaitTimer !== 0) this.clock.cancelTimer(this.timeWaitTimer);
    if (this.keepAliveTimer !== 0) this.clock.cancelTimer(this.keepAliveTimer);
    this.delackTimer = 0;
    this.timeWaitTimer = 0;
    this.keepAliveTimer = 0;
    this.ooo = [];
    this.queueEvent(() => this.events.closed(reason));
  }

  private queueEvent(fn: () => void): void {
    this.pendingEvents.push(fn);
  }

  /**
   * Deliver queued application events once the segment or timer is fully processed, so a
   * callback that writes, closes or aborts sees consistent state. After closed() nothing
   * more is delivered.
   */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pendingEvents.length > 0) {
        const fn = this.pendingEvents.shift()!;
        fn();
      }
    } finally {
      this.flushing = false;
    }
  }
}

/**
 * Answer to a segment for which no connection exists (RFC 793 p.36 "Reset Generation",
 * CLOSED state): null if none is due (the segment is itself a RST).
 */
export function resetFor(seg: TcpSegment): TcpSegment | null {
  if (seg.flags & TCP_RST) return null;
  const base = { srcPort: seg.dstPort, dstPort: seg.srcPort, window: 0, payload: new Uint8Array(0) };
  if (seg.flags & TCP_ACK) return { ...base, seq: seg.ack >>> 0, ack: 0, flags: TCP_RST };
  const len = seg.payload.length + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0);
  return { ...base, seq: 0, ack: seqAdd(seg.seq, len), flags: TCP_RST | TCP_ACK };
}

/**
 * A deterministic initial sequence number: a hash of the connection's addresses and ports
 * mixed with the virtual time (RFC 6528 in spirit: different per connection and moving with
 * the clock, reproducible for a deterministic run).
 */
export function deriveIss(local: { ip: number; port: number }, remote: { ip: number; port: number }, nowNs: number): number {
  let h = 0x811c9dc5;
  const mix = (v: number): void => {
    h = Math.imul(h ^ (v >>> 0), 0x01000193) >>> 0;
    h ^= h >>> 15;
  };
  mix(local.ip);
  mix(local.port);
  mix(remote.ip);
  mix(remote.port);
  // RFC 793 §3.3 suggests a clock ticking every 4 µs.
  const ticks = Math.floor(nowNs / 4000);
  mix(ticks % 0x100000000);
  mix(Math.floor(ticks / 0x100000000));
  return (h + (ticks >>> 0)) >>> 0;
}

function clampInt(v: number, lo: number, hi: number): number {
  if (!Number.isFinite(v)) return lo;
  return Math.min(hi, Math.max(lo, Math.floor(v)));
}
