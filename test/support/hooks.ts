import { startTestServer, stopTestServer } from './database';

/** Mocha root hooks: one PostgreSQL for the whole run. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120000);
    await startTestServer();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60000);
    await stopTestServer();
  },
};
