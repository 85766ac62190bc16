/**
 * The router's TFTP server on 10.0.2.2:69 (QEMU's tftp=DIR): RFC 1350 read requests,
 * with the option extension (RFC 2347) for blksize (RFC 2348), tsize and timeout
 * (RFC 2349) — iPXE asks for blksize and tsize on every transfer.
 *
 * Each transfer answers from a port of its own (its TID, RFC 1350 §4), so the guest's
 * ACKs find their session by destination port. A block is retransmitted on the virtual
 * clock until it is acknowledged, RETRIES times at most; a duplicate ACK is ignored
 * rather than answered with a resend (RFC 1123 §4.2.3.1, the Sorcerer's Apprentice bug).
 * Block numbers are 16 bits on the wire: a transfer of more than 65535 blocks wraps
 * from 65535 to 0 and goes on (the convention of tftp-hpa, iPXE and Linux clients).
 * Writes are refused with error 2 (access violation).
 */
import type { Clock, TimerId } from '../bus/device.ts';
import { readU16, writeU16 } from './ipv4.ts';

export const TFTP_PORT = 69;

export const TFTP_RRQ = 1;
export const TFTP_WRQ = 2;
export const TFTP_DATA = 3;
export const TFTP_ACK = 4;
export const TFTP_ERROR = 5;
export const TFTP_OACK = 6;

/** Error codes (RFC 1350 appendix; RFC 2347 adds 8). */
export const TFTP_ERR_UNDEFINED = 0;
export const TFTP_ERR_NOT_FOUND = 1;
export const TFTP_ERR_ACCESS = 2;
export const TFTP_ERR_ILLEGAL = 4;
export const TFTP_ERR_UNKNOWN_TID = 5;
export const TFTP_ERR_OPTION = 8;

export const DEFAULT_BLKSIZE = 512;
/** Largest block that fits one 1500-byte Ethernet MTU: 1500 - 20 (IPv4) - 8 (UDP) - 4 (TFTP). */
export const MAX_BLKSIZE = 1468;
const MIN_BLKSIZE = 8;
export const DEFAULT_TIMEOUT_NS = 1_000_000_000;
export const RETRIES = 5;
/** Transfers at once; more requests are refused with an error rather than queued. */
export const MAX_SESSIONS = 16;

/** What tftp=DIR gives the router: a synchronous reader; null when there is no such file. */
export interface TftpFiles {
  read(path: string): Uint8Array | null;
}

export interface TftpStats {
  /** Transfers under way. */
  active: number;
  requests: number;
  /** Transfers that ended with the last block acknowledged. */
  completed: number;
  blocksSent: number;
  retransmits: number;
  timeouts: number;
  notFound: number;
  writeRefused: number;
  errorsSent: number;
  /** ERROR packets from the guest (it gave up, or refused our options). */
  errorsReceived: number;
  /** Packets that are not TFTP, or arrive where no transfer expects them. */
  malformed: number;
}

interface Session {
  guestIp: number;
  guestPort: number;
  serverPort: number;
  data: Uint8Array;
  blksize: number;
  timeoutNs: number;
  /** Blocks counted from 1 without wrapping; 0 is the OACK waiting for its ACK 0. */
  block: number;
  /** The packet last sent (resent on timeout). */
  last: Uint8Array;
  retries: number;
  timer: TimerId;
  /** Set when the final (short) block has been sent. */
  lastBlock: number;
}

export interface TftpOutput {
  (guestIp: number, guestPort: number, serverPort: number, payload: Uint8Array): void;
}

export class TftpServer {
  readonly stats: TftpStats = {
    active: 0, requests: 0, completed: 0, blocksSent: 0, retransmits: 0, timeouts: 0, notFound: 0, writeRefused: 0, errorsSent: 0,
    errorsReceived: 0, malformed: 0,
  };
  /** By server port (the session's TID). */
  private readonly sessions = new Map<number, Session>();

  constructor(
    private readonly clock: Clock,
    private readonly files: TftpFiles,
    private readonly send: TftpOutput,
    private readonly ports: { allocate(): number | null; release(port: number): void },
  ) {}

  get active(): number {
    return this.sessions.size;
  }

  /** Does a transfer answer from this port? */
  owns(serverPort: number): boolean {
    return this.sessions.has(serverPort);
  }

