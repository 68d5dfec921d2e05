/** The summary of the ramps: per target the figures at its last good step, side by side, and VClerk ÷ Janus. */
import type { RampResult, Step } from './ramp';

export interface Summary {
  target: string;
  step: Step | undefined;
  /** True when even the first step was saturated (its figures are shown, marked). */
  noGoodStep: boolean;
}

/** The last step under the loss limit and without saturation (else the first step, marked). */
export function lastGoodStep(r: RampResult): Summary {
  const good = r.steps.filter((s) => s.saturated.length === 0);
  const step = good[good.length - 1] ?? r.steps[0];
  return { target: r.target, step, noGoodStep: good.length === 0 };
}

interface Figures {
  calls: number;
  callsPerWorker: number;
  callsPerBusyCore: number;
  cpuPerStream: number;
  mbpsPerBusyCore: number;
  ppsPerBusyCore: number;
  memoryPerCallMb: number;
  recorderCpuPerCall: number | undefined;
}

function figures(r: RampResult, s: Step): Figures {
  const busyCores = Math.max(s.workerCpu - r.idleWorkerCpu, 0.01) / 100;
  return {
    calls: s.calls,
    callsPerWorker: s.calls / r.workers,
    callsPerBusyCore: s.calls / busyCores,
    cpuPerStream: (s.workerCpu - r.idleWorkerCpu) / s.streams,
    mbpsPerBusyCore: s.rxMbps / busyCores,
    ppsPerBusyCore: s.rxPps / busyCores,
    memoryPerCallMb: (s.workerRssMb - r.idleWorkerRssMb) / s.calls,
    recorderCpuPerCall: s.auxProcesses > 0 ? s.auxCpu / s.calls : undefined,
  };
}

export function summarise(results: RampResult[]): string[] {
  const lines: string[] = [];
  const cols = results.map((r) => ({ r, sum: lastGoodStep(r) }));
  const width = 22;
  const line = (label: string, values: string[]) => lines.push(label.padEnd(46) + values.map((v) => v.padStart(width)).join(''));
  line('', cols.map((c) => c.r.target));
  const fig = cols.map((c) => (c.sum.step ? figures(c.r, c.sum.step) : undefined));
  const show = (label: string, get: (f: Figures, s: Step, r: RampResult) => string) => line(label, cols.map((c, i) => (c.sum.step && fig[i] ? get(fig[i], c.sum.step, c.r) : '-')));
  show('step summarised (last good one)', (f, s, r) => `${s.calls} calls${cols.find((c) => c.r === r)!.sum.noGoodStep ? ' (saturated!)' : ''}`);
  show('media processes (workers)', (_f, _s, r) => String(r.workers));
  show('calls carried per worker', (f) => f.callsPerWorker.toFixed(0));
  show('calls per worker core (projected, 100 %)', (f) => f.callsPerBusyCore.toFixed(0));
  show('worker CPU, % of one core', (_f, s) => s.workerCpu.toFixed(1));
  show('CPU per forwarded stream, % of a core', (f) => f.cpuPerStream.toFixed(3));
  show('egress Mbit/s per busy core', (f) => f.mbpsPerBusyCore.toFixed(0));
  show('egress packets/s per busy core', (f) => f.ppsPerBusyCore.toFixed(0));
  show('memory per call, MB (worker RSS growth)', (f) => f.memoryPerCallMb.toFixed(2));
  show('loss at the receivers, % mean / worst', (_f, s) => `${s.lossMean.toFixed(2)} / ${s.lossWorst.toFixed(2)}`);
  show('jitter at the receivers, ms mean / worst', (_f, s) => `${s.jitterMeanMs.toFixed(2)} / ${s.jitterWorstMs.toFixed(2)}`);
  show('recorder CPU per recorded call, % of a core', (f) => (f.recorderCpuPerCall === undefined ? 'not recorded' : f.recorderCpuPerCall.toFixed(2)));
  show('SFU-side Node process CPU, %', (_f, s) => s.nodeCpu.toFixed(1));
  show('generator CPU, % (busiest process)', (_f, s) => `${s.generatorCpu.toFixed(0)} (${s.generatorCpuMax.toFixed(0)})`);
  show('ramp stopped because', (_f, _s, r) => shorten(r.stoppedBecause, width - 1));
  const v = cols.findIndex((c) => c.r.target === 'vclerk');
  const j = cols.findIndex((c) => c.r.target === 'janus');
  if (v >= 0 && j >= 0 && fig[v] && fig[j]) {
    lines.push('');
    lines.push(`CPU per forwarded stream, VClerk ÷ Janus: ${(fig[v].cpuPerStream / fig[j].cpuPerStream).toFixed(2)}x (${fig[v].cpuPerStream.toFixed(3)} % ÷ ${fig[j].cpuPerStream.toFixed(3)} % of a core; below 1 VClerk is cheaper)`);
    if (cols[v]!.sum.step!.calls !== cols[j]!.sum.step!.calls) lines.push(`  (at ${cols[v]!.sum.step!.calls} and ${cols[j]!.sum.step!.calls} calls: each target's own last good step)`);
  }
  for (const c of cols) lines.push(`${c.r.target}: stopped because ${c.r.stoppedBecause} (${c.r.steps.length} steps, ${c.r.seconds.toFixed(0)} s)`);
  return lines;
}

function shorten(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
