import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { guestThreadBetween, ownThreadMark, ownThreadSince, ownThreadTime, snapshot, type Snapshot, type ThreadTime } from './thread-time.ts';

const linux = fs.existsSync('/proc/thread-self/schedstat');

function snap(threads: Record<string, ThreadTime>, steal: number | null): Snapshot {
  return { threads: new Map(Object.entries(threads)), steal };
}

describe('thread-time', () => {
  it('takes the guest thread to be the matching thread that ran most between two snapshots, the rest as others', () => {
    const before = snap({
      '1/1': { name: 'chromium', onCpu: 5, waiting: 1 },
      '1/7': { name: 'DedicatedWorker', onCpu: 0.5, waiting: 0.1 },
      '1/8': { name: 'DedicatedWorker', onCpu: 30, waiting: 2 },
    }, 100);
    const after = snap({
      '1/1': { name: 'chromium', onCpu: 20, waiting: 3 }, // busiest of all, but not a worker
      '1/7': { name: 'DedicatedWorker', onCpu: 9.5, waiting: 1.3 },
      '1/8': { name: 'DedicatedWorker', onCpu: 31, waiting: 2 }, // most in total, least in between
      '1/9': { name: 'DedicatedWorker', onCpu: 2, waiting: 0 }, // started in between
    }, 103.5);
    expect(guestThreadBetween(before, after, /^DedicatedWorker/)).toEqual({ onCpu: 9, waiting: expect.closeTo(1.2, 9), steal: 3.5, others: 15 + 1 + 2 });
    expect(guestThreadBetween(before, after, /^nothing/)).toBeNull();
    expect(guestThreadBetween(snap({}, null), after, /^chromium$/)).toEqual({ onCpu: 20, waiting: 3, steal: 0, others: 9.5 + 31 + 2 });
  });

  it.runIf(linux)('reads a spinning thread\'s own time on a CPU from Linux', () => {
    const before = ownThreadTime();
    const mark = ownThreadMark();
    const all = snapshot([process.pid]);
    const until = performance.now() + 60;
    let x = 0;
    while (performance.now() < until) x++;
    const after = ownThreadTime();
    const since = ownThreadSince(mark);
    expect(x).toBeGreaterThan(0);
    expect(since!.onCpu).toBeGreaterThan(0.02);
    expect(since!.others).toBeGreaterThanOrEqual(0);
    expect(before).not.toBeNull();
    expect(after!.onCpu - before!.onCpu).toBeGreaterThan(0.02);
    expect(all.threads.size).toBeGreaterThan(0);
    expect(all.steal).not.toBeNull();
  });
});
