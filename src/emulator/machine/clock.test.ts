import { describe, expect, it } from 'vitest';
import { VirtualClock } from './clock.ts';

describe('VirtualClock', () => {
  it('fires timers in time order, equal times in the order set, and skips cancelled ones', () => {
    const c = new VirtualClock();
    const fired: string[] = [];
    c.setTimer(300, () => fired.push('c'));
    c.setTimer(100, () => fired.push('a1'));
    const gone = c.setTimer(200, () => fired.push('never'));
    c.setTimer(100, () => fired.push('a2'));
    c.cancelTimer(gone);
    expect(c.nextDeadline()).toBe(100);
    c.advanceTo(250);
    expect(fired).toEqual(['a1', 'a2']);
    expect(c.now()).toBe(250);
    c.advanceTo(1000);
    expect(fired).toEqual(['a1', 'a2', 'c']);
    expect(c.nextDeadline()).toBe(Infinity);
  });

  it('lets a timer callback set the next timer (periodic devices)', () => {
    const c = new VirtualClock();
    let ticks = 0;
    const tick = () => {
      ticks++;
      c.setTimer(c.now() + 10, tick);
    };
    c.setTimer(10, tick);
    c.advanceTo(100);
    // Each callback runs at its own time (10, 20, ... 100), so re-arming does not drift.
    expect(ticks).toBe(10);
    expect(c.now()).toBe(100);
    c.advanceTo(1000);
    expect(ticks).toBe(100);
  });

  it('never moves backwards', () => {
    const c = new VirtualClock();
    c.advanceTo(50);
    c.advanceTo(20);
    expect(c.now()).toBe(50);
  });

  it('ignores a cancel of a timer that fired, even when its slot was reused', () => {
    const c = new VirtualClock();
    const fired: string[] = [];
    const a = c.setTimer(10, () => fired.push('a'));
    c.advanceTo(10);
    c.setTimer(20, () => fired.push('b')); // reuses a's slot
    c.cancelTimer(a);
    c.advanceTo(30);
    expect(fired).toEqual(['a', 'b']);
  });

  it('matches a sorted reference with thousands of timers set and cancelled at random', () => {
    const c = new VirtualClock();
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    const want: { at: number; n: number }[] = [];
    const ids: { id: number; n: number }[] = [];
    const got: number[] = [];
    for (let n = 0; n < 3000; n++) {
      const at = Math.floor(rnd() * 500);
      ids.push({ id: c.setTimer(at, () => got.push(n)), n });
      want.push({ at, n });
      if (rnd() < 0.3) {
        const victim = ids.splice(Math.floor(rnd() * ids.length), 1)[0];
        c.cancelTimer(victim.id);
        want.splice(want.findIndex((w) => w.n === victim.n), 1);
      }
    }
    expect(c.pending).toBe(want.length);
    c.advanceTo(1000);
    want.sort((x, y) => x.at - y.at || x.n - y.n);
    expect(got).toEqual(want.map((w) => w.n));
  });

  it('drops pending timers on loadState and keeps the time', () => {
    const c = new VirtualClock();
    let fired = 0;
    c.setTimer(100, () => fired++);
    c.advanceTo(40);
    const saved = c.saveState();
    c.loadState(saved);
    c.advanceTo(200);
    expect(fired).toBe(0);
    expect(c.now()).toBe(200);
  });
});
