/**
 * Classic libpcap capture files (the format tcpdump -w writes: a 24-byte global header,
 * then a 16-byte record header per packet; see pcap-savefile(5) and the IETF draft
 * "PCAP Capture File Format"), LINKTYPE_ETHERNET (1), microsecond timestamps,
 * little-endian. A writer turns frames into bytes for a sink: the CLI appends them to
 * a file, the page offers them as a download. No file system here.
 */
export const PCAP_MAGIC = 0xa1b2c3d4;
export const LINKTYPE_ETHERNET = 1;
/** Longest frame kept whole; longer ones are truncated in the file (caplen < len), as tcpdump -s does. */
export const PCAP_SNAPLEN = 65535;

export class PcapWriter {
  /** Bytes written so far, headers included. */
  bytes = 0;
  packets = 0;

  /**
   * @param sink receives the file's bytes in order, starting with the global header.
   * @param epochNs what virtual time 0 is, in ns since 1970 (records carry virtual time
   *   plus this, so a deterministic run writes the same file every time).
   */
  constructor(private readonly sink: (chunk: Uint8Array) => void, private readonly epochNs = 0) {
    const h = new Uint8Array(24);
    const v = new DataView(h.buffer);
    v.setUint32(0, PCAP_MAGIC, true);
    v.setUint16(4, 2, true); // version 2.4
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, PCAP_SNAPLEN, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.emit(h);
  }

  /** One frame seen at virtual time `timeNs`. */
  write(frame: Uint8Array, timeNs: number): void {
    const caplen = Math.min(frame.length, PCAP_SNAPLEN);
    const rec = new Uint8Array(16 + caplen);
    const v = new DataView(rec.buffer);
    const us = Math.floor((timeNs + this.epochNs) / 1000);
    v.setUint32(0, Math.floor(us / 1e6) >>> 0, true);
    v.setUint32(4, us % 1e6, true);
    v.setUint32(8, caplen, true);
    v.setUint32(12, frame.length, true);
    rec.set(frame.subarray(0, caplen), 16);
    this.packets++;
    this.emit(rec);
  }

  private emit(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.sink(chunk);
  }
}

/** Read a classic pcap file back (tests, the page's packet list): frames with their times in ns. */
export function readPcap(data: Uint8Array): { linkType: number; packets: { timeNs: number; frame: Uint8Array; length: number }[] } {
  if (data.length < 24) throw new Error('not a pcap file: shorter than its header');
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = v.getUint32(0, true);
  const le = magic === PCAP_MAGIC;
  if (!le && v.getUint32(0, false) !== PCAP_MAGIC) throw new Error(`not a classic pcap file (magic ${magic.toString(16)})`);
  const linkType = v.getUint32(20, le);
  const packets: { timeNs: number; frame: Uint8Array; length: number }[] = [];
  let off = 24;
  while (off + 16 <= data.length) {
    const sec = v.getUint32(off, le);
    const usec = v.getUint32(off + 4, le);
    const caplen = v.getUint32(off + 8, le);
    const length = v.getUint32(off + 12, le);
    if (off + 16 + caplen > data.length) throw new Error(`pcap record at byte ${off} runs past the end of the file`);
    packets.push({ timeNs: (sec * 1e6 + usec) * 1000, frame: data.slice(off + 16, off + 16 + caplen), length });
    off += 16 + caplen;
  }
  if (off !== data.length) throw new Error(`pcap file has ${data.length - off} trailing bytes`);
  return { linkType, packets };
}
