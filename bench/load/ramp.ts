/**
 * The ramp against one target: calls added in steps, each step held and
 * measured (CPU from /proc deltas, memory from VmRSS, the receivers'
 * loss and jitter), until the worker saturates, loss passes the limit, the
 * generator saturates, or the bounds (calls, duration) are reached.
 */
import { CpuMeter, machineBusySeconds, rssMb, udpDrops } from './proc';
import { Generators } from './generators';
import type { GeneratorStats } from './generator';
import type { LoadTarget } from './target';

export interface RampOptions {
  workers: number;
  record: boolean;
  step: number;
  maxCalls: number;
  holdSeconds: number;
  settleSeconds: number;
  maxSeconds: number;
  generators: number;
  tickMs: number;
  lossLimit: number;
  /** Worker CPU (% of one core, the busiest worker) at which the worker counts as saturated. */
  cpuLimit: number;
  /** Generator CPU (% of one core, per process) or mean send lateness (ms) at which the generator counts as saturated. */
  generatorCpuLimit: number;
  generatorLateLimitMs: number;
  clipFile: string;
  /** Packets per second one call's receivers should get (both participants' audio and video). */
  nominalPpsPerCall: number;
}

export interface Step {
  calls: number;
  seconds: number;
  /** Forwarded streams: 4 per call (each participant receives the other's audio and video), 8 when recorded (4 more to the recorder). */
  streams: number;
  workerCpu: number;
  workerCpuMax: number;
  nodeCpu: number;
  generatorCpu: number;
  generatorCpuMax: number;
  auxCpu: number;
  auxProcesses: number;
  machineCpu: number;
  workerRssMb: number;
  rxMbps: number;
  rxPps: number;
  /** rxPps as % of what the calls nominally send: below 100 the offered load was not there (generator behind) or lost. */
  deliveredPercent: number;
  lossMean: number;
  lossWorst: number;
  jitterMeanMs: number;
  jitterWorstMs: number;
  silentStreams: number;
  lateMeanMs: number;
  lateMaxMs: number;
  /** Datagrams dropped at the generators' own receive sockets (they fell behind). */
  generatorDrops: number;
  /** Datagrams dropped at the SFU processes' sockets (their receive buffers overflowed). */
  sfuDrops: number;
  saturated: string[];
}

