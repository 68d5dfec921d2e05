import type { Knex } from 'knex';
import type { Logger } from '../core/logger';
import { MISSED_HEARTBEATS } from './state';
import { livingNodeUrls } from './store';

/**
 * The living nodes' URLs by name, read again every heartbeat, for
 * forwarding a participant's signalling to the node that holds the call
 * (signal-forward.ts). A node that is gone is dropped at the next read; one
 * that just started is known from then on. A failed read keeps the last.
 */
export class NodeDirectory {
  private urls = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly knex: Knex,
    private readonly logger: Logger,
  ) {}

  urlOf(name: string): string | undefined {
    return this.urls.get(name);
  }

  async refresh(): Promise<void> {
    try {
      const rows = await livingNodeUrls(this.knex, MISSED_HEARTBEATS);
      this.urls = new Map(rows.map((r) => [r.name, r.url]));
    } catch (err) {
      this.logger.warn({ err }, 'could not read the node directory');
    }
  }

  /** Reads now, then every `seconds`. */
  async start(seconds: number): Promise<void> {
    await this.refresh();
    const loop = () => {
      this.timer = setTimeout(() => void this.refresh().finally(loop), seconds * 1000);
      this.timer.unref();
    };
    loop();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
