/** CPU time and resident memory of processes, from /proc (Linux). */
import fs from 'node:fs';
import os from 'node:os';

const TICKS_PER_SECOND = 100;

/** User + system CPU time of a process in seconds, or undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Resident memory in MB (VmRSS), or 0 when the process is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The whole machine's busy CPU time in seconds (all cores), for telling a loaded machine apart. */
export function machineBusySeconds(): number {
  return os.cpus().reduce((n, c) => n + (c.times.user + c.times.nice + c.times.sys + c.times.irq) / 1000, 0);
}

/**
 * CPU used between `begin` and `end` by a set of processes, as % of one
 * core. A process seen only at the end (started meanwhile) counts from 0
 * only if `countNew`; one gone at the end is left out.
 */
export class CpuMeter {
  private start = new Map<number, number>();
  private startedAt = 0;

  begin(pids: number[]): void {
    this.start = new Map();
    for (const pid of pids) {
      const s = cpuSeconds(pid);
      if (s !== undefined) this.start.set(pid, s);
    }
    this.startedAt = performance.now();
  }

  /** % of one core over the interval, summed over the processes. */
  end(pids: number[]): number {
    const seconds = (performance.now() - this.startedAt) / 1000;
    let used = 0;
    for (const pid of pids) {
      const now = cpuSeconds(pid);
      const before = this.start.get(pid);
      if (now === undefined || before === undefined) continue;
      used += now - before;
    }
    return seconds > 0 ? (used / seconds) * 100 : 0;
  }
}

/** Datagrams the kernel dropped so far at the UDP sockets these processes hold (their receive buffers overflowed), from /proc/net/udp. */
export function udpDrops(pids: number[]): number {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  }
  let drops = 0;
  for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 13 && inodes.has(f[9]!)) drops += Number(f[12]);
  }
  return drops;
}