  /** A packet to port 69: a new request. */
  request(guestIp: number, guestPort: number, p: Uint8Array): void {
    const reply = (payload: Uint8Array) => this.send(guestIp, guestPort, TFTP_PORT, payload);
    if (p.length < 2) {
      this.stats.malformed++;
      return;
    }
    const op = readU16(p, 0);
    if (op === TFTP_WRQ) {
      this.stats.writeRefused++;
      this.sendError(reply, TFTP_ERR_ACCESS, 'writes are not allowed');
      return;
    }
    if (op !== TFTP_RRQ) {
      this.stats.malformed++;
      this.sendError(reply, TFTP_ERR_ILLEGAL, 'expected a read request');
      return;
    }
    this.stats.requests++;
    // A retransmitted RRQ from a client already being served: the session resends on its own.
    for (const s of this.sessions.values()) if (s.guestIp === guestIp && s.guestPort === guestPort) return;
    const fields = splitStrings(p.subarray(2));
    if (!fields || fields.length < 2) {
      this.stats.malformed++;
      this.sendError(reply, TFTP_ERR_ILLEGAL, 'malformed request');
      return;
    }
    const [name, modeRaw] = fields;
    const mode = modeRaw.toLowerCase();
    if (mode !== 'octet' && mode !== 'netascii') {
      this.sendError(reply, TFTP_ERR_ILLEGAL, `mode ${modeRaw} not supported`);
      return;
    }
    let file: Uint8Array | null;
    try {
      // Leading slashes name the tftp folder's root, as tftp-hpa's secure mode reads them.
      file = this.files.read(name.replace(/^\/+/, ''));
    } catch {
      file = null;
    }
    if (!file) {
      this.stats.notFound++;
      this.sendError(reply, TFTP_ERR_NOT_FOUND, 'file not found');
      return;
    }
    if (mode === 'netascii') file = toNetascii(file);
    if (this.sessions.size >= MAX_SESSIONS) {
      this.sendError(reply, TFTP_ERR_UNDEFINED, 'too many transfers');
      return;
    }
    const serverPort = this.ports.allocate();
    if (serverPort === null) {
      this.sendError(reply, TFTP_ERR_UNDEFINED, 'no port free');
      return;
    }
    // Options (RFC 2347): name/value pairs after the mode; unknown ones are left out of the OACK.
    const accepted: [string, string][] = [];
    let blksize = DEFAULT_BLKSIZE;
    let timeoutNs = DEFAULT_TIMEOUT_NS;
    for (let i = 2; i + 1 < fields.length; i += 2) {
      const opt = fields[i].toLowerCase();
      const value = Number(fields[i + 1]);
      if (opt === 'blksize' && Number.isInteger(value) && value >= MIN_BLKSIZE) {
        blksize = Math.min(value, MAX_BLKSIZE);
        accepted.push(['blksize', String(blksize)]);
      } else if (opt === 'tsize' && Number.isInteger(value) && value >= 0) {
        accepted.push(['tsize', String(file.length)]);
      } else if (opt === 'timeout' && Number.isInteger(value) && value >= 1 && value <= 255) {
        timeoutNs = value * 1e9;
        accepted.push(['timeout', String(value)]);
      }
    }
    const s: Session = {
      guestIp, guestPort, serverPort, data: file, blksize, timeoutNs, block: 0, last: new Uint8Array(0), retries: 0, timer: 0,
      lastBlock: Math.floor(file.length / blksize) + 1,
    };
    this.sessions.set(serverPort, s);
    this.stats.active = this.sessions.size;
    if (accepted.length > 0) {
      this.transmit(s, encodeOack(accepted));
    } else {
      this.sendBlock(s, 1);
    }
  }

  /** A packet to a session's port; false when no session has it (the caller answers port unreachable). */
  input(serverPort: number, guestIp: number, guestPort: number, p: Uint8Array): boolean {
    const s = this.sessions.get(serverPort);
    if (!s) return false;
    if (guestIp !== s.guestIp || guestPort !== s.guestPort) {
      // RFC 1350 §4: a packet from a stranger gets error 5 and the transfer goes on.
      this.sendError((b) => this.send(guestIp, guestPort, serverPort, b), TFTP_ERR_UNKNOWN_TID, 'unknown transfer id');
      return true;
    }
    if (p.length < 4) {
      this.stats.malformed++;
      return true;
    }
    const op = readU16(p, 0);
    if (op === TFTP_ERROR) {
      this.stats.errorsReceived++;
      this.end(s);
      return true;
    }
    if (op !== TFTP_ACK) {
      this.stats.malformed++;
      return true;
    }
    const acked = readU16(p, 2);
    if (acked !== (s.block & 0xffff)) return true; // a duplicate or stale ACK: the timer resends if needed
    if (s.block === s.lastBlock) {
      this.stats.completed++;
      this.end(s);
      return true;
    }
    this.sendBlock(s, s.block + 1);
    return true;
  }

