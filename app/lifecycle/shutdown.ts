import type { Server } from 'node:http';
import type { Logger } from '../core/logger';

/** A step of the shutdown; `timeoutMs` bounds it (default: ShutdownOptions.stepTimeoutMs). */
export interface ShutdownStep {
  name: string;
  close: () => Promise<void>;
  timeoutMs?: number;
}

/** How long one step may take unless it says otherwise (ms). */
export const DEFAULT_STEP_TIMEOUT_MS = 5000;

type StepLogger = Pick<Logger, 'error'>;

/**
 * Runs a step within its time; false when it failed or timed out (it may
 * still run on, unawaited). A step that hangs (a pool waiting for a database
 * that is gone) is logged and left behind, so a shutdown always finishes.
 */
export async function runStep(step: ShutdownStep, logger: StepLogger, defaultTimeoutMs = DEFAULT_STEP_TIMEOUT_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const limit = step.timeoutMs ?? defaultTimeoutMs;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), limit);
  });
  try {
    const outcome = await Promise.race([step.close().then(() => 'done' as const), timedOut]);
    if (outcome === 'timeout') {
      logger.error({ step: step.name, timeoutMs: limit }, 'shutdown step did not finish in time: going on without it');
      return false;
    }
    return true;
  } catch (err) {
    logger.error({ err, step: step.name }, 'error while shutting down');
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where each part of the appliance registers how it stops, at the point
 * where it starts (TryGhost Ghost's `registerCleanupTask`): stopping runs
 * them in reverse order, so stop mirrors start. `serving(server)` marks
 * where the HTTP server began to listen: what started after it (the
 * signalling hub, background tasks) stops before running requests drain,
 * what started before it (job queue, media, database) after.
 */
export class StopRegistry {
  private readonly entries: (ShutdownStep | { server: Server })[] = [];

  /** Registers how a part that has just started stops. */
  add(step: ShutdownStep): void {
    this.entries.push(step);
  }

  /** The HTTP server listens from here on: its drain sits at this point of the reverse order. */
  serving(server: Server): void {
    this.entries.push({ server });
  }

  /** The stops in the order createShutdown takes them: last registered first, split at the HTTP drain. */
  plan(): { server?: Server; beforeDrain: ShutdownStep[]; closers: ShutdownStep[] } {
    const reversed = [...this.entries].reverse();
    const at = reversed.findIndex((e) => 'server' in e);
    const steps = (list: typeof reversed) => list.filter((e): e is ShutdownStep => !('server' in e));
    if (at === -1) return { beforeDrain: [], closers: steps(reversed) };
    return { server: (reversed[at] as { server: Server }).server, beforeDrain: steps(reversed.slice(0, at)), closers: steps(reversed.slice(at + 1)) };
  }

  /**
   * Stops whatever has started, in reverse order, without waiting for
   * requests (a start-up that failed): each step bounded as in a shutdown.
   * False when a step failed or timed out.
   */
  async stopAll(logger: StepLogger): Promise<boolean> {
    const { server, beforeDrain, closers } = this.plan();
    let ok = true;
    for (const step of beforeDrain) if (!(await runStep(step, logger))) ok = false;
    if (server?.listening) {
      server.close();
      server.closeAllConnections();
    }
    for (const step of closers) if (!(await runStep(step, logger))) ok = false;
    return ok;
  }
}

export interface ShutdownOptions {
  server: Server;
  logger: Logger;
  /** How long running requests may take before connections are cut. */
  timeoutMs: number;
  /** Run in order once HTTP has drained: close pools, stop the embedded database. */
  closers: ShutdownStep[];
  /** Run in order once the server stopped accepting, before HTTP drains: long-lived connections (WebSockets) that would keep it open. */
  beforeDrain?: ShutdownStep[];
  /**
   * How long one step may take (ms, default 5000). A step that hangs (a pool
   * waiting for a database that is gone) is logged and left behind, so the
   * shutdown always finishes.
   */
  stepTimeoutMs?: number;
  exit: (code: number) => void;
}

/**
 * Graceful shutdown. The first signal stops accepting connections, runs the
 * `beforeDrain` steps, lets running requests finish (idle keep-alive
 * connections are closed, busy ones get `Connection: close`), then closes
 * the pools and exits 0. If requests outlast the timeout, their connections
 * are cut. Every step is bounded (stepTimeoutMs), so a dead database cannot
 * hold the shutdown up. A second signal exits at once with code 1.
 * `exitCode` (default 0) is the code of a clean shutdown: 1 when the
 * appliance stops because it cannot go on.
 */
export function createShutdown(options: ShutdownOptions): { shutdown: (reason: string, exitCode?: number) => Promise<void>; isShuttingDown: () => boolean } {
  const { server, logger, timeoutMs, closers, exit } = options;
  const stepTimeoutMs = options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  let shuttingDown = false;

  server.on('request', (_req, res) => {
    if (shuttingDown && !res.headersSent) res.setHeader('Connection', 'close');
  });

  async function shutdown(reason: string, exitCode = 0): Promise<void> {
    if (shuttingDown) {
      logger.warn({ reason }, 'second shutdown signal: exiting now');
      exit(1);
      return;
    }
    shuttingDown = true;
    logger.info({ reason, timeoutMs }, 'shutting down: no new connections, finishing running requests');

    // No new connections from here on; the drain below waits for the open ones.
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
    for (const step of options.beforeDrain ?? []) await runStep(step, logger, stepTimeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([drained.then(() => 'drained' as const), timedOut]);
    clearInterval(idleSweep);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      logger.warn('requests still running after the shutdown timeout: closing their connections');
      server.closeAllConnections();
    }

    let failed = false;
    for (const closer of closers) if (!(await runStep(closer, logger, stepTimeoutMs))) failed = true;
    logger.info({ exitCode: failed ? 1 : exitCode }, 'shutdown complete');
    exit(failed ? 1 : exitCode);
  }

  return { shutdown, isShuttingDown: () => shuttingDown };
}
