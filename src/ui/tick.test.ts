import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { onTick, TICK_MS } from './tick.ts';

describe('the page tick', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs every subscriber in one task, every TICK_MS, until unsubscribed', () => {
    const order: string[] = [];
    const stopA = onTick(() => order.push('a'));
    const stopB = onTick(() => order.push('b'));
    vi.advanceTimersByTime(TICK_MS - 1);
    expect(order).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(order).toEqual(['a', 'b']);
    stopA();
    vi.advanceTimersByTime(TICK_MS);
    expect(order).toEqual(['a', 'b', 'b']);
    stopB();
    // No subscriber left: no timer keeps running.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps ticking the others when one subscriber throws', () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    let runs = 0;
    const stopA = onTick(() => {
      throw new Error('broken panel');
    });
    const stopB = onTick(() => runs++);
    vi.advanceTimersByTime(2 * TICK_MS);
    expect(runs).toBe(2);
    expect(error).toHaveBeenCalledTimes(2);
    stopA();
    stopB();
    error.mockRestore();
  });
});
