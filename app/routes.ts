import type { RequestHandler } from 'express';
import type { AppContext } from './context';
import { liveness, readiness } from './health/routes';
import { home } from './home/routes';
import { chooseLanguage } from './language/routes';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One line of the route table: method, path, the guards and the handler. */
export interface Route {
  method: Method;
  path: string;
  handlers: RequestHandler[];
}

/**
 * The explicit route table: every URL the appliance answers, in one place.
 * Feature modules own their handlers; this file only says where they sit.
 */
export function routes(ctx: AppContext): Route[] {
  return [
    { method: 'get', path: '/healthz', handlers: [liveness] },
    { method: 'get', path: '/readyz', handlers: [readiness(ctx)] },
    { method: 'get', path: '/', handlers: [home] },
    { method: 'get', path: '/language', handlers: [chooseLanguage] },
  ];
}
