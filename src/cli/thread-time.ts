/**
 * Where a benchmark's guest thread spent its wall-clock time, from Linux's scheduler
 * statistics (/proc/<pid>/task/<tid>/schedstat: nanoseconds on a CPU, nanoseconds runnable
 * but waiting on a run queue) and the hypervisor's steal time (/proc/stat).
 *
 * `npm run bench` compares the guest's speed in the CLI with its speed in a worker. On a
 * two-core virtual machine the two can differ for reasons that are not the code's: the
 * page's own threads (rendering, compositing, V8's compilers) take turns on the cores, and
 * the host takes the virtual CPUs away now and then. These figures tell the two apart:
 * instructions per second on a CPU compare the code, the wait says what the other threads
 * cost it. Other systems (no /proc) give null and the bench prints wall-clock figures only.
 */
import * as fs from 'node:fs';

/** Scheduler time of one thread, in seconds. */
export interface ThreadTime {
  name: string;
  onCpu: number;
  waiting: number;
}

/** What a run's guest thread did while the run lasted, in seconds. */
export interface GuestThreadTime {
  onCpu: number;
  waiting: number;
  /** Time the hypervisor ran something else on this machine's virtual CPUs (all of them together). */
  steal: number;
  /**
   * Time the host's other threads spent on a CPU meanwhile: the CLI's other threads (V8's
   * compiler and garbage collector threads), or every other thread of Chromium (its
   * compiler pool, the page's main thread, compositor and GPU process). On two cores,
   * this is what the guest thread waits behind.
   */
  others: number;
}

function readThread(dir: string): ThreadTime | null {
  try {
    const [onCpu, waiting] = fs.readFileSync(`${dir}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return { name: fs.readFileSync(`${dir}/comm`, 'utf8').trim(), onCpu: onCpu / 1e9, waiting: waiting / 1e9 };
  } catch {
    return null; // the thread ended, or there is no schedstat here
  }
}

/** The threads of the processes `pids`, by "pid/tid". */
export function threadTimes(pids: readonly number[]): Map<string, ThreadTime> {
  const out = new Map<string, ThreadTime>();
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const t = readThread(`/proc/${pid}/task/${tid}`);
      if (t) out.set(`${pid}/${tid}`, t);
    }
  }
  return out;
}

/** Processes whose command name matches `comm` (Chromium's browser, renderer and helper processes). */
export function processesNamed(comm: RegExp): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (comm.test(fs.readFileSync(`/proc/${e}/comm`, 'utf8').trim())) pids.push(Number(e));
    } catch {
      // gone
    }
  }
  return pids;
}

/** The calling thread's own scheduler time (Linux 3.17+), or null. */
export function ownThreadTime(): ThreadTime | null {
  return readThread('/proc/thread-self');
}

/** A point to measure the calling thread from (ownThreadSince). */
export interface OwnMark {
  thread: ThreadTime | null;
  steal: number | null;
  /** The whole process's CPU time (all its threads), in seconds. */
  process: number;
}

function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export function ownThreadMark(): OwnMark {
  return { thread: ownThreadTime(), steal: stealSeconds(), process: processCpuSeconds() };
}

/** What the calling thread did since `mark` (its process's other threads as `others`), or null without scheduler statistics. */
export function ownThreadSince(mark: OwnMark): GuestThreadTime | null {
  const now = ownThreadMark();
  if (!mark.thread || !now.thread) return null;
  const t = between(mark.thread, now.thread, mark.steal, now.steal);
  return { ...t, others: Math.max(0, now.process - mark.process - t.onCpu) };
}

function between(was: ThreadTime | undefined, now: ThreadTime, steal0: number | null, steal1: number | null): Omit<GuestThreadTime, 'others'> {
  return {
    onCpu: now.onCpu - (was?.onCpu ?? 0),
    waiting: now.waiting - (was?.waiting ?? 0),
    steal: steal0 !== null && steal1 !== null ? steal1 - steal0 : 0,
  };
}

/** Steal time of all virtual CPUs together, in seconds (the eighth field of /proc/stat's cpu line), or null. */
export function stealSeconds(): number | null {
  try {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    const ticks = Number(fields[8]);
    return Number.isFinite(ticks) ? ticks / 100 : null; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** A point to measure from: the threads that may run the guest, and steal so far. */
export interface Snapshot {
  threads: Map<string, ThreadTime>;
  steal: number | null;
}

export function snapshot(pids: readonly number[]): Snapshot {
  return { threads: threadTimes(pids), steal: stealSeconds() };
}

/**
 * The guest thread between two snapshots: of the threads whose name matches `name`, the one
 * that spent the most time on a CPU (the guest runs flat out in deterministic mode; the
 * host's other threads mostly wait). Null without scheduler statistics.
 */
export function guestThreadBetween(before: Snapshot, after: Snapshot, name: RegExp): GuestThreadTime | null {
  let best: Omit<GuestThreadTime, 'others'> | null = null;
  let all = 0;
  for (const [key, t] of after.threads) {
    const d = between(before.threads.get(key), t, before.steal, after.steal);
    all += d.onCpu;
    if (name.test(t.name) && (best === null || d.onCpu > best.onCpu)) best = d;
  }
  return best && { ...best, others: all - best.onCpu };
}
