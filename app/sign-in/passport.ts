import type { Request } from 'express';
import { Passport } from 'passport';

export type PassportInstance = InstanceType<typeof Passport>;
import { Strategy as LocalStrategy } from 'passport-local';
import { requestMeta } from '../access/caller';
import type { LoginOutcome, LoginService } from './login-service';

/**
 * passport with the local strategy (e-mail and password). Each app gets its
 * own Passport instance; sessions are handled by VClerk itself (regenerated
 * at sign-in), so passport runs with `session: false`.
 */
export function createPassport(login: LoginService): PassportInstance {
  const passport = new Passport();
  passport.use(
    new LocalStrategy({ usernameField: 'email', passwordField: 'password', passReqToCallback: true }, (req, email, password, done) => {
      login
        .attempt({ email, password, ...requestMeta(req) })
        .then((outcome) => (outcome.ok ? done(null, outcome as unknown as Express.User) : done(null, false, { message: outcome.reason, ...outcome })))
        .catch(done);
    }),
  );
  return passport;
}

/** Runs the local strategy for this request; resolves with the outcome. */
export function authenticate(passport: PassportInstance, req: Request): Promise<LoginOutcome | { ok: false; reason: 'missing' }> {
  return new Promise((resolve, reject) => {
    passport.authenticate('local', { session: false }, (err: unknown, user: unknown, info: unknown) => {
      if (err) return reject(err);
      if (user) return resolve(user as LoginOutcome);
      const outcome = info as LoginOutcome | { message?: string } | undefined;
      resolve(outcome && 'reason' in outcome ? outcome : { ok: false, reason: 'missing' });
    })(req, undefined as never, reject);
  });
}
