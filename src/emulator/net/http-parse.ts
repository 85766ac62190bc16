/**
 * HTTP/1.x on the guest's side of the fetch upstream (RFC 9112): an incremental request
 * parser (request line, header fields, a body framed by Content-Length or chunked
 * transfer coding, one request after another on a keep-alive connection) and the
 * response's re-framing (status line and header fields rebuilt, the body sent with
 * Content-Length or chunked).
 *
 * The parser takes bytes as they come (a request may arrive one byte per segment) and
 * never throws: a request it cannot read ends it in the 'error' state with a message in
 * words (the fetch upstream answers 400 and closes).
 */

export interface HttpRequestHead {
  method: string;
  /** As sent: origin-form "/path?q" or absolute-form "http://host/path" (RFC 9112 §3.2). */
  target: string;
  /** 'HTTP/1.0' or 'HTTP/1.1'. */
  version: string;
  /** Field names lower-cased, in order; values trimmed (RFC 9112 §5). */
  headers: [string, string][];
  /** Does the client want the connection kept after this response (RFC 9112 §9.3)? */
  keepAlive: boolean;
}

export interface HttpParserEvents {
  head(head: HttpRequestHead): void;
  body(chunk: Uint8Array): void;
  /** The request's body (if any) is complete. */
  end(): void;
}

/** A request head larger than this is refused (431 in spirit; nginx's default buffer is 8 KiB, Node's 16 KiB). */
export const MAX_HEAD = 64 * 1024;

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailer' | 'error';

const CR = 13;
const LF = 10;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class HttpRequestParser {
  private state: State = 'head';
  private buf = new Uint8Array(0);
  private remaining = 0;
  /** Why parsing stopped, in words; null while all is well. */
  error: string | null = null;
  /** Requests whose heads were read. */
  requests = 0;

  constructor(private readonly events: HttpParserEvents) {}

  /** Between requests: no head or body half read. */
  get idle(): boolean {
    return this.state === 'head' && this.buf.length === 0;
  }

  push(data: Uint8Array): void {
    if (this.state === 'error') return;
    let input = data;
    if (this.buf.length > 0) {
      const joined = new Uint8Array(this.buf.length + data.length);
      joined.set(this.buf);
      joined.set(data, this.buf.length);
      input = joined;
      this.buf = new Uint8Array(0);
    }
    let pos = 0;
    while (pos < input.length && (this.state as State) !== 'error') {
      const used = this.step(input, pos);
      if (used < 0) {
        // Needs more bytes: keep what is left for the next push.
        this.buf = input.slice(pos);
        if (this.state === 'head' && this.buf.length > MAX_HEAD) this.fail(`the request head is longer than ${MAX_HEAD} bytes`);
        if ((this.state === 'chunk-size' || this.state === 'trailer') && this.buf.length > 4096) this.fail('a chunk-size or trailer line is too long');
        return;
      }
      pos += used;
    }
  }

  private fail(message: string): void {
    this.state = 'error';
    this.error = message;
    this.buf = new Uint8Array(0);
  }

  /** Consume from input at pos; returns bytes used, or -1 when more are needed. */
  private step(input: Uint8Array, pos: number): number {
    switch (this.state) {
      case 'head': {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
        if (input[pos] === CR || input[pos] === LF) {
          if (input[pos] === CR && pos + 1 >= input.length) return -1;
          return input[pos] === CR && input[pos + 1] === LF ? 2 : 1;
        }
        const end = findHeadEnd(input, pos);
        if (end < 0) return -1;
        const text = latin1(input.subarray(pos, end.valueOf()));
        const used = headLength(input, end) - pos;
        this.parseHead(text);
        return used;
      }
      case 'length': {
        const n = Math.min(this.remaining, input.length - pos);
        this.remaining -= n;
        if (n > 0) this.events.body(input.slice(pos, pos + n));
        if (this.remaining === 0) this.finish();
        return n;
      }
      case 'chunk-size': {
        const eol = findLf(input, pos);
        if (eol < 0) return -1;
        const line = latin1(input.subarray(pos, eol)).replace(/\r$/, '');
        // chunk-size [ chunk-ext ] (RFC 9112 §7.1.1: extensions are ignored).
        const m = /^([0-9A-Fa-f]{1,8})[ \t]*(;.*)?$/.exec(line);
        if (!m) {
          this.fail(`a chunk-size line is not hexadecimal: '${line.slice(0, 40)}'`);
          return 0;
        }
        this.remaining = parseInt(m[1], 16);
        this.state = this.remaining === 0 ? 'trailer' : 'chunk-data';
        return eol + 1 - pos;
      }
      case 'chunk-data': {
        const n = Math.min(this.remaining, input.length - pos);
        this.remaining -= n;
        if (n > 0) this.events.body(input.slice(pos, pos + n));
        if (this.remaining === 0) this.state = 'chunk-data-end';
        return n;
      }
      case 'chunk-data-end': {
        if (input[pos] === LF) {
          this.state = 'chunk-size';
          return 1;
        }
        if (pos + 1 >= input.length) return -1;
        if (input[pos] === CR && input[pos + 1] === LF) {
          this.state = 'chunk-size';
          return 2;
        }
        this.fail('a chunk is not followed by CRLF');
        return 0;
      }
      case 'trailer': {
        // Trailer fields (RFC 9112 §7.1.2) up to an empty line; read and dropped.
        const eol = findLf(input, pos);
        if (eol < 0) return -1;
        const empty = eol === pos || (eol === pos + 1 && input[pos] === CR);
        if (empty) this.finish();
        return eol + 1 - pos;
      }
      default:
        return input.length - pos;
    }
  }

  private parseHead(text: string): void {
    const lines = text.replace(/\r$/, '').split(/\r?\n/);
    const m = /^([A-Za-z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0]);
    if (!m) {
      this.fail(/^[\x20-\x7e]*$/.test(lines[0]) ? `not an HTTP/1.x request line: '${lines[0].slice(0, 60)}'` : 'not an HTTP request (binary data)');
      return;
    }
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      if (line === '') continue;
      if (line[0] === ' ' || line[0] === '\t') {
        // Obsolete line folding (RFC 9112 §5.2): a server may replace it with a space.
        if (headers.length === 0) return this.fail('a header field continues a line that is not there');
        headers[headers.length - 1][1] += ' ' + line.trim();
        continue;
      }
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!TOKEN.test(name)) return this.fail(`a malformed header field: '${line.slice(0, 60)}'`);
      headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
    }
    const version = m[3];
    const get = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
    const connection = get('connection').join(',').toLowerCase().split(',').map((s) => s.trim());
    const keepAlive = version === 'HTTP/1.1' ? !connection.includes('close') : connection.includes('keep-alive');
    const head: HttpRequestHead = { method: m[1].toUpperCase(), target: m[2], version, headers, keepAlive };
    // Body framing, RFC 9112 §6.3: Transfer-Encoding wins over Content-Length; a request
    // whose final coding is not chunked cannot be framed (400).
    const te = get('transfer-encoding').join(',').toLowerCase().split(',').map((s) => s.trim()).filter((s) => s !== '');
    const cl = get('content-length').join(',').split(',').map((s) => s.trim()).filter((s) => s !== '');
    this.requests++;
    if (te.length > 0) {
      if (te[te.length - 1] !== 'chunked') return this.fail(`the request's transfer coding '${te.join(', ')}' does not end in chunked`);
      this.events.head(head);
      this.state = 'chunk-size';
      return;
    }
    if (cl.length > 0) {
      if (!cl.every((v) => /^\d{1,15}$/.test(v)) || new Set(cl).size > 1) return this.fail(`a bad Content-Length: '${cl.join(', ')}'`);
      this.remaining = Number(cl[0]);
      this.events.head(head);
      if (this.remaining === 0) this.finish();
      else this.state = 'length';
      return;
    }
    this.events.head(head);
    this.finish();
  }

  private finish(): void {
    this.state = 'head';
    this.events.end();
  }
}

