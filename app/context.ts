import type { Knex } from 'knex';
import type { Config } from '../config';
import type { Logger } from './logger';

/** What the app factory needs from the outside world; tests build their own. */
export interface AppContext {
  config: Config;
  db: Knex;
  logger: Logger;
  /** Signs session cookies: from the config, or generated under the data directory. */
  sessionSecret: string;
}
