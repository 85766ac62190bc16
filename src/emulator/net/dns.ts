/**
 * The DNS forwarder at 10.0.2.3:53 (RFC 1035). It reads the guest's query, answers A
 * questions for names in its own table (`hosts`), and otherwise asks the host's resolver
 * (`HostNetwork.resolve4`), unless restricted, when the table is all there is and other
 * names are NXDOMAIN (RCODE 3). AAAA and other types get NOERROR with no records
 * (RFC 2308 §2.2 "NODATA"), so a guest falls back to A quickly.
 *
 * Only one question per query is answered (RFC 1035 §4.1.2 allows more; no resolver
 * sends more, and BIND answers FORMERR too). Malformed queries get FORMERR when the
 * header is readable, and are dropped (counted) when not.
 */
import { readU16, writeU16, writeU32 } from './ipv4.ts';

export const DNS_PORT = 53;
export const QTYPE_A = 1;
export const QTYPE_AAAA = 28;
export const QCLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;

/** Seconds a forwarded answer may be cached (the host's resolver gives no TTL). */
export const FORWARD_TTL = 60;
export const TABLE_TTL = 3600;

const HEADER = 12;
const FLAG_QR = 0x8000;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const FLAG_AA = 0x0400;

export interface DnsQuestion {
  name: string;
  qtype: number;
  qclass: number;
}

export interface DnsQuery {
  id: number;
  flags: number;
  question: DnsQuestion;
  /** The question section's bytes as sent, echoed in the reply. */
  questionBytes: Uint8Array;
}

/** A query we can answer, or an error: 'formerr' with the id when the header parsed, 'drop' when nothing did. */
export type DnsParse = DnsQuery | { error: 'formerr'; id: number; flags: number } | { error: 'drop' };

export function parseDnsQuery(b: Uint8Array): DnsParse {
  if (b.length < HEADER) return { error: 'drop' };
  const id = readU16(b, 0);
  const flags = readU16(b, 2);
  // A response (QR set) is never answered: that way lie loops.
  if ((flags & FLAG_QR) !== 0) return { error: 'drop' };
  const qdcount = readU16(b, 4);
  const opcode = (flags >> 11) & 0xf;
  if (qdcount !== 1 || opcode !== 0) return { error: 'formerr', id, flags };
  let o = HEADER;
  const labels: string[] = [];
  for (;;) {
    if (o >= b.length) return { error: 'formerr', id, flags };
    const len = b[o++];
    if (len === 0) break;
    // Compression pointers (0xC0) have nothing to point back to in a question.
    if (len > 63 || o + len > b.length) return { error: 'formerr', id, flags };
    let label = '';
    for (let i = 0; i < len; i++) label += String.fromCharCode(b[o + i]);
    labels.push(label);
    o += len;
  }
  if (o + 4 > b.length || o - HEADER > 255) return { error: 'formerr', id, flags };
  const qtype = readU16(b, o);
  const qclass = readU16(b, o + 2);
  o += 4;
  return { id, flags, question: { name: labels.join('.'), qtype, qclass }, questionBytes: b.slice(HEADER, o) };
}

/** Encode a response to `q`: `addresses` as A records when the question is A/IN. */
export function encodeDnsResponse(
  id: number,
  queryFlags: number,
  rcode: number,
  questionBytes: Uint8Array | null,
  addresses: number[],
  ttl: number,
  authoritative = false,
): Uint8Array {
  const answers = questionBytes ? addresses : [];
  const b = new Uint8Array(HEADER + (questionBytes?.length ?? 0) + 16 * answers.length);
  writeU16(b, 0, id);
  writeU16(b, 2, FLAG_QR | (queryFlags & FLAG_RD) | FLAG_RA | (authoritative ? FLAG_AA : 0) | (rcode & 0xf));
  writeU16(b, 4, questionBytes ? 1 : 0);
  writeU16(b, 6, answers.length);
  let o = HEADER;
  if (questionBytes) {
    b.set(questionBytes, o);
    o += questionBytes.length;
  }
  for (const ip of answers) {
    // Name: a pointer to the question's name at offset 12 (RFC 1035 §4.1.4).
    writeU16(b, o, 0xc000 | HEADER);
    writeU16(b, o + 2, QTYPE_A);
    writeU16(b, o + 4, QCLASS_IN);
    writeU32(b, o + 6, ttl);
    writeU16(b, o + 10, 4);
    writeU32(b, o + 12, ip);
    o += 16;
  }
  return b;
}

export interface DnsStats {
  queries: number;
  /** Answered from the `hosts` table. */
  fromTable: number;
  /** Answered by the host's resolver. */
  forwarded: number;
  nxdomain: number;
  servfail: number;
  formerr: number;
  /** Not even a header: no reply possible. */
  dropped: number;
}

export class DnsForwarder {
  readonly stats: DnsStats = { queries: 0, fromTable: 0, forwarded: 0, nxdomain: 0, servfail: 0, formerr: 0, dropped: 0 };
  private readonly table = new Map<string, number>();
  private closed = false;

  /**
   * `resolve` is the host's resolver, or null when restricted (or there is no host):
   * then only the table answers.
   */
  constructor(
    hosts: Map<string, number>,
    private readonly resolve: ((name: string) => Promise<number[]>) | null,
  ) {
    // Names compare case-insensitively (RFC 1035 §2.3.3) and without the root's dot.
    for (const [name, ip] of hosts) this.table.set(normalize(name), ip);
  }

  /** Answer one query; `reply` may be called later (a forwarded lookup) or not at all (dropped). */
  handle(query: Uint8Array, reply: (response: Uint8Array) => void): void {
    this.stats.queries++;
    const q = parseDnsQuery(query);
    if ('error' in q) {
      if (q.error === 'drop') {
        this.stats.dropped++;
        return;
      }
      this.stats.formerr++;
      reply(encodeDnsResponse(q.id, q.flags, RCODE_FORMERR, null, [], 0));
      return;
    }
    const { name, qtype, qclass } = q.question;
    const key = normalize(name);
    const own = this.table.get(key);
    const answer = (rcode: number, ips: number[], ttl: number, aa: boolean) =>
      reply(encodeDnsResponse(q.id, q.flags, rcode, q.questionBytes, qtype === QTYPE_A && qclass === QCLASS_IN ? ips : [], ttl, aa));
    if (own !== undefined) {
      this.stats.fromTable++;
      answer(RCODE_NOERROR, [own], TABLE_TTL, true);
      return;
    }
    if (!this.resolve) {
      this.stats.nxdomain++;
      answer(RCODE_NXDOMAIN, [], 0, false);
      return;
    }
    if (qtype !== QTYPE_A || qclass !== QCLASS_IN) {
      // The host's resolver gives IPv4 only: NODATA for the rest.
      this.stats.forwarded++;
      answer(RCODE_NOERROR, [], 0, false);
      return;
    }
    this.resolve(name).then(
      (ips) => {
        if (this.closed) return;
        this.stats.forwarded++;
        answer(RCODE_NOERROR, ips, FORWARD_TTL, false);
      },
      (err: unknown) => {
        if (this.closed) return;
        // ENOTFOUND is a name that does not exist; anything else is the resolver failing.
        const code = (err as { code?: string } | null)?.code;
        if (code === 'ENOTFOUND' || code === 'ENODATA') {
          this.stats.nxdomain++;
          answer(RCODE_NXDOMAIN, [], 0, false);
        } else {
          this.stats.servfail++;
          answer(RCODE_SERVFAIL, [], 0, false);
        }
      },
    );
  }

  close(): void {
    this.closed = true;
  }
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