  private sendBlock(s: Session, block: number): void {
    const start = (block - 1) * s.blksize;
    const chunk = s.data.subarray(Math.min(start, s.data.length), Math.min(start + s.blksize, s.data.length));
    const p = new Uint8Array(4 + chunk.length);
    writeU16(p, 0, TFTP_DATA);
    writeU16(p, 2, block & 0xffff);
    p.set(chunk, 4);
    s.block = block;
    this.stats.blocksSent++;
    this.transmit(s, p);
  }

  private transmit(s: Session, p: Uint8Array): void {
    s.last = p;
    s.retries = 0;
    this.arm(s);
    this.send(s.guestIp, s.guestPort, s.serverPort, p);
  }

  private arm(s: Session): void {
    this.clock.cancelTimer(s.timer);
    s.timer = this.clock.setTimer(this.clock.now() + s.timeoutNs, () => {
      if (this.sessions.get(s.serverPort) !== s) return;
      if (s.retries >= RETRIES) {
        this.stats.timeouts++;
        this.end(s);
        return;
      }
      s.retries++;
      this.stats.retransmits++;
      this.arm(s);
      this.send(s.guestIp, s.guestPort, s.serverPort, s.last);
    });
  }

  private end(s: Session): void {
    this.clock.cancelTimer(s.timer);
    this.sessions.delete(s.serverPort);
    this.stats.active = this.sessions.size;
    this.ports.release(s.serverPort);
  }

  private sendError(reply: (p: Uint8Array) => void, code: number, message: string): void {
    this.stats.errorsSent++;
    reply(encodeTftpError(code, message));
  }

  close(): void {
    for (const s of [...this.sessions.values()]) this.end(s);
  }

  describe(): { guestIp: number; guestPort: number; serverPort: number; block: number; size: number }[] {
    return [...this.sessions.values()].map((s) => ({ guestIp: s.guestIp, guestPort: s.guestPort, serverPort: s.serverPort, block: s.block, size: s.data.length }));
  }
}

/** NUL-terminated strings; null when the last one is not terminated. */
function splitStrings(b: Uint8Array): string[] | null {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      out.push(cur);
      cur = '';
    } else {
      cur += String.fromCharCode(b[i]);
    }
  }
  return cur === '' ? out : null;
}

export function encodeTftpError(code: number, message: string): Uint8Array {
  const p = new Uint8Array(5 + message.length);
  writeU16(p, 0, TFTP_ERROR);
  writeU16(p, 2, code);
  for (let i = 0; i < message.length; i++) p[4 + i] = message.charCodeAt(i) & 0x7f;
  return p;
}

function encodeOack(options: [string, string][]): Uint8Array {
  const text = options.map(([k, v]) => `${k}\0${v}\0`).join('');
  const p = new Uint8Array(2 + text.length);
  writeU16(p, 0, TFTP_OACK);
  for (let i = 0; i < text.length; i++) p[2 + i] = text.charCodeAt(i);
  return p;
}

/** Build a request as a client sends it (tests, and anyone crafting traffic). */
export function encodeTftpRequest(op: number, name: string, mode: string, options: Record<string, string | number> = {}): Uint8Array {
  const text = `${name}\0${mode}\0` + Object.entries(options).map(([k, v]) => `${k}\0${v}\0`).join('');
  const p = new Uint8Array(2 + text.length);
  writeU16(p, 0, op);
  for (let i = 0; i < text.length; i++) p[2 + i] = text.charCodeAt(i) & 0xff;
  return p;
}

export function encodeTftpAck(block: number): Uint8Array {
  const p = new Uint8Array(4);
  writeU16(p, 0, TFTP_ACK);
  writeU16(p, 2, block & 0xffff);
  return p;
}

/** netascii (RFC 764 via RFC 1350): LF -> CR LF, CR -> CR NUL. */
function toNetascii(b: Uint8Array): Uint8Array {
  let extra = 0;
  for (const c of b) if (c === 10 || c === 13) extra++;
  const out = new Uint8Array(b.length + extra);
  let o = 0;
  for (const c of b) {
    if (c === 10) {
      out[o++] = 13;
      out[o++] = 10;
    } else if (c === 13) {
      out[o++] = 13;
      out[o++] = 0;
    } else {
      out[o++] = c;
    }
  }
  return out;
}
