/**
 * Ethernet II frames as the network model passes them: destination MAC, source MAC,
 * EtherType, payload; no preamble and no FCS (the NIC strips and appends those, as
 * QEMU's backends do). Every part of src/emulator/net speaks in these.
 */

/** Shortest frame on the wire without its FCS (IEEE 802.3 §3.2.8: 64 bytes with it). */
export const ETH_MIN_FRAME = 60;
/** Longest untagged frame without its FCS: 14-byte header + 1500-byte MTU. */
export const ETH_MAX_FRAME = 1514;
export const ETH_HEADER = 14;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;

export const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/**
 * One end of a link that carries frames: a NIC, the user-mode router, an uplink. The
 * switch calls `receive` with a frame for it; the endpoint calls the `transmit` it was
 * given when it sends one. A receiver may keep the array: senders never reuse it.
 */
export interface FrameEndpoint {
  receive(frame: Uint8Array): void;
}

export function macToString(mac: Uint8Array, offset = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push((mac[offset + i] ?? 0).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** Parse "52:54:00:12:34:56" (or with dashes); null if it is not six hex bytes. */
export function parseMac(text: string): Uint8Array | null {
  const m = /^([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})$/i.exec(text.trim());
  if (!m) return null;
  return Uint8Array.from(m.slice(1, 7).map((h) => parseInt(h, 16)));
}

export function isBroadcast(frame: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (frame[i] !== 0xff) return false;
  return true;
}

/** Group bit of the destination (IEEE 802.3 §3.2.3): broadcast and multicast. */
export function isMulticast(frame: Uint8Array): boolean {
  return (frame[0] & 1) !== 0;
}

export function etherType(frame: Uint8Array): number {
  return frame.length >= ETH_HEADER ? (frame[12] << 8) | frame[13] : -1;
}

/** The MAC QEMU gives the first NIC (52:54:00:12:34:56); the n-th gets the last byte + n. */
export function defaultMac(index: number): Uint8Array {
  return Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, (0x56 + index) & 0xff);
}
