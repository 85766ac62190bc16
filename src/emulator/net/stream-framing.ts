/**
 * QEMU's `-netdev socket` stream format: each Ethernet frame is sent as a 4-byte
 * big-endian length followed by the frame (QEMU's net/socket.c; the same on both ends
 * of listen= and connect=). The decoder takes the byte stream in whatever pieces the
 * socket delivers and yields whole frames; lengths a frame cannot have are refused and
 * counted, never trusted for an allocation.
 */
import { ETH_HEADER } from './ethernet.ts';

/** Largest frame accepted: an 802.1Q-tagged frame with its FCS (1522), with room for QEMU's larger buffers. */
export const STREAM_MAX_FRAME = 9216;
/**
 * A length above this cannot be a frame from any QEMU (its NET_BUFSIZE is 4096 + 65536):
 * the stream is out of step or not QEMU's format, and the connection should be dropped.
 */
export const STREAM_CORRUPT_LENGTH = 69632;

export interface StreamDecoderCounters {
  frames: number;
  bytes: number;
  /** Frames refused for their length: shorter than an Ethernet header, or over STREAM_MAX_FRAME (skipped, the stream stays in step). */
  dropShort: number;
  dropOversized: number;
}

export function encodeStreamFrame(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length, false);
  out.set(frame, 4);
  return out;
}

export class StreamFrameDecoder {
  readonly counters: StreamDecoderCounters = { frames: 0, bytes: 0, dropShort: 0, dropOversized: 0 };
  private readonly header = new Uint8Array(4);
  private headerHave = 0;
  /** Frame being filled, or null while reading a header; `skip` bytes of a refused frame left to pass over. */
  private frame: Uint8Array | null = null;
  private have = 0;
  private skip = 0;
  /** Set when the stream cannot be in QEMU's format; the caller closes the connection. */
  corrupt: string | null = null;

  /** Feed bytes from the socket; whole frames go to `onFrame`. */
  push(data: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    let i = 0;
    while (i < data.length && this.corrupt === null) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      if (this.frame === null) {
        while (this.headerHave < 4 && i < data.length) this.header[this.headerHave++] = data[i++];
        if (this.headerHave < 4) return;
        this.headerHave = 0;
        const len = ((this.header[0] << 24) | (this.header[1] << 16) | (this.header[2] << 8) | this.header[3]) >>> 0;
        if (len > STREAM_CORRUPT_LENGTH) {
          this.corrupt = `a frame length of ${len} bytes: the stream is not QEMU's socket format or is out of step`;
          return;
        }
        if (len < ETH_HEADER || len > STREAM_MAX_FRAME) {
          if (len < ETH_HEADER) this.counters.dropShort++;
          else this.counters.dropOversized++;
          this.skip = len;
          continue;
        }
        this.frame = new Uint8Array(len);
        this.have = 0;
      }
      const n = Math.min(this.frame.length - this.have, data.length - i);
      this.frame.set(data.subarray(i, i + n), this.have);
      this.have += n;
      i += n;
      if (this.have === this.frame.length) {
        const f = this.frame;
        this.frame = null;
        this.counters.frames++;
        this.counters.bytes += f.length;
        onFrame(f);
      }
    }
  }

  /** Bytes of an unfinished frame or header when the peer closed (a truncated stream); 0 if it ended cleanly. */
  get pendingBytes(): number {
    return this.headerHave + (this.frame ? this.have : 0) + this.skip;
  }
}
