import type { Server } from 'node:http';
import type { Logger } from '../logger';

/** A step of the shutdown; `timeoutMs` bounds it (default: ShutdownOptions.stepTimeoutMs). */
export interface ShutdownStep {
  name: string;
  close: () => Promise<void>;
  timeoutMs?: number;
}

export interface ShutdownOptions {
  server: Server;
  logger: Logger;
  /** How long running requests may take before connections are cut. */
  timeoutMs: number;
  /** Run in order once HTTP has drained: close pools, stop the embedded database. */
  closers: ShutdownStep[];
  /** Run first, before HTTP drains: long-lived connections (WebSockets) that would keep it open. */
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
 * Graceful shutdown. The first signal stops accepting connections, lets
 * running requests finish (idle keep-alive connections are closed, busy ones
 * get `Connection: close`), then closes the pools and exits 0. If requests
 * outlast the timeout, their connections are cut. Every step is bounded
 * (stepTimeoutMs), so a dead database cannot hold the shutdown up. A second
 * signal exits at once with code 1. `exitCode` (default 0) is the code of
 * a clean shutdown: 1 when the appliance stops because it cannot go on.
 */
export function createShutdown(options: ShutdownOptions): { shutdown: (reason: string, exitCode?: number) => Promise<void>; isShuttingDown: () => boolean } {
  const { server, logger, timeoutMs, closers, exit } = options;
  const stepTimeoutMs = options.stepTimeoutMs ?? 5000;
  let shuttingDown = false;

  /** Runs a step within its time; false when it failed or timed out (it may still run on, unawaited). */
  async function runStep(step: ShutdownStep): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const limit = step.timeoutMs ?? stepTimeoutMs;
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

    for (const step of options.beforeDrain ?? []) await runStep(step);
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
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
    for (const closer of closers) if (!(await runStep(closer))) failed = true;
    logger.info({ exitCode: failed ? 1 : exitCode }, 'shutdown complete');
    exit(failed ? 1 : exitCode);
  }

  return { shutdown, isShuttingDown: () => shuttingDown };
}
