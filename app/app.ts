import compression from 'compression';
import express, { type Express } from 'express';
import type { AppContext } from './context';
import { errorHandler } from './http/error-handler';
import { languageNegotiation } from './http/i18n';
import { notFound } from './http/not-found';
import { requestContext } from './http/request-context';
import { securityHeaders } from './http/security';
import { staticAssets } from './http/static';
import { configureViews } from './http/views';
import { routes as defaultRoutes, type Route } from './routes';

export interface AppOptions {
  /** The route table; tests may pass their own. */
  routes?: (ctx: AppContext) => Route[];
}

/**
 * The app factory: builds the Express application from its context without
 * listening, so tests drive it with supertest and only the entry point binds
 * a port.
 */
export function createApp(ctx: AppContext, options: AppOptions = {}): Express {
  const { config, logger } = ctx;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxyValue(config.trustProxy));
  app.set('query parser', 'simple');
  configureViews(app, { cache: process.env.NODE_ENV === 'production' });

  app.use(requestContext(logger, config.logRequests));
  app.use(securityHeaders());
  app.use(compression());
  app.use(languageNegotiation(config.defaultLanguage));
  app.use('/static', staticAssets());
  app.use(express.urlencoded({ extended: false, limit: '100kb', parameterLimit: 200 }));
  app.use(express.json({ limit: '100kb' }));

  for (const route of (options.routes ?? defaultRoutes)(ctx)) {
    app[route.method](route.path, ...route.handlers);
  }

  app.use(notFound());
  app.use(errorHandler());
  return app;
}

function trustProxyValue(setting: string): boolean | number | string {
  if (setting === '') return false;
  if (/^\d+$/.test(setting)) return Number(setting);
  return setting;
}
