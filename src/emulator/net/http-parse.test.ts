import { describe, expect, it } from 'vitest';
import { encodeChunk, encodeResponseHead, HttpRequestParser, LAST_CHUNK, MAX_HEAD, responseHasNoBody, type HttpRequestHead } from './http-parse.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function collect() {
  const requests: { head: HttpRequestHead; body: string; ended: boolean }[] = [];
  const parser = new HttpRequestParser({
    head: (head) => requests.push({ head, body: '', ended: false }),
    body: (chunk) => (requests[requests.length - 1].body += dec(chunk)),
    end: () => (requests[requests.length - 1].ended = true),
  });
  return { parser, requests };
}

/** Feed a text in pieces of `step` bytes. */
function feed(parser: HttpRequestParser, text: string, step: number): void {
  const b = enc(text);
  for (let i = 0; i < b.length; i += step) parser.push(b.subarray(i, i + step));
}

describe('HTTP/1.x request parser', () => {
  it('reads pipelined requests with Content-Length and chunked bodies, however the bytes are split', () => {
    const text =
      'GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n' +
      'POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello world' +
      'PUT /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nabcde\r\n3\r\nfgh\r\n0\r\nX-Trailer: y\r\n\r\n' +
      'GET /last HTTP/1.0\n\n';
    for (const step of [1, 2, 7, 1000]) {
      const { parser, requests } = collect();
      feed(parser, text, step);
      expect(parser.error).toBeNull();
      expect(requests.map((r) => [r.head.method, r.head.target, r.body, r.ended])).toEqual([
        ['GET', '/a?x=1', '', true],
        ['POST', '/form', 'hello world', true],
        ['PUT', '/up', 'abcdefgh', true],
        ['GET', '/last', '', true],
      ]);
      expect(requests[0].head.headers).toEqual([['host', 'example.com'], ['accept', '*/*']]);
      expect(requests.map((r) => r.head.keepAlive)).toEqual([true, true, true, false]);
      expect(parser.idle).toBe(true);
    }
  });

  it('takes a large body in pieces without holding it whole', () => {
    const { parser, requests } = collect();
    const n = 3 << 20;
    parser.push(enc(`POST /big HTTP/1.1\r\nContent-Length: ${n}\r\n\r\n`));
    let got = 0;
    const chunk = new Uint8Array(65536).fill(0x61);
    const counting = new HttpRequestParser({ head: () => {}, body: (c) => (got += c.length), end: () => {} });
    counting.push(enc(`POST /big HTTP/1.1\r\nContent-Length: ${n}\r\n\r\n`));
    for (let i = 0; i < n; i += chunk.length) counting.push(chunk);
    expect(got).toBe(n);
    expect(counting.idle).toBe(true);
    expect(requests[0].ended).toBe(false);
  });

  it('knows keep-alive from the version and Connection, and folds obsolete continuation lines', () => {
    const { parser, requests } = collect();
    parser.push(enc('GET / HTTP/1.1\r\nConnection: close\r\nX-Long: a\r\n  b\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n'));
    expect(requests[0].head.keepAlive).toBe(false);
    expect(requests[0].head.headers).toContainEqual(['x-long', 'a b']);
    expect(requests[1].head.keepAlive).toBe(true);
  });

  it('refuses what it cannot frame, in words, and never throws', () => {
    const cases: [string, RegExp][] = [
      ['\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', /binary/],
      ['SSH-2.0-OpenSSH_9.2\r\n\r\n', /not an HTTP\/1\.x request line/],
      ['GET / HTTP/2.0\r\n\r\n', /not an HTTP\/1\.x request line/],
      ['POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', /bad Content-Length/],
      ['POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', /bad Content-Length/],
      ['POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', /does not end in chunked/],
      ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /not hexadecimal/],
      ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY', /not followed by CRLF/],
      ['GET / HTTP/1.1\r\nBad Header\r\n\r\n', /malformed header/],
    ];
    for (const [text, why] of cases) {
      const { parser } = collect();
      expect(() => feed(parser, text, 3)).not.toThrow();
      expect(parser.error, JSON.stringify(text)).toMatch(why);
    }
    const { parser } = collect();
    parser.push(enc('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(MAX_HEAD)));
    expect(parser.error).toMatch(/longer than/);
    // Once failed, more bytes change nothing.
    parser.push(enc('GET / HTTP/1.1\r\n\r\n'));
    expect(parser.requests).toBe(0);
  });
});

describe('response re-framing', () => {
  it('rebuilds the head without hop-by-hop fields, with the framing chosen', () => {
    const head = dec(encodeResponseHead('HTTP/1.1', 200, '', [['Content-Type', 'text/plain'], ['Connection', 'x'], ['Transfer-Encoding', 'gzip'], ['Content-Length', '99'], ['X-A', 'b\r\nInjected: 1']], 'length', 5, true));
    expect(head).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: b Injected: 1\r\nContent-Length: 5\r\n\r\n');
    expect(dec(encodeResponseHead('HTTP/1.1', 404, 'Nope', [], 'chunked', 0, false))).toBe('HTTP/1.1 404 Nope\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
    expect(dec(encodeResponseHead('HTTP/1.0', 200, 'OK', [], 'length', 0, true))).toBe('HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n');
    expect(dec(encodeResponseHead('HTTP/1.0', 200, 'OK', [], 'close', 0, true))).toBe('HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n');
  });

  it('chunks a body so that the parser reads back the same bytes', () => {
    const body = enc('x'.repeat(70000));
    const framed = [enc('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'), encodeChunk(body.subarray(0, 1)), encodeChunk(new Uint8Array(0)), encodeChunk(body.subarray(1)), LAST_CHUNK];
    const { parser, requests } = collect();
    for (const f of framed) parser.push(f);
    expect(requests[0].body.length).toBe(70000);
    expect(requests[0].ended).toBe(true);
    expect(dec(encodeChunk(enc('hello')))).toBe('5\r\nhello\r\n');
  });

  it('knows which responses have no body', () => {
    expect(responseHasNoBody('HEAD', 200)).toBe(true);
    expect(responseHasNoBody('GET', 204)).toBe(true);
    expect(responseHasNoBody('GET', 304)).toBe(true);
    expect(responseHasNoBody('GET', 200)).toBe(false);
  });
});
