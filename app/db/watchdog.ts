import type { Knex } from 'knex';
import type { Logger } from '../core/logger';

/** What the watchdog needs of the embedded server (app/db/embedded.ts). */
export interface RestartableServer {
  alive(): boolean;
  restart(): Promise<void>;
}

/** The database as the watchdog last saw it; /healthz reports it. */
export interface DatabaseHealth {
  reachable: boolean;
  /** Epoch ms since when the database has been unreachable; null while it answers. */
  downSince: number | null;
  /** False once it has been unreachable for longer than the unhealthy threshold. */
  healthy: boolean;
  /** Times the embedded server was started again since the appliance started. */
  restarts: number;
}

export interface DatabaseWatchdogOptions {
  knex: Knex;
  logger: Logger;
  /** How often the database is asked (ms). */
  intervalMs: number;
  /** How long one probe may take before it counts as unreachable (ms). */
  probeTimeoutMs?: number;
  /** Unreachable this long: /healthz answers 503 (ms). */
  unhealthyAfterMs: number;
  /** Unreachable this long: `onGiveUp` (the appliance exits so its supervisor restarts it); 0 never (ms). */
  exitAfterMs: number;
  /** The embedded server: started again when its process died. */
  embedded?: RestartableServer;
  /** Restarts of the embedded server tried per outage before only the exit threshold is left. */
  maxRestarts?: number;
  onGiveUp: (reason: string) => void;
  now?: () => number;
}

/** `SELECT 1`, bounded: false when it fails or takes longer than `timeoutMs`. */
export async function probeDatabase(knex: Knex, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([knex.raw('SELECT 1').then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Watches the database while the appliance runs. The pool needs no help to
 * reconnect (knex drops connections that reported an error or ended and
 * opens new ones), but nothing else brought a dead database back: the
 * embedded PostgreSQL's process stayed dead, and nobody noticed an external
 * one that never came back. So every `intervalMs`:
 *
 * - the database is asked `SELECT 1`; the outcome feeds /healthz, which
 *   turns unhealthy after `unhealthyAfterMs` unreachable;
 * - the embedded server, when its process died, is started again (up to
 *   `maxRestarts` times per outage, with a growing pause between tries);
 * - after `exitAfterMs` unreachable, `onGiveUp` runs: the appliance shuts
 *   down with a non-zero code so that its supervisor (Docker's restart
 *   policy, systemd) starts it afresh.
 */
export class DatabaseWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private downSince: number | null = null;
  private attempts = 0;
  private nextRestartAt = 0;
  private restarts = 0;
  private gaveUp = false;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly options: DatabaseWatchdogOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'database-watchdog' });
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops probing; waits for a probe or restart under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.gaveUp = true;
    await this.running;
  }

  health(): DatabaseHealth {
    const down = this.downSince === null ? 0 : this.now() - this.downSince;
    return { reachable: this.downSince === null, downSince: this.downSince, healthy: down < this.options.unhealthyAfterMs, restarts: this.restarts };
  }

  /** One round: probe, restart the embedded server if it died, give up after the threshold. Overlapping calls share the round. */
  check(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    const ok = await probeDatabase(this.options.knex, this.options.probeTimeoutMs ?? Math.max(1000, Math.min(this.options.intervalMs, 5000)));
    if (ok) {
      if (this.downSince !== null) this.log.warn({ unreachableMs: this.now() - this.downSince }, 'the database answers again');
      this.downSince = null;
      this.attempts = 0;
      this.nextRestartAt = 0;
      return;
    }
    if (this.downSince === null) {
      this.downSince = this.now();
      this.log.error({ embedded: this.options.embedded !== undefined }, 'the database does not answer');
    }
    if (await this.restartEmbedded()) return this.round();
    const down = this.now() - this.downSince;
    if (this.options.exitAfterMs > 0 && down >= this.options.exitAfterMs && !this.gaveUp) {
      this.gaveUp = true;
      this.log.fatal({ unreachableMs: down }, 'the database has been unreachable too long: exiting so that the supervisor restarts VClerk');
      this.options.onGiveUp('database unreachable');
    }
  }

  /** Starts the embedded server again if its process died; true when it did. */
  private async restartEmbedded(): Promise<boolean> {
    const server = this.options.embedded;
    if (!server || server.alive() || this.gaveUp) return false;
    const max = this.options.maxRestarts ?? 5;
    if (this.attempts >= max || this.now() < this.nextRestartAt) return false;
    this.attempts++;
    this.log.warn({ attempt: this.attempts, of: max }, 'the embedded PostgreSQL has stopped: starting it again');
    try {
      await server.restart();
      this.restarts++;
      return true;
    } catch (err) {
      this.nextRestartAt = this.now() + Math.min(30_000, 1000 * 2 ** this.attempts);
      this.log.error({ err, attempt: this.attempts }, 'the embedded PostgreSQL did not start again');
      return false;
    }
  }
}
