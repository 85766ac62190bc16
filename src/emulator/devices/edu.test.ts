import { describe, expect, it } from 'vitest';
import { createTestBus } from '../bus/test-harness.ts';
import { EDU, EDU_BUFFER, EDU_DMA_FROM_DEVICE, EDU_DMA_IRQ, EDU_DMA_START, EDU_ID, EDU_IRQ_DMA, EDU_IRQ_FACTORIAL, EduDevice, factorial32 } from './edu.ts';
import { IntelIommu } from '../iommu/vtd.ts';
import { enableTranslation, VtdTables } from '../iommu/vtd-test-tables.ts';

const BAR = 0xfe000000;

function edu(ramBytes = 4 << 20) {
  const t = createTestBus({ ramBytes });
  const dev = new EduDevice();
  t.plugPci(dev, 4);
  t.cfgWrite32(4, 0, 0x10, BAR);
  t.cfgWrite32(4, 0, 0x04, 0x06); // memory decode, bus master
  // PIRQ route for slot 4 INTA (link D with the slot swizzle) to IRQ 11.
  t.pci.setPirq(t.pci.link(4 << 3, 1), 11);
  const r = (off: number) => t.mmioRead32(BAR + off);
  const w = (off: number, v: number) => t.mmioWrite32(BAR + off, v);
  const settle = () => t.advance(1_000_000);
  return { t, dev, r, w, settle };
}

