import type { Request } from 'express';
import type { Actor } from '../audit/actions';
import { UnauthorizedError } from '../core/errors';

export const roles = ['admin', 'clerk', 'compliance'] as const;
export type Role = (typeof roles)[number];

/** The signed-in staff user, as loaded for each request. */
export interface SessionUser {
  id: string;
  organisationId: string;
  organisationSlug: string;
  organisationName: string;
  organisationBrandVersion: number;
  name: string;
  email: string;
  role: Role;
  language: 'en' | 'de' | null;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface User extends SessionUser {}
  }
}

/** Who is asking, from where: what services need to scope queries and audit. */
export interface Caller {
  user: SessionUser;
  ip: string | null;
  userAgent: string | null;
  sessionId: string;
}

export function requestMeta(req: Request): { ip: string | null; userAgent: string | null } {
  return { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
}

export function callerOf(req: Request): Caller {
  if (!req.user) throw new UnauthorizedError();
  return { user: req.user, ...requestMeta(req), sessionId: req.sessionID };
}

export function actorOf(user: SessionUser): Actor {
  return { type: 'user', id: user.id, label: user.email, organisationId: user.organisationId };
}
