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
});
