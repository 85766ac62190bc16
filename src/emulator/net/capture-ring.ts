/**
 * A bounded capture of a port's traffic, for the page's "download pcap" button: the last
 * frames that crossed the port (either way), up to a number of frames and of bytes; the
 * oldest go first when either bound is reached, and how many went is counted. The file it
 * writes is classic pcap (pcap.ts), whole frames, so `tcpdump -r` reads every record.
 *
 * Frames are kept by reference: the network model never reuses a frame it has sent
 * (ethernet.ts, FrameEndpoint), so capturing costs a push, not a copy.
 */
import { PcapWriter } from './pcap.ts';
import type { PortTap } from './switch.ts';

export interface CaptureRingOptions {
  /** Most frames kept (default 65536). */
  maxFrames?: number;
  /** Most bytes of frames kept (default 32 MiB). */
  maxBytes?: number;
}

export class CaptureRing {
  private frames: Uint8Array[] = [];
  private times: number[] = [];
  private head = 0;
  private heldBytes = 0;
  /** Frames that fell out of the ring (oldest first) since it was made or cleared. */
  dropped = 0;
  /** Frames seen in all. */
  seen = 0;
  private readonly maxFrames: number;
  private readonly maxBytes: number;

  constructor(options: CaptureRingOptions = {}) {
    this.maxFrames = Math.max(1, options.maxFrames ?? 65536);
    this.maxBytes = Math.max(1, options.maxBytes ?? 32 << 20);
  }

  /** A port tap (SwitchPort.addTap) that records into this ring. */
  readonly tap: PortTap = (frame, timeNs) => this.add(frame, timeNs);

  add(frame: Uint8Array, timeNs: number): void {
    this.seen++;
    if (frame.length > this.maxBytes) {
      this.dropped++;
      return;
    }
    this.frames.push(frame);
    this.times.push(timeNs);
    this.heldBytes += frame.length;
    while (this.length > this.maxFrames || this.heldBytes > this.maxBytes) {
      this.heldBytes -= this.frames[this.head].length;
      this.head++;
      this.dropped++;
    }
    // Compact now and then, so the arrays do not grow without bound.
    if (this.head > 4096 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }

  get length(): number {
    return this.frames.length - this.head;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  clear(): void {
    this.frames = [];
    this.times = [];
    this.head = 0;
    this.heldBytes = 0;
    this.dropped = 0;
  }

  /**
   * The ring as one classic pcap file.
   * @param epochNs what virtual time 0 was, in ns since 1970 (see PcapWriter)
   */
  toPcap(epochNs = 0): Uint8Array {
    const out = new Uint8Array(24 + this.length * 16 + this.heldBytes);
    let off = 0;
    const w = new PcapWriter((chunk) => {
      out.set(chunk, off);
      off += chunk.length;
    }, epochNs);
    for (let i = this.head; i < this.frames.length; i++) w.write(this.frames[i], this.times[i]);
    return out.subarray(0, off);
  }
}
