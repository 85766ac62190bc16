import { describe, expect, it } from 'vitest';
import {
  CB_DMA_WRITE, CB_IRQ, I_RING_READ, I_RING_WRITE, IOREQ_READ, IOREQ_TYPE_PIO, IOREQ_WRITE, IoreqError, IoreqPage,
  IoreqRequester, IoreqResponder, RING_SLOTS, STATE_CALLBACK, STATE_IDLE, STATE_INPROCESS, STATE_READY, STATE_RESPONSE,
  createIoreqBuffer, loadElement, maxElements, storeElement, type Ioreq,
  nextPollMs, POLL_MAX_MS, POLL_MIN_MS,
} from './ioreq.ts';

const req = (over: Partial<Ioreq> = {}): Ioreq => ({ type: IOREQ_TYPE_PIO, device: 3, key: 1, addr: 5, size: 1, dir: IOREQ_READ, data: 0, count: 1, df: 0, ...over });

/**
 * Both ends in one thread: the vCPU's wait runs `model` (the device model's turn) and the
 * device model's wait lets the requester service its callback, exactly where each would
 * block in Atomics.wait across threads.
 */
function pair(model: (responder: IoreqResponder, page: IoreqPage) => void, service: (cb: number, a0: number, a1: number, length: number) => number = () => 0) {
  const page = new IoreqPage(createIoreqBuffer(4096));
  const seenByVcpu: number[] = [];
  const seenByModel: number[] = [];
  const vcpu: { requester?: IoreqRequester } = {};
  const responder = new IoreqResponder(page, (s) => {
    seenByModel.push(s);
    vcpu.requester?.serviceCallback();
    return page.state;
  });
  const requester = new IoreqRequester(page, service, (s) => {
    seenByVcpu.push(s);
    if (s === STATE_READY) model(responder, page);
    return page.state;
  });
  vcpu.requester = requester;
  return { page, requester, responder, seenByVcpu, seenByModel };
}