export interface RampResult {
  target: string;
  workers: number;
  idleWorkerCpu: number;
  idleWorkerRssMb: number;
  steps: Step[];
  stoppedBecause: string;
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function combine(stats: GeneratorStats[]): Omit<GeneratorStats, 'sockets' | 'rtcpIn'> & { lossMean: number } {
  const sum = (f: (s: GeneratorStats) => number) => stats.reduce((n, s) => n + f(s), 0);
  const streams = sum((s) => s.streams);
  const expected = sum((s) => s.expected);
  const received = sum((s) => s.received);
  return {
    streams,
    silent: sum((s) => s.silent),
    received,
    expected,
    bytes: sum((s) => s.bytes),
    lossMean: expected > 0 ? (Math.max(0, expected - received) / expected) * 100 : 0,
    lossWorst: Math.max(0, ...stats.map((s) => s.lossWorst)),
    jitterMeanMs: streams ? sum((s) => s.jitterMeanMs * s.streams) / streams : 0,
    jitterWorstMs: Math.max(0, ...stats.map((s) => s.jitterWorstMs)),
    lateMeanMs: stats.length ? sum((s) => s.lateMeanMs) / stats.length : 0,
    lateMaxMs: Math.max(0, ...stats.map((s) => s.lateMaxMs)),
    sent: sum((s) => s.sent),
    drops: sum((s) => s.drops),
    slips: sum((s) => s.slips),
  };
}

export async function ramp(target: LoadTarget, o: RampOptions, print: (line: string) => void): Promise<RampResult> {
  const began = performance.now();
  const elapsed = () => (performance.now() - began) / 1000;
  try {
    await target.start({ workers: o.workers, record: o.record });
  } catch (err) {
    await target.stop().catch(() => undefined);
    throw new Error(`could not start: ${(err as Error).message}`, { cause: err });
  }
  const generators = await Generators.start(o.generators, o.clipFile, o.tickMs).catch(async (err: unknown) => {
    await target.stop();
    throw err;
  });
  const steps: Step[] = [];
  let stoppedBecause = '';
  try {
    const workers = target.mediaPids();
    const idle = new CpuMeter();
    idle.begin(workers);
    await sleep(2000);
    const idleWorkerCpu = idle.end(workers);
    const idleWorkerRssMb = workers.reduce((n, pid) => n + rssMb(pid), 0);
    print(`${target.name}: ${workers.length} worker(s), pid ${workers.join(', ')}; idle CPU ${idleWorkerCpu.toFixed(2)} %, RSS ${idleWorkerRssMb.toFixed(1)} MB; generator pid ${generators.pids().join(', ')}`);
    print(Header);
    let calls = 0;
    for (;;) {
      const add = Math.min(o.step, o.maxCalls - calls);
      for (let i = 0; i < add; i++, calls++) {
        const receivers = await generators.receivers(calls);
        const sends = await target.addCall(calls, receivers);
        await generators.send(calls, sends);
      }
      // Video flows from the next key frame (at most 2 s); the first interval is discarded.
      await sleep(o.settleSeconds * 1000);
      await generators.stats();
      const pids = { worker: target.mediaPids(), gen: generators.pids(), aux: target.auxiliaryPids?.() ?? [] };
      const meters = { worker: new CpuMeter(), node: new CpuMeter(), gen: new CpuMeter(), aux: new CpuMeter() };
      const perWorker = pids.worker.map(() => new CpuMeter());
      const perGen = pids.gen.map(() => new CpuMeter());
      meters.worker.begin(pids.worker);
      meters.node.begin([process.pid]);
      meters.gen.begin(pids.gen);
      meters.aux.begin(pids.aux);
      pids.worker.forEach((pid, i) => perWorker[i]!.begin([pid]));
      pids.gen.forEach((pid, i) => perGen[i]!.begin([pid]));
      const machine0 = machineBusySeconds();
      const drops0 = udpDrops(pids.worker);
      const t0 = performance.now();
      await sleep(o.holdSeconds * 1000);
      const seconds = (performance.now() - t0) / 1000;
      const stats = combine(await generators.stats());
      const step: Step = {
        calls,
        seconds,
        streams: calls * (o.record ? 8 : 4),
        workerCpu: meters.worker.end(pids.worker),
        workerCpuMax: Math.max(0, ...pids.worker.map((pid, i) => perWorker[i]!.end([pid]))),
        nodeCpu: meters.node.end([process.pid]),
        generatorCpu: meters.gen.end(pids.gen),
        generatorCpuMax: Math.max(0, ...pids.gen.map((pid, i) => perGen[i]!.end([pid]))),
        auxCpu: meters.aux.end(pids.aux),
        auxProcesses: pids.aux.length,
        machineCpu: ((machineBusySeconds() - machine0) / seconds) * 100,
        workerRssMb: pids.worker.reduce((n, pid) => n + rssMb(pid), 0),
        rxMbps: (stats.bytes * 8) / seconds / 1e6,
        rxPps: stats.received / seconds,
        deliveredPercent: (stats.received / seconds / (calls * o.nominalPpsPerCall)) * 100,
        lossMean: stats.lossMean,
        lossWorst: stats.lossWorst,
        jitterMeanMs: stats.jitterMeanMs,
        jitterWorstMs: stats.jitterWorstMs,
        silentStreams: stats.silent,
        lateMeanMs: stats.lateMeanMs,
        lateMaxMs: stats.lateMaxMs,
        generatorDrops: stats.drops,
        sfuDrops: udpDrops(pids.worker) - drops0,
        saturated: [],
      };
      if (step.workerCpuMax >= o.cpuLimit) step.saturated.push(`worker CPU ${step.workerCpuMax.toFixed(0)} % >= ${o.cpuLimit} %`);
      if (step.lossMean > o.lossLimit) step.saturated.push(`loss ${step.lossMean.toFixed(2)} % > ${o.lossLimit} %${step.sfuDrops > 0 ? ` (the SFU's sockets dropped ${step.sfuDrops} datagrams)` : ''}`);
      if (step.deliveredPercent < 95) step.saturated.push(`receivers got ${step.deliveredPercent.toFixed(0)} % of the nominal packet rate`);
      if (step.silentStreams > 0) step.saturated.push(`${step.silentStreams} stream(s) received nothing`);
      if (step.generatorCpuMax >= o.generatorCpuLimit) step.saturated.push(`generator CPU ${step.generatorCpuMax.toFixed(0)} % >= ${o.generatorCpuLimit} %`);
      if (step.generatorDrops > 0) step.saturated.push(`generator's receive sockets dropped ${step.generatorDrops} datagrams`);
      if (stats.slips > 0 && o.generatorLateLimitMs < 200) step.saturated.push(`generator streams slipped ${stats.slips} times (over 200 ms late)`);
      if (step.lateMeanMs >= o.generatorLateLimitMs) step.saturated.push(`generator sends ${step.lateMeanMs.toFixed(1)} ms late on average${step.machineCpu - measured(step) > 20 ? ' (other processes busy the machine)' : ''}`);
      steps.push(step);
      print(row(step));
      if (step.saturated.length > 0) {
        stoppedBecause = step.saturated.join('; ');
        break;
      }
      if (calls >= o.maxCalls) {
        stoppedBecause = `reached --max-calls ${o.maxCalls}`;
        break;
      }
      if (elapsed() + o.settleSeconds + o.holdSeconds > o.maxSeconds) {
        stoppedBecause = `the next step would pass --max-seconds ${o.maxSeconds}`;
        break;
      }
    }
    return { target: target.name, workers: workers.length, idleWorkerCpu, idleWorkerRssMb, steps, stoppedBecause, seconds: elapsed() };
  } finally {
    await generators.stop();
    await target.stop();
  }
}

/** CPU of the processes the ramp knows (worker, this process, generators, recorder), % of one core. */
function measured(s: Step): number {
  return s.workerCpu + s.nodeCpu + s.generatorCpu + s.auxCpu;
}

const Header = 'calls  worker CPU %  per stream %  node %  gen CPU %  late ms  rec CPU %  others %  rx Mbit/s   rx pkt/s  load %  loss % mean/worst  jitter ms mean/worst  worker RSS MB  drops gen/SFU';

function row(s: Step): string {
  const f = (n: number, d: number, w: number) => n.toFixed(d).padStart(w);
  return [
    f(s.calls, 0, 5),
    f(s.workerCpu, 1, 13),
    f(s.workerCpu / s.streams, 3, 13),
    f(s.nodeCpu, 1, 7),
    f(s.generatorCpu, 1, 10),
    f(s.lateMeanMs, 1, 8),
    f(s.auxCpu, 1, 10),
    f(Math.max(0, s.machineCpu - measured(s)), 0, 9),
    f(s.rxMbps, 1, 10),
    f(s.rxPps, 0, 10),
    f(s.deliveredPercent, 0, 7),
    `${f(s.lossMean, 2, 8)} /${f(s.lossWorst, 2, 7)}`.padStart(18),
    `${f(s.jitterMeanMs, 2, 8)} /${f(s.jitterWorstMs, 2, 7)}`.padStart(21),
    f(s.workerRssMb, 1, 14),
    `${s.generatorDrops}/${s.sfuDrops}`.padStart(14),
  ].join(' ') + (s.saturated.length ? `  <- ${s.saturated.join('; ')}` : '');
}
