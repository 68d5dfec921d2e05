import type { Request } from 'express';
import { csrfToken } from './csrf';
import { regenerateSession, saveSession } from './session';

/**
 * Starts a signed-in session: a new session id (no fixation), the user,
 * the time of sign-in, and a fresh CSRF token.
 */
export async function startSession(req: Request, userId: string): Promise<void> {
  await regenerateSession(req);
  req.session.userId = userId;
  req.session.authenticatedAt = Date.now();
  csrfToken(req);
  await saveSession(req);
}
