import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { launchBrowser } from './browser';
import { buildApp } from './context';
import type { TestDatabase } from './database';

/** The app of a browser test: its address on 127.0.0.1, and a headless Chromium. Both are set in the suite's `before`. */
export interface AppInBrowser {
  readonly base: string;
  readonly browser: Browser;
}

/**
 * For a browser test's suite (mocha hooks): the app on the suite's test
 * database, listening on 127.0.0.1 on a free port, and one Chromium;
 * both closed after the suite.
 */
export function useAppInBrowser(db: { readonly current: TestDatabase }): AppInBrowser {
  let server: http.Server | undefined;
  const state: { base: string; browser: Browser | undefined } = { base: '', browser: undefined };
  before(async function () {
    this.timeout(120_000);
    server = http.createServer(buildApp(db.current));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    state.browser = await launchBrowser();
  });
  after(async () => {
    await state.browser?.close().catch(() => undefined);
    if (server) await new Promise<void>((resolve) => { server!.closeAllConnections(); server!.close(() => resolve()); });
  });
  return {
    get base() {
      return state.base;
    },
    get browser() {
      if (!state.browser) throw new Error('the browser is not started (use it in a test or a later hook)');
      return state.browser;
    },
  };
}
