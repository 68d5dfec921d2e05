import type { RequestHandler } from 'express';
import session from 'express-session';
import type { Knex } from 'knex';
import { PgSessionStore } from './session-store';
import './session-data';

export const SESSION_COOKIE = 'vclerk_sid';

/**
 * Server-side sessions in PostgreSQL. The cookie is HttpOnly, SameSite=Lax,
 * Secure whenever the request came over HTTPS (directly or through a trusted
 * proxy). Sessions are created only when something is stored in them; each
 * request of a live session pushes its idle expiry forward (rolling).
 */
export function sessionMiddleware(knex: Knex, options: { secret: string; idleMinutes: number }): RequestHandler {
  const idleMs = options.idleMinutes * 60_000;
  return session({
    name: SESSION_COOKIE,
    secret: options.secret,
    store: new PgSessionStore(knex, idleMs),
    resave: false,
    saveUninitialized: false,
    rolling: true,
    proxy: undefined,
    cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto', maxAge: idleMs, path: '/' },
  });
}

/** Saves the session now (before a redirect), as a promise. */
export function saveSession(req: Express.Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
}

export function regenerateSession(req: Express.Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
}

export function destroySession(req: Express.Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.destroy((err) => (err ? reject(err) : resolve())));
}
