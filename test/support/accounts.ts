import crypto from 'node:crypto';
import type { Express } from 'express';
import type { Knex } from 'knex';
import type { Caller } from '../../app/access/caller';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { hashPassword } from '../../app/security/passwords';
import type { Role } from '../../app/access/caller';

export const PASSWORD = 'correct horse battery staple';
let passwordHash: Promise<string> | undefined;

export interface SeededOrganisation {
  id: string;
  slug: string;
  name: string;
}

export interface SeededUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  organisationId: string;
}

export async function seedOrganisation(knex: Knex, name = `Org ${crypto.randomUUID().slice(0, 8)}`): Promise<SeededOrganisation> {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const [row] = await knex('organisations').insert({ name, slug }).returning(['id', 'slug', 'name']);
  return row!;
}

/** An active user with the shared test password (hashed once per run). */
export async function seedUser(knex: Knex, organisation: { id: string }, role: Role, overrides: Partial<{ email: string; name: string; status: 'invited' | 'active' | 'deactivated' }> = {}): Promise<SeededUser> {
  passwordHash ??= hashPassword(PASSWORD);
  const email = overrides.email ?? `${role}-${crypto.randomUUID().slice(0, 8)}@example.org`;
  const name = overrides.name ?? `${role[0]!.toUpperCase()}${role.slice(1)} ${email.slice(0, 4)}`;
  const [row] = await knex('users')
    .insert({ organisation_id: organisation.id, email, name, role, status: overrides.status ?? 'active', password_hash: await passwordHash })
    .returning(['id', 'email', 'name', 'role', 'organisation_id']);
  return { id: row!.id, email: row!.email, name: row!.name, role: row!.role, organisationId: row!.organisation_id };
}

export function csrfFrom(html: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!token) throw new Error('no CSRF token in the page');
  return token;
}

export interface Browser {
  agent: TestAgent;
  csrf: string;
}

/** An agent with a session and the CSRF token of its sign-in form. */
export async function anonymous(app: Express): Promise<Browser> {
  const agent = request.agent(app);
  const page = await agent.get('/login').expect(200);
  return { agent, csrf: csrfFrom(page.text) };
}

/** Signs in through the real form; returns the agent and its new CSRF token. */
export async function signIn(app: Express, user: { email: string }, password = PASSWORD): Promise<Browser> {
  const { agent, csrf } = await anonymous(app);
  await agent.post('/login').type('form').send({ _csrf: csrf, email: user.email, password }).expect(303).expect('Location', '/dashboard');
  const page = await agent.get('/account').expect(200);
  return { agent, csrf: csrfFrom(page.text) };
}

/** A service's caller for a seeded user of a seeded organisation (from 127.0.0.1), for tests that call services directly. */
export function callerFor(user: SeededUser, org: SeededOrganisation): Caller {
  return { user: { id: user.id, organisationId: org.id, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, name: user.name, email: user.email, role: user.role, language: null }, ip: '127.0.0.1', userAgent: 'test', sessionId: 'test' };
}
