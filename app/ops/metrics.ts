import fs from 'node:fs';
import type { Figures } from './probe';
import type { VersionInfo } from './version';

/**
 * The Prometheus text exposition format (version 0.0.4), written by hand
 * for the few gauges VClerk has: appliance figures (calls, media workers,
 * recordings, queue, job backlog, the nodes of the registry) and the usual
 * process metrics.
 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Sample = { labels?: Record<string, string | number>; value: number };

class Exposition {
  private readonly lines: string[] = [];

  metric(name: string, type: 'gauge' | 'counter', help: string, samples: Sample[]): this {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
    for (const s of samples) this.lines.push(`${name}${labels(s.labels)} ${format(s.value)}`);
    return this;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

function labels(values: Record<string, string | number> | undefined): string {
  if (!values || Object.keys(values).length === 0) return '';
  const body = Object.entries(values).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return `{${body.join(',')}}`;
}

function format(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function openFileDescriptors(): number | null {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

const startTimeSeconds = Math.round((Date.now() - process.uptime() * 1000) / 1000);

export function renderMetrics(figures: Figures, version: VersionInfo, extra: { tlsMode: string; turnConfigured: boolean }): string {
  const out = new Exposition();
  out.metric('vclerk_info', 'gauge', 'The appliance version; always 1.', [{ labels: { version: version.version, commit: version.commit ?? '', tls: extra.tlsMode, turn: extra.turnConfigured ? 'yes' : 'no' }, value: 1 }]);
  out.metric('vclerk_database_up', 'gauge', 'Whether the database answered (1) or not (0).', [{ value: figures.database === 'ok' ? 1 : 0 }]);
  out.metric('vclerk_calls', 'gauge', 'Calls not yet ended, by status (waiting: not everyone there yet; active: clerk and customer joined).', [
    { labels: { status: 'waiting' }, value: figures.calls.waiting },
    { labels: { status: 'active' }, value: figures.calls.active },
  ]);
  if (figures.liveRooms !== null) out.metric('vclerk_media_rooms', 'gauge', 'Calls with a media room (router) on a worker.', [{ value: figures.liveRooms }]);
  if (figures.workers !== null) {
    out.metric('vclerk_media_workers', 'gauge', 'Media workers in the pool.', [{ value: figures.workers.length }]);
    out.metric('vclerk_media_worker_alive', 'gauge', 'Whether a media worker is alive (1) or dead (0).', figures.workers.map((w) => ({ labels: { worker: w.index }, value: w.alive ? 1 : 0 })));
    out.metric('vclerk_media_worker_routers', 'gauge', 'Routers (one per call) on a media worker: its load.', figures.workers.map((w) => ({ labels: { worker: w.index }, value: w.routers ?? NaN })));
  }
  out.metric('vclerk_recordings', 'gauge', 'Recordings being recorded or processed (finishing job not done).', [
    { labels: { status: 'recording' }, value: figures.recordings.recording },
    { labels: { status: 'processing' }, value: figures.recordings.processing },
  ]);
  out.metric('vclerk_queue_waiting', 'gauge', 'Customers waiting in the organisations\' queues.', [{ value: figures.queueWaiting }]);
  if (figures.nodes && figures.nodes.length) {
    const nodes = figures.nodes;
    const each = (value: (n: (typeof nodes)[number]) => number | null) => nodes.map((n) => ({ labels: { node: n.name }, value: value(n) ?? NaN }));
    out.metric('vclerk_node_up', 'gauge', 'Whether an appliance node renews its registration (1: up or draining) or not (0: gone or stopped).', each((n) => (n.state === 'up' || n.state === 'draining' ? 1 : 0)));
    out.metric('vclerk_node_calls', 'gauge', 'Calls with a media room on an appliance node, as it last reported.', each((n) => n.calls));
    out.metric('vclerk_node_capacity', 'gauge', 'Calls an appliance node takes at once.', each((n) => n.capacity));
    out.metric('vclerk_node_draining', 'gauge', 'Whether an appliance node is drained (1: it keeps its calls but is given no new ones).', each((n) => (n.draining ? 1 : 0)));
  }
  const backlog = Object.entries(figures.backlog).filter((e): e is [string, number] => e[1] !== null);
  if (backlog.length) out.metric('vclerk_job_backlog', 'gauge', 'Background jobs not done yet (queued, running or retrying), by queue.', backlog.map(([queue, n]) => ({ labels: { queue }, value: n })));

  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  out.metric('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', [{ value: cpu.user / 1e6 }]);
  out.metric('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', [{ value: cpu.system / 1e6 }]);
  out.metric('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [{ value: (cpu.user + cpu.system) / 1e6 }]);
  out.metric('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [{ value: memory.rss }]);
  out.metric('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', [{ value: startTimeSeconds }]);
  const fds = openFileDescriptors();
  if (fds !== null) out.metric('process_open_fds', 'gauge', 'Number of open file descriptors.', [{ value: fds }]);
  out.metric('nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.', [{ value: memory.heapTotal }]);
  out.metric('nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.', [{ value: memory.heapUsed }]);
  out.metric('nodejs_external_memory_bytes', 'gauge', 'Node.js external memory size in bytes.', [{ value: memory.external }]);
  return out.toString();
}
