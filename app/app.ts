import express, { type Express } from 'express';
import { loadCurrentUser } from './access/current-user';
import { resolveSessionUser } from './staff/session-user';
import { csrfProtection } from './access/csrf';
import { guard } from './access/guards';
import { LoginService } from './sign-in/login-service';
import { createPassport } from './sign-in/passport';
import { sessionMiddleware } from './access/session';
import { LoginThrottle } from './sign-in/throttle';
import { refusalsFor } from './audit/refusals';
import { limiterFor } from './http/limiter';
import type { AppContext } from './context';
import { errorHandler } from './http/error-handler';
import { flashMessages } from './http/flash';
import { inputGuard } from './http/input-guard';
import { navigation } from './http/navigation';
import { languageNegotiation } from './http/i18n';
import { staffTimeZone } from './organisation/time-zone';
import { notFound } from './http/not-found';
import { requestContext } from './http/request-context';
import { responseCompression, securityHeaders } from './http/security';
import { staticAssets } from './http/static';
import { configureViews } from './http/views';
import { routes as defaultRoutes, type Route, type RouteDeps } from './routes';

export interface AppOptions {
  /** The route table; tests may pass their own. */
  routes?: (deps: RouteDeps) => Route[];
}

/**
 * The app factory: builds the Express application from its context without
 * listening, so tests drive it with supertest and only the entry point binds
 * a port.
 */
export function createApp(ctx: AppContext, options: AppOptions = {}): Express {
  const { config, logger, db } = ctx;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxyValue(config.trustProxy));
  app.set('query parser', 'simple');
  configureViews(app, { cache: process.env.NODE_ENV === 'production' });

  const throttle = new LoginThrottle(db, {
    maxPerAccount: config.loginMaxFailuresPerAccount,
    maxPerIp: config.loginMaxFailuresPerIp,
    lockoutMinutes: config.loginLockoutMinutes,
  });
  const login = new LoginService(db, throttle);
  // Refusals of anonymous requests: limited per client IP before any database work, audited in aggregate.
  limiterFor(db).configure({ burst: config.refusalBurst, perMinute: config.refusalPerMinute });
  refusalsFor(db).configure({}, logger);
  const deps: RouteDeps = { ...ctx, throttle, login, passport: createPassport(login) };

  app.use(requestContext(logger, config.logRequests));
  app.use(securityHeaders());
  app.use(responseCompression());
  app.use('/static', staticAssets());
  app.use(ctx.session ?? sessionMiddleware(db, { secret: ctx.sessionSecret, idleMinutes: config.sessionIdleMinutes }));
  app.use(loadCurrentUser((data) => resolveSessionUser(db, data, config.sessionAbsoluteHours)));
  // Several nodes: pages name the node that served them, and the call page's signalling names it from the start (app/nodes/signal-forward.ts).
  const nodeName = ctx.ops?.node?.name;
  if (nodeName) {
    app.use((_req, res, next) => {
      res.locals.nodeName = nodeName;
      next();
    });
  }
  app.use(languageNegotiation(config.defaultLanguage));
  app.use(staffTimeZone(db));
  app.use(flashMessages());
  app.use(express.urlencoded({ extended: false, limit: '100kb', parameterLimit: 200 }));
  app.use(express.json({ limit: '100kb' }));
  app.use(inputGuard());
  app.use(csrfProtection(db));

  const table = (options.routes ?? defaultRoutes)(deps);
  // Menus offer only what the user may open: from the table's access and `opens` checks.
  app.use(navigation(table));
  for (const route of table) {
    const check = guard(route.access, db);
    app[route.method](route.path, ...(check ? [check] : []), ...route.handlers);
  }

  app.use(notFound());
  app.use(errorHandler(config.defaultLanguage));
  return app;
}

function trustProxyValue(setting: string): boolean | number | string {
  if (setting === '') return false;
  if (/^\d+$/.test(setting)) return Number(setting);
  return setting;
}
