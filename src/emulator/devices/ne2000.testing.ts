/**
 * For tests: what Linux's ne2k-pci driver does to the NIC when the interface goes up, through
 * the ports (drivers/net/ethernet/8390: the reset through port 0x1F, then NS8390_init(dev, 1)
 * and NS8390_start): the transmit buffer at page 0x40, the receive ring from 0x4C to 0x80, the
 * station address, every interrupt unmasked, and the receiver's mode `rcr` (0x04: broadcast).
 * The NE2000's tests, its fuzz test and the device-state table start a NIC this way.
 */
import type { TestBus } from '../bus/test-harness.ts';

export const NS8390_TX_START = 0x40;
export const NS8390_RX_START = 0x4c;
export const NS8390_RX_STOP = 0x80;

export function ns8390Open(t: Pick<TestBus, 'in8' | 'out8'>, io: number, mac: ArrayLike<number>, rcr = 0x04): void {
  t.out8(io + 0x1f, t.in8(io + 0x1f)); // reset
  // ISR.RST (bit 7) reports the reset done; the driver gives up after 20 ms without it.
  if ((t.in8(io + 0x07) & 0x80) === 0) throw new Error('NE2000: ISR.RST not set after a reset');
  t.out8(io + 0x07, 0x80);
  t.out8(io + 0x00, 0x21); // CR: stop, no remote DMA, page 0
  t.out8(io + 0x0e, 0x49); // DCR: word-wide, FIFO threshold 8, normal
  t.out8(io + 0x0a, 0); // RBCR0/1
  t.out8(io + 0x0b, 0);
  t.out8(io + 0x0c, 0x20); // RCR: monitor while setting up
  t.out8(io + 0x0d, 0x02); // TCR: internal loopback while setting up
  t.out8(io + 0x04, NS8390_TX_START); // TPSR
  t.out8(io + 0x01, NS8390_RX_START); // PSTART
  t.out8(io + 0x03, NS8390_RX_STOP - 1); // BNRY
  t.out8(io + 0x02, NS8390_RX_STOP); // PSTOP
  t.out8(io + 0x07, 0xff); // ISR: clear all
  t.out8(io + 0x0f, 0); // IMR: none yet
  t.out8(io + 0x00, 0x61); // CR: stop, page 1
  for (let i = 0; i < 6; i++) t.out8(io + 1 + i, mac[i]); // PAR0-5
  for (let i = 0; i < 8; i++) t.out8(io + 8 + i, 0); // MAR0-7
  t.out8(io + 0x07, NS8390_RX_START); // CURR
  t.out8(io + 0x00, 0x21); // CR: stop, page 0
  t.out8(io + 0x07, 0xff);
  t.out8(io + 0x0f, 0x3f); // IMR: ENISR_ALL
  t.out8(io + 0x00, 0x22); // CR: start
  t.out8(io + 0x0d, 0x00); // TCR: normal
  t.out8(io + 0x0c, rcr);
}
