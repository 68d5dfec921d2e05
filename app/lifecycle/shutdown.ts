import type { Server } from 'node:http';
import type { Logger } from '../logger';

export interface ShutdownOptions {
  server: Server;
  logger: Logger;
  /** How long running requests may take before connections are cut. */
  timeoutMs: number;
  /** Run in order once HTTP has drained: close pools, stop the embedded database. */
  closers: { name: string; close: () => Promise<void> }[];
  /** Run first, before HTTP drains: long-lived connections (WebSockets) that would keep it open. */
  beforeDrain?: { name: string; close: () => Promise<void> }[];
  exit: (code: number) => void;
}

/**
 * Graceful shutdown. The first signal stops accepting connections, lets
 * running requests finish (idle keep-alive connections are closed, busy ones
 * get `Connection: close`), then closes the pools and exits 0. If requests
 * outlast the timeout, their connections are cut. A second signal exits
 * at once with code 1.
 */
export function createShutdown(options: ShutdownOptions): { shutdown: (reason: string) => Promise<void>; isShuttingDown: () => boolean } {
  const { server, logger, timeoutMs, closers, exit } = options;
  let shuttingDown = false;

  server.on('request', (_req, res) => {
    if (shuttingDown && !res.headersSent) res.setHeader('Connection', 'close');
  });

  async function shutdown(reason: string): Promise<void> {
    if (shuttingDown) {
      logger.warn({ reason }, 'second shutdown signal: exiting now');
      exit(1);
      return;
    }
    shuttingDown = true;
    logger.info({ reason, timeoutMs }, 'shutting down: no new connections, finishing running requests');

    for (const step of options.beforeDrain ?? []) {
      await step.close().catch((err) => logger.error({ err, step: step.name }, 'error while shutting down'));
    }
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
    for (const closer of closers) {
      try {
        await closer.close();
      } catch (err) {
        failed = true;
        logger.error({ err, closer: closer.name }, 'error while shutting down');
      }
    }
    logger.info('shutdown complete');
    exit(failed ? 1 : 0);
  }

  return { shutdown, isShuttingDown: () => shuttingDown };
}