describe('ioreq slot', () => {
  it('carries a request READY -> INPROCESS -> RESPONSE -> IDLE with its fields and the virtual time', () => {
    let taken: Ioreq | null = null;
    let takenAt = 0;
    let stateInside = -1;
    const p = pair((responder, page) => {
      expect(responder.take(0)).toBe(true);
      stateInside = page.state;
      taken = page.readRequest();
      takenAt = page.now;
      responder.respond(0xab, 1234);
    });
    const v = p.requester.request(req({ addr: 0x3fd, size: 2, key: 7, device: 9 }), 5_000_000);
    expect(v).toBe(0xab);
    expect(stateInside).toBe(STATE_INPROCESS);
    expect(taken).toEqual(req({ addr: 0x3fd, size: 2, key: 7, device: 9 }));
    expect(takenAt).toBe(5_000_000);
    expect(p.page.modelNs).toBe(1234);
    expect(p.page.state).toBe(STATE_IDLE);
    expect(p.seenByVcpu).toEqual([STATE_READY]);
  });

  it('services callback requests in order inside the round trip and hands back their results', () => {
    const calls: string[] = [];
    const shared: { page?: IoreqPage } = {};
    const p = pair(
      (responder, page) => {
        responder.take(0);
        const r1 = responder.callback(CB_IRQ, 4, 1, 0);
        page.data.set([1, 2, 3]);
        const r2 = responder.callback(CB_DMA_WRITE, 0x1000, 0, 3);
        responder.respond(r1 * 10 + r2, 0);
      },
      (cb, a0, a1, length) => {
        const p2 = shared.page!;
        calls.push(cb === CB_IRQ ? `irq ${a0}=${a1}` : `dma ${a0.toString(16)} [${[...p2.data.subarray(0, length)].join(',')}]`);
        return cb === CB_IRQ ? 4 : 2;
      },
    );
    shared.page = p.page;
    expect(p.requester.request(req({ dir: IOREQ_WRITE, data: 0x55 }), 0)).toBe(42);
    expect(calls).toEqual(['irq 4=1', 'dma 1000 [1,2,3]']);
    expect(p.seenByModel).toEqual([STATE_CALLBACK, STATE_CALLBACK]);
  });

  it('reports a device model that threw, in its words, and leaves the slot idle', () => {
    const p = pair((responder) => {
      responder.take(0);
      responder.fail('com1: bad register');
    });
    expect(() => p.requester.request(req(), 0)).toThrow(new IoreqError('com1: bad register', 'threw'));
    expect(p.page.state).toBe(STATE_IDLE);
  });

  it('gives up on a device model that never answers after timeoutMs', () => {
    const p = pair(() => {});
    p.requester.timeoutMs = 20;
    let err: unknown;
    try {
      p.requester.request(req(), 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IoreqError);
    expect((err as IoreqError).reason).toBe('timeout');
    expect(p.page.state).toBe(STATE_IDLE);
  });

  it('a responder with nothing posted returns false from take', () => {
    const page = new IoreqPage(createIoreqBuffer(64));
    expect(new IoreqResponder(page, () => page.state).take(0)).toBe(false);
    page.setState(STATE_RESPONSE);
    expect(new IoreqResponder(page, () => page.state).take(0)).toBe(false);
  });
});

describe('string I/O', () => {
  it('puts repeat-count elements in the data area with the direction flag in the request', () => {
    const p = pair((responder, page) => {
      responder.take(0);
      const r = page.readRequest();
      expect(page.dataIsPtr).toBe(true);
      expect([r.count, r.df, r.size]).toEqual([5, 1, 2]);
      // The device model answers an INS: five words, in the order the CPU stores them.
      for (let i = 0; i < r.count; i++) storeElement(page.data, 2 * i, 2, loadElement(page.data, 2 * i, 2) + 1);
      responder.respond(0, 0);
    });
    [10, 20, 0xffff, 40, 50].forEach((v, i) => storeElement(p.page.data, 2 * i, 2, v));
    p.requester.request(req({ size: 2, count: 5, df: 1 }), 0);
    expect([0, 1, 2, 3, 4].map((i) => loadElement(p.page.data, 2 * i, 2))).toEqual([11, 21, 0x10000 & 0xffff, 41, 51]);
    storeElement(p.page.data, 0, 4, -2);
    expect(loadElement(p.page.data, 0, 4)).toBe(0xfffffffe);
    expect(maxElements(p.page, 4)).toBe(1024);
  });

  it('a single access carries its value in data, not the data area', () => {
    const p = pair((responder, page) => {
      responder.take(0);
      expect(page.dataIsPtr).toBe(false);
      responder.respond(page.readRequest().data + 1, 0);
    });
    expect(p.requester.request(req({ dir: IOREQ_WRITE, data: 0x7fffffff }), 0)).toBe(0x80000000);
  });
});

describe('buffered ring', () => {
  const drain = (page: IoreqPage) => {
    const got: number[][] = [];
    page.drainBuffered((...e) => got.push(e));
    return got;
  };

  it('holds RING_SLOTS writes, refuses the next, and drains them in order', () => {
    const page = new IoreqPage(createIoreqBuffer(64));
    for (let i = 0; i < RING_SLOTS; i++) expect(page.pushBuffered(1, 0, 7, 1, i & 0xff, i * 10)).toBe(true);
    expect(page.pushBuffered(1, 0, 7, 1, 0, 0)).toBe(false);
    expect(page.buffered).toBe(RING_SLOTS);
    const got = drain(page);
    expect(got.length).toBe(RING_SLOTS);
    expect(got[0]).toEqual([1, 0, 7, 1, 0, 0]);
    expect(got[RING_SLOTS - 1]).toEqual([1, 0, 7, 1, (RING_SLOTS - 1) & 0xff, (RING_SLOTS - 1) * 10]);
    expect(page.buffered).toBe(0);
  });

  it('wraps around the end of the ring and around the 32-bit counters', () => {
    const page = new IoreqPage(createIoreqBuffer(64));
    for (const start of [RING_SLOTS - 3, 0x7ffffffe]) {
      page.i32[I_RING_WRITE] = start | 0;
      page.i32[I_RING_READ] = start | 0;
      for (let i = 0; i < 6; i++) page.pushBuffered(2, 1, i, 4, 0xdead0000 + i, i);
      expect(page.buffered).toBe(6);
      expect(drain(page).map((e) => e[4] - 0xdead0000)).toEqual([0, 1, 2, 3, 4, 5]);
      // Room for a full ring again after the wrap.
      for (let i = 0; i < RING_SLOTS; i++) expect(page.pushBuffered(2, 1, 0, 1, i, 0)).toBe(true);
      expect(page.pushBuffered(2, 1, 0, 1, 0, 0)).toBe(false);
      expect(drain(page).map((e) => e[4])).toEqual(Array.from({ length: RING_SLOTS }, (_, i) => i));
    }
  });
});

describe('the device model\'s poll window (halt polling)', () => {
  it('grows when a request found the model asleep soon after it began waiting, and shrinks after long idle', () => {
    // Caught asleep 0.5 ms in: the next window covers such a gap with room to spare.
    expect(nextPollMs(POLL_MIN_MS, 0.5)).toBe(0.75);
    // Doubling when that is more, up to the cap.
    expect(nextPollMs(0.75, 0.3)).toBe(1.5);
    expect(nextPollMs(1.5, 1.9)).toBe(POLL_MAX_MS);
    // Asleep longer than any window would poll: halve, down to the floor.
    expect(nextPollMs(POLL_MAX_MS, 50)).toBe(POLL_MAX_MS / 2);
    expect(nextPollMs(POLL_MIN_MS, Infinity)).toBe(POLL_MIN_MS);
  });
});
