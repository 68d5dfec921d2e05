import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { CallHub } from './calls/hub';
import type { Config } from '../config';
import type { Logger } from './core/logger';
import type { OpsProbe } from './ops/probe';

/** What the app factory needs from the outside world; tests build their own. */
export interface AppContext {
  config: Config;
  db: Knex;
  logger: Logger;
  /** Signs session cookies: from the config, or generated under the data directory. */
  sessionSecret: string;
  /** The express-session middleware, shared with the signalling server; built by the app when absent. */
  session?: RequestHandler;
  /** Calls' signalling and media; absent in tests that need no media. */
  hub?: CallHub;
  /** Live figures for /metrics and /admin/status (media workers, job queues, TLS); absent parts show as unknown. */
  ops?: OpsProbe;
}