describe('edu', () => {
  it('is 1234:11e8 with a 1 MiB memory BAR, and identifies itself as version 1.0', () => {
    const { t, r } = edu();
    expect(t.cfgRead32(4, 0, 0)).toBe(0x11e81234);
    t.cfgWrite32(4, 0, 0x10, 0xffffffff);
    expect(t.cfgRead32(4, 0, 0x10)).toBe(0xfff00000);
    t.cfgWrite32(4, 0, 0x10, BAR);
    expect(r(EDU.ID)).toBe(EDU_ID);
  });

  it('liveness: reads back the inverse of what was written', () => {
    const { r, w } = edu();
    w(EDU.LIVENESS, 0x12345678);
    expect(r(EDU.LIVENESS)).toBe(0xedcba987);
  });

  it('factorial: busy until done, then n!; an interrupt when asked for', () => {
    const { t, r, w, settle } = edu();
    w(EDU.STATUS, 0x80);
    w(EDU.FACTORIAL, 10);
    expect(r(EDU.STATUS) & 1).toBe(1);
    w(EDU.FACTORIAL, 3); // ignored while computing
    settle();
    expect(r(EDU.STATUS)).toBe(0x80);
    expect(r(EDU.FACTORIAL)).toBe(3628800);
    expect(r(EDU.IRQ_STATUS)).toBe(EDU_IRQ_FACTORIAL);
    expect(t.irqLevel(11)).toBe(1);
    expect(factorial32(13)).toBe(Number((6227020800n) & 0xffffffffn));
  });

  it('interrupt raise and acknowledge drive INTx', () => {
    const { t, r, w } = edu();
    w(EDU.IRQ_RAISE, 0x30);
    expect(r(EDU.IRQ_STATUS)).toBe(0x30);
    expect(t.irqLevel(11)).toBe(1);
    w(EDU.IRQ_ACK, 0x10);
    expect(t.irqLevel(11)).toBe(1);
    w(EDU.IRQ_ACK, 0x20);
    expect(r(EDU.IRQ_STATUS)).toBe(0);
    expect(t.irqLevel(11)).toBe(0);
  });

  it('DMA: RAM to the buffer and back, with the DMA interrupt', () => {
    const { t, r, w, settle } = edu();
    t.ram.set([1, 2, 3, 4, 5], 0x10000);
    w(EDU.DMA_SRC, 0x10000);
    w(EDU.DMA_DST, EDU_BUFFER + 8);
    w(EDU.DMA_COUNT, 5);
    w(EDU.DMA_CMD, EDU_DMA_START);
    expect(r(EDU.DMA_CMD) & EDU_DMA_START).toBe(1);
    settle();
    expect(r(EDU.DMA_CMD) & EDU_DMA_START).toBe(0);
    w(EDU.DMA_SRC, EDU_BUFFER + 8);
    w(EDU.DMA_DST, 0x20000);
    w(EDU.DMA_CMD, EDU_DMA_START | EDU_DMA_FROM_DEVICE | EDU_DMA_IRQ);
    settle();
    expect([...t.ram.subarray(0x20000, 0x20005)]).toEqual([1, 2, 3, 4, 5]);
    expect(r(EDU.IRQ_STATUS)).toBe(EDU_IRQ_DMA);
    expect(t.stats('edu').dmaBytesWritten).toBe(5);
    expect(t.stats('edu').dmaBytesRead).toBe(5);
  });

  it('refuses a transfer outside its buffer and does not master the bus with bus mastering off', () => {
    const { t, dev, w, settle } = edu();
    w(EDU.DMA_SRC, EDU_BUFFER + 4000);
    w(EDU.DMA_DST, 0x20000);
    w(EDU.DMA_COUNT, 200);
    w(EDU.DMA_CMD, EDU_DMA_START | EDU_DMA_FROM_DEVICE);
    settle();
    expect(dev.state.counters.dmaRefused).toBe(1);
    t.cfgWrite32(4, 0, 0x04, 0x02);
    w(EDU.DMA_SRC, EDU_BUFFER);
    w(EDU.DMA_COUNT, 4);
    w(EDU.DMA_CMD, EDU_DMA_START | EDU_DMA_FROM_DEVICE);
    settle();
    expect(dev.state.counters.dmaFaults).toBe(1);
    expect(t.stats('edu').dmaFaults).toBe(1);
  });

  it('its DMA goes through the IOMMU: translated where mapped, a fault record where not', () => {
    const { t, dev, w, settle } = edu(32 << 20);
    const iommu = new IntelIommu({ ramBytes: t.ram.length });
    t.attach(iommu);
    t.bus.setDmaTranslate(t.bus.rowOf(dev), iommu.translator(4 << 3));
    const tables = new VtdTables(t.ram, 0x100000, 0x101000);
    const slpt = tables.setContext(tables.setRoot(0), 4 << 3, 1);
    tables.map(slpt, 0x00400000, 0x00600000);
    enableTranslation(t, 0x100000);
    dev.state.buffer.fill(0x77, 0, 16);
    w(EDU.DMA_SRC, EDU_BUFFER);
    w(EDU.DMA_DST, 0x00400010);
    w(EDU.DMA_COUNT, 16);
    w(EDU.DMA_CMD, EDU_DMA_START | EDU_DMA_FROM_DEVICE);
    settle();
    expect(t.ram[0x600010]).toBe(0x77);
    expect(t.ram[0x400010]).toBe(0);
    w(EDU.DMA_DST, 0x01800000);
    w(EDU.DMA_CMD, EDU_DMA_START | EDU_DMA_FROM_DEVICE);
    settle();
    expect(t.ram[0x1800000]).toBe(0);
    expect(iommu.describe().records).toMatchObject([{ sourceId: '00:04.0', addr: 0x01800000, write: true, reason: 5 }]);
  });

  it('takes only aligned 4-byte accesses below 0x80; state saves and loads with the pending DMA re-armed', () => {
    const { t, dev, r, w } = edu();
    t.mmioWrite16(BAR + EDU.LIVENESS, 0x1234);
    expect(dev.state.counters.badAccesses).toBe(1);
    t.ram.set([9, 9], 0x3000);
    w(EDU.DMA_SRC, 0x3000);
    w(EDU.DMA_DST, EDU_BUFFER);
    w(EDU.DMA_COUNT, 2);
    w(EDU.DMA_CMD, EDU_DMA_START);
    const saved = dev.saveState();
    dev.loadState(saved);
    t.advance(1_000_000);
    expect(r(EDU.DMA_CMD) & 1).toBe(0);
    expect([...dev.state.buffer.subarray(0, 2)]).toEqual([9, 9]);
    expect(() => dev.loadState({ ...saved, buffer: new Uint8Array(2) })).toThrow(/buffer/);
  });
});
