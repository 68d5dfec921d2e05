import type { Server } from 'node:http';
import { ConfigError } from '../../config';
import { TlsConfigError } from '../net/tls';
import { createShutdown, StopRegistry, type ShutdownStep } from '../lifecycle/shutdown';
import type { Logger } from '../core/logger';

/** Exit code for an invalid configuration (EX_CONFIG from sysexits.h). */
export const EXIT_CONFIG = 78;

/** A phase still running after this long is logged (again at each multiple): a start that hangs says where. */
export const SLOW_PHASE_WARN_MS = 30_000;

/** What the boot needs of the process (tests pass their own). */
export type BootProcess = Pick<NodeJS.EventEmitter, 'on' | 'once' | 'off'> & {
  exit(code: number): void;
  stderr: { write(text: string): unknown };
};

/**
 * Start-up in named phases (TryGhost Ghost's `core/boot.js`): `phase(name,
 * run)` runs one part; each part registers how it stops with `onStop` where
 * it starts, so stopping mirrors starting (app/lifecycle/shutdown.ts). A
 * phase that throws ends the start-up: the failed phase is logged, what had
 * started stops in reverse order, and the process exits 78 for a bad
 * configuration, else 1. A phase still running after `slowPhaseWarnMs`
 * is logged as a warning, again at each multiple, so a start that waits on
 * something (a database lock, a port) names the phase. Once every phase
 * ran, `running()` puts the graceful shutdown on SIGTERM and SIGINT.
 */
export class Boot {
  private readonly stops = new StopRegistry();
  private logger: Logger | undefined;
  private phaseName = 'start';
  private shutdown: ((reason: string, exitCode?: number) => Promise<void>) | undefined;
  private failing = false;

  constructor(
    private readonly proc: BootProcess = process,
    private readonly slowPhaseWarnMs = SLOW_PHASE_WARN_MS,
  ) {}

  /** Runs one named phase; when it throws, the start-up ends here (this never returns). */
  async phase<T>(name: string, run: () => Promise<T> | T): Promise<T> {
    // An interrupted or failed start-up starts nothing more.
    if (this.failing) return new Promise<never>(() => undefined);
    this.phaseName = name;
    const started = Date.now();
    const slow = setInterval(() => {
      this.logger?.warn({ phase: name, ms: Date.now() - started }, `start phase ${name} still running after ${Math.round((Date.now() - started) / 1000)} s`);
    }, this.slowPhaseWarnMs);
    slow.unref();
    try {
      const result = await run();
      this.logger?.debug({ phase: name, ms: Date.now() - started }, 'start phase done');
      return result;
    } catch (err) {
      return this.fail(err);
    } finally {
      clearInterval(slow);
    }
  }

  /**
   * The logger from here on, and the one listener per signal for the rest
   * of the process: before the start-up is over a signal ends it (exit 1),
   * once it runs it is the graceful shutdown, and a second one exits at
   * once (1). The listeners are never swapped: when a signal's last
   * listener goes, Node closes its handle and a signal caught but not yet
   * handled is lost (and the default action is back for a moment).
   */
  useLogger(logger: Logger): void {
    this.logger = logger;
    this.proc.on('SIGTERM', () => this.onSignal('SIGTERM'));
    this.proc.on('SIGINT', () => this.onSignal('SIGINT'));
  }

  private onSignal(signal: 'SIGTERM' | 'SIGINT'): void {
    if (this.shutdown) {
      void this.shutdown(signal);
    } else if (this.failing) {
      this.logger?.warn({ reason: signal }, 'second signal during the start-up: exiting now');
      this.proc.exit(1);
    } else {
      void this.fail(new Error('interrupted during start-up'));
    }
  }

  /** Registers how a part that has just started stops (run in reverse order of registration). */
  onStop(name: string, close: () => Promise<void>, timeoutMs?: number): void {
    const step: ShutdownStep = { name, close };
    if (timeoutMs !== undefined) step.timeoutMs = timeoutMs;
    this.stops.add(step);
  }

  /** The HTTP server listens: parts registered after it stop before running requests drain, earlier ones after. */
  serving(server: Server): void {
    this.stops.serving(server);
  }

  /** Stops the appliance: the graceful shutdown once it runs, else as a failed start-up. */
  stop(reason: string, exitCode = 1): void {
    if (this.shutdown) void this.shutdown(reason, exitCode);
    else void this.fail(new Error(reason));
  }

  /** Ends the start-up, or a running appliance that cannot go on before its shutdown is in place. */
  fail(err: unknown): Promise<never> {
    if (!this.failing) {
      this.failing = true;
      void this.exitAfter(err);
    }
    return new Promise<never>(() => undefined);
  }

  /**
   * Every phase ran: SIGTERM and SIGINT now shut down gracefully (the
   * registered stops in reverse order, `timeoutMs` for running requests).
   * Under handlers that must not throw (signalling, timers, jobs): a
   * rejected promise no one awaited is logged; after an uncaught exception
   * the process state is unknown, so it shuts down (exit 1) and the
   * supervisor starts it again. False, and nothing done, when the start-up
   * is already being ended.
   */
  running(timeoutMs: number): boolean {
    const logger = this.requireLogger();
    const { server, beforeDrain, closers } = this.stops.plan();
    if (!server) throw new Error('no HTTP server was registered (Boot.serving)');
    // A start-up already being ended (a signal, a failed part) is not turned into a running appliance.
    if (this.failing) return false;
    const { shutdown } = createShutdown({ server, logger, timeoutMs, beforeDrain, closers, exit: (code) => this.proc.exit(code) });
    // From here on the signals' listeners (useLogger) call the graceful shutdown.
    this.shutdown = shutdown;
    this.proc.on('unhandledRejection', (reason: unknown) => logger.error({ err: reason }, 'unhandled promise rejection'));
    this.proc.on('uncaughtException', (err: Error) => {
      logger.fatal({ err }, 'uncaught exception: shutting down');
      void shutdown('uncaught exception', 1);
    });
    return true;
  }

  private async exitAfter(err: unknown): Promise<void> {
    const logger = this.logger;
    if (err instanceof ConfigError) {
      // Before the logger exists: the message names every bad key.
      this.proc.stderr.write(`${err.message}\n`);
      return this.proc.exit(EXIT_CONFIG);
    }
    if (err instanceof TlsConfigError) {
      logger?.fatal({ phase: this.phaseName }, err.message);
      this.proc.stderr.write(`Invalid configuration: ${err.message}\n`);
      if (logger) await this.stops.stopAll(logger).catch(() => false);
      return this.proc.exit(EXIT_CONFIG);
    }
    if (!logger) {
      this.proc.stderr.write(`VClerk could not start: ${err instanceof Error ? err.stack : String(err)}\n`);
      return this.proc.exit(1);
    }
    logger.fatal({ err, phase: this.phaseName }, `VClerk could not start (phase: ${this.phaseName})`);
    await this.stops.stopAll(logger).catch(() => false);
    this.proc.exit(1);
  }

  private requireLogger(): Logger {
    if (!this.logger) throw new Error('no logger yet (Boot.useLogger)');
    return this.logger;
  }
}
