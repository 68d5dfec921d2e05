/**
 * HTTP benchmark: VClerk's real app, built by createApp with its whole
 * middleware stack (request ids, security headers, compression, sessions,
 * language negotiation, CSRF, EJS pages with layout, the error handler),
 * against a bare Express 5 app that answers the same URLs with the same
 * bytes. The difference between the two is what that stack and the
 * rendering cost per request; the memory lines show what the server process
 * holds before and after the load.
 *
 * Both apps run in this process on 127.0.0.1 (ephemeral ports); a second
 * process started from this file drives them with keep-alive `node:http`
 * requests, so the load generator does not compete for the servers' event
 * loop. The benchmarked routes never touch the database (a tripwire on
 * 127.0.0.1 stands in for PostgreSQL and reports any connection attempt).
 * Runs a fixed number of requests and exits: about 15 s on 2 cores.
 *
 * Run: npx tsx bench/http.ts
 *      NODE_ENV=development npx tsx bench/http.ts   (view cache off, as in development)
 * Exit code 1 when a request failed or got an unexpected status.
 */
import { fork, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import express from 'express';
import pino from 'pino';
import { createApp } from '../app/app';
import { createKnex } from '../app/db/connection';
import { loadConfig } from '../config';

// Production mode unless told otherwise: createApp turns the view cache on only in production.
process.env.NODE_ENV ??= 'production';

const HOST = '127.0.0.1';
const WARMUP_REQUESTS = 500;
const ROUNDS = 3;
const REQUESTS_PER_ROUND = 2000;
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 10_000;
const WATCHDOG_MS = 120_000;
const LOAD_GENERATOR_FLAG = '--load-generator';

interface BenchCase {
  name: string;
  path: string;
  headers: Record<string, string>;
  status: number;
}

const HEALTHZ: BenchCase = { name: 'GET /healthz', path: '/healthz', headers: { accept: 'application/json' }, status: 200 };
const HOME: BenchCase = { name: 'GET / (html)', path: '/', headers: { accept: 'text/html', 'accept-language': 'en' }, status: 200 };
/** As browsers ask: VClerk compresses the page, the baseline does not. */
const HOME_GZIP: BenchCase = { ...HOME, name: 'GET / (html, gzip)', headers: { ...HOME.headers, 'accept-encoding': 'gzip' } };
const NOT_FOUND: BenchCase = { name: '404 (json)', path: '/no-such-page', headers: { accept: 'application/json' }, status: 404 };
const CASES = [HEALTHZ, HOME, HOME_GZIP, NOT_FOUND];

/** One batch of requests, sent from the parent to the load generator. */
interface LoadJob {
  id: number;
  port: number;
  path: string;
  headers: Record<string, string>;
  requests: number;
  concurrency: number;
}

interface LoadResult {
  id: number;
  elapsedMs: number;
  /** Latency of each successful request, in milliseconds. */
  latenciesMs: number[];
  statuses: Record<string, number>;
  errors: number;
  firstError?: string;
  /** Body bytes of the last response (compressed size when compressed). */
  bodyBytes: number;
}

// ---------------------------------------------------------------------------
// Load generator (child process)
// ---------------------------------------------------------------------------

function getOnce(agent: http.Agent, job: LoadJob): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: HOST, port: job.port, path: job.path, headers: job.headers, agent, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

async function runLoad(job: LoadJob): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
  const result: LoadResult = { id: job.id, elapsedMs: 0, latenciesMs: [], statuses: {}, errors: 0, bodyBytes: 0 };
  let issued = 0;
  const lane = async () => {
    while (issued < job.requests) {
      issued++;
      const started = performance.now();
      try {
        const { status, bytes } = await getOnce(agent, job);
        result.latenciesMs.push(performance.now() - started);
        result.statuses[status] = (result.statuses[status] ?? 0) + 1;
        result.bodyBytes = bytes;
      } catch (err) {
        result.errors++;
        result.firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, lane));
  result.elapsedMs = performance.now() - started;
  agent.destroy();
  return result;
}

function loadGeneratorMain(): void {
  process.on('message', (job: LoadJob) => {
    void runLoad(job).then((result) => process.send!(result));
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------
// Servers and measurement (parent process)
// ---------------------------------------------------------------------------

class LoadGenerator {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (r: LoadResult) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor() {
    // Same file, same tsx loader (fork passes process.execArgv on).
    this.child = fork(__filename, [LOAD_GENERATOR_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (result: LoadResult) => {
      this.pending.get(result.id)?.resolve(result);
      this.pending.delete(result.id);
    });
    this.child.on('exit', (code, signal) => {
      for (const { reject } of this.pending.values()) reject(new Error(`the load generator exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  run(port: number, benchCase: BenchCase, requests: number): Promise<LoadResult> {
    const job: LoadJob = { id: this.nextId++, port, path: benchCase.path, headers: benchCase.headers, requests, concurrency: CONCURRENCY };
    return new Promise((resolve, reject) => {
      this.pending.set(job.id, { resolve, reject });
      this.child.send(job);
    });
  }

  close(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

interface Target {
  label: 'vclerk' | 'baseline';
  server: http.Server;
  port: number;
}

async function listen(app: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}

function fetchBody(port: number, benchCase: BenchCase): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: HOST, port, path: benchCase.path, headers: benchCase.headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/**
 * The baseline: bare Express 5, no middleware. `/healthz` answers like
 * VClerk's liveness route; `/` and the 404 answer with the very bytes VClerk
 * produced, so both sides send bodies of the same size.
 */
function baselineApp(homeHtml: string, notFoundJson: unknown): http.RequestListener {
  const app = express();
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/', (_req, res) => {
    res.type('html').send(homeHtml);
  });
  app.use((_req, res) => {
    res.status(404).json(notFoundJson);
  });
  return app;
}

/**
 * A stand-in for PostgreSQL on 127.0.0.1 that counts connection attempts and
 * closes them. The benchmarked routes are expected never to reach it.
 */
async function databaseTripwire(): Promise<{ server: net.Server; url: string; attempts: () => number }> {
  let attempts = 0;
  const server = net.createServer((socket) => {
    attempts++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `postgres://bench@${HOST}:${port}/none`, attempts: () => attempts };
}

function vclerkApp(databaseUrl: string) {
  const config = loadConfig({ VCLERK_LOG_LEVEL: 'silent', VCLERK_LOG_REQUESTS: 'false' });
  // The pool connects lazily: nothing reaches the tripwire unless a route queries.
  const db = createKnex(databaseUrl, 1);
  const sessionSecret = crypto.randomBytes(32).toString('base64url');
  const app = createApp({ config, db, logger: pino({ level: 'silent' }), sessionSecret });
  return { app, db };
}

/** A full garbage collection, so that "heap used" counts live objects rather than garbage not yet collected. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Summary {
  rate: number;
  /** Largest deviation of a round's rate from the median, in percent. */
  spread: number;
  p50: number;
  p99: number;
  bytes: number;
}

function summarize(results: LoadResult[]): Summary {
  const rates = results.map((r) => (r.latenciesMs.length / r.elapsedMs) * 1000);
  const rate = median(rates);
  const latencies = results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  return {
    rate,
    spread: Math.max(...rates.map((r) => Math.abs(r - rate) / rate)) * 100,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    bytes: results.at(-1)?.bodyBytes ?? 0,
  };
}

/** Problems with a batch: transport errors or a status other than the expected one. */
function check(result: LoadResult, benchCase: BenchCase, target: Target): string[] {
  const problems: string[] = [];
  if (result.errors > 0) problems.push(`${target.label} ${benchCase.name}: ${result.errors} failed requests (${result.firstError})`);
  for (const [status, count] of Object.entries(result.statuses)) {
    if (Number(status) !== benchCase.status) problems.push(`${target.label} ${benchCase.name}: ${count} answers with status ${status}, expected ${benchCase.status}`);
  }
  return problems;
}

const MB = 1024 * 1024;
const fmtRate = (s: Summary) => `${Math.round(s.rate).toLocaleString('en-US')} ±${s.spread.toFixed(0)}%`;
const fmtMs = (ms: number) => ms.toFixed(2);
const fmtMb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const fmtDelta = (bytes: number) => `${bytes >= 0 ? '+' : '-'}${(Math.abs(bytes) / MB).toFixed(1)} MB`;

function table(rows: string[][], rightAligned: (col: number) => boolean): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows
    .map((row) => row.map((cell, col) => (rightAligned(col) ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!))).join('  ').trimEnd())
    .join('\n');
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`the benchmark did not finish within ${WATCHDOG_MS / 1000} s; giving up`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();

  const tripwire = await databaseTripwire();
  const { app, db } = vclerkApp(tripwire.url);
  const vclerk: Target = { label: 'vclerk', ...(await listen(app)) };

  const home = await fetchBody(vclerk.port, HOME);
  const notFound = await fetchBody(vclerk.port, NOT_FOUND);
  if (home.status !== 200 || notFound.status !== 404) {
    throw new Error(`VClerk answered / with ${home.status} and /no-such-page with ${notFound.status}; expected 200 and 404`);
  }
  const baseline: Target = { label: 'baseline', ...(await listen(baselineApp(home.body, JSON.parse(notFound.body)))) };
  const targets = [vclerk, baseline];

  const generator = new LoadGenerator();
  collectGarbage();
  const memoryBefore = process.memoryUsage();
  const problems: string[] = [];
  const results = new Map<string, LoadResult[]>();
  const started = performance.now();

  for (const benchCase of CASES) {
    for (const target of targets) problems.push(...check(await generator.run(target.port, benchCase, WARMUP_REQUESTS), benchCase, target));
  }
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which app goes first, so that drift (heat, GC) does not favour one of them.
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const benchCase of CASES) {
      for (const target of order) {
        const result = await generator.run(target.port, benchCase, REQUESTS_PER_ROUND);
        problems.push(...check(result, benchCase, target));
        const key = `${benchCase.name}|${target.label}`;
        results.set(key, [...(results.get(key) ?? []), result]);
      }
    }
  }

  const seconds = (performance.now() - started) / 1000;
  collectGarbage();
  const memoryAfter = process.memoryUsage();
  generator.close();
  for (const { server } of targets) {
    server.closeAllConnections();
    server.close();
  }
  await db.destroy();
  tripwire.server.close();

  const rows = [
    ['route', 'VClerk req/s', 'baseline req/s', 'ratio', 'p50 ms VClerk', 'p50 ms base', 'p99 ms VClerk', 'p99 ms base', 'body bytes V/B'],
  ];
  for (const benchCase of CASES) {
    const v = summarize(results.get(`${benchCase.name}|vclerk`)!);
    const b = summarize(results.get(`${benchCase.name}|baseline`)!);
    rows.push([
      benchCase.name,
      fmtRate(v),
      fmtRate(b),
      `${(v.rate / b.rate).toFixed(2)}x`,
      fmtMs(v.p50),
      fmtMs(b.p50),
      fmtMs(v.p99),
      fmtMs(b.p99),
      `${v.bytes}/${b.bytes}`,
    ]);
  }

  const memRows = [
    ['server process', 'before', 'after', 'change'],
    ['RSS', fmtMb(memoryBefore.rss), fmtMb(memoryAfter.rss), fmtDelta(memoryAfter.rss - memoryBefore.rss)],
    ['heap used after full GC', fmtMb(memoryBefore.heapUsed), fmtMb(memoryAfter.heapUsed), fmtDelta(memoryAfter.heapUsed - memoryBefore.heapUsed)],
  ];

  const cpus = os.cpus().length;
  console.log(`VClerk HTTP benchmark: Node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus} CPU${cpus === 1 ? '' : 's'}, NODE_ENV=${process.env.NODE_ENV}`);
  console.log(
    `${ROUNDS} rounds x ${REQUESTS_PER_ROUND} requests per route and app after ${WARMUP_REQUESTS} warm-up requests; ` +
      `concurrency ${CONCURRENCY}, keep-alive, load generator in its own process; ${seconds.toFixed(1)} s`,
  );
  console.log('req/s: median of the rounds, ± the largest deviation of a round; ratio: VClerk req/s / baseline req/s; latencies over all rounds\n');
  console.log(table(rows, (col) => col > 0));
  console.log('');
  console.log(table(memRows, (col) => col > 0));
  console.log('(both servers share this process; before = servers listening, before warm-up; after = last round)');

  if (tripwire.attempts() > 0) problems.push(`VClerk tried ${tripwire.attempts()} database connections; these routes are expected to make none`);
  if (problems.length > 0) {
    console.error(`\n${problems.length} problem(s); the figures above are not trustworthy:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  }
}

if (process.argv.includes(LOAD_GENERATOR_FLAG)) {
  loadGeneratorMain();
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