/** Index of the first byte of "\r\n\r\n" or "\n\n" at or after pos; -1 if not yet. */
function findHeadEnd(b: Uint8Array, pos: number): number {
  for (let i = pos; i < b.length; i++) {
    if (b[i] !== LF) continue;
    if (i + 1 < b.length && b[i + 1] === LF) return i;
    if (i + 2 < b.length && b[i + 1] === CR && b[i + 2] === LF) return i;
  }
  return -1;
}

/** Where the head that ends at `end` (an LF) stops, past the empty line. */
function headLength(b: Uint8Array, end: number): number {
  return b[end + 1] === LF ? end + 2 : end + 3;
}

function findLf(b: Uint8Array, pos: number): number {
  const i = b.indexOf(LF, pos);
  return i;
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Reason phrases for the status line (RFC 9110 §15); the phrase is informational only. */
const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content', 301: 'Moved Permanently', 302: 'Found',
  303: 'See Other', 304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 401: 'Unauthorized',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Content Too Large', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Status';
}

/** How a response body is framed for the guest. */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

/** Hop-by-hop fields (RFC 9110 §7.6.1) and the ones the re-framing sets itself. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);

/**
 * The response head for the guest. `length` is the body's length when framing is
 * 'length'. Header values are made single-line (a CR or LF in one would split the
 * response).
 */
export function encodeResponseHead(
  version: string, status: number, statusText: string, headers: Iterable<[string, string]>, framing: BodyFraming, length: number, keepAlive: boolean,
): Uint8Array {
  let s = `${version} ${status} ${(statusText || reasonPhrase(status)).replace(/[\r\n]/g, ' ')}\r\n`;
  for (const [k, v] of headers) {
    if (DROP_RESPONSE.has(k.toLowerCase())) continue;
    s += `${k}: ${v.replace(/[\r\n]+/g, ' ')}\r\n`;
  }
  if (framing === 'length') s += `Content-Length: ${length}\r\n`;
  else if (framing === 'chunked') s += 'Transfer-Encoding: chunked\r\n';
  s += keepAlive && framing !== 'close' ? (version === 'HTTP/1.0' ? 'Connection: keep-alive\r\n' : '') : 'Connection: close\r\n';
  s += '\r\n';
  return bytes(s);
}

/** One chunk of a chunked body (RFC 9112 §7.1): size in hex, CRLF, data, CRLF. */
export function encodeChunk(data: Uint8Array): Uint8Array {
  if (data.length === 0) return new Uint8Array(0);
  const size = bytes(data.length.toString(16) + '\r\n');
  const out = new Uint8Array(size.length + data.length + 2);
  out.set(size);
  out.set(data, size.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

/** The last chunk and the end of an (empty) trailer section. */
export const LAST_CHUNK = bytes('0\r\n\r\n');

/** Does a response to this request have no body at all (RFC 9110 §6.4.1: HEAD, 1xx, 204, 304)? */
export function responseHasNoBody(method: string, status: number): boolean {
  return method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304;
}

export { bytes as latin1Bytes };
