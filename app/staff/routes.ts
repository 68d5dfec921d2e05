import type { RequestHandler, Request } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf, roles } from '../access/caller';
import { LoginThrottle } from '../sign-in/throttle';
import { parseBody } from '../http/forms';
import { flash } from '../http/flash';
import { publicBase } from '../http/links';
import { formAction, showPage, type FormPage } from '../http/form-page';
import { secretResponse } from '../http/security';
import { UserService, inviteSchema, roleSchema } from './service';

export interface AdminDeps {
  knex: Knex;
  config: Config;
  throttle: LoginThrottle;
}

function service(deps: AdminDeps, req: Request): UserService {
  return new UserService(deps.knex, callerOf(req), {
    inviteLinkHours: deps.config.inviteLinkHours,
    passwordResetLinkHours: deps.config.passwordResetLinkHours,
    throttle: deps.throttle,
  });
}

function id(req: Request): string {
  return String(req.params.id);
}

/** /admin/users: the organisation's staff and the invitation form. */
function usersPage(deps: AdminDeps): FormPage {
  return {
    view: 'admin/users',
    load: async (req) => ({ title: req.t('admin.users_title'), users: await service(deps, req).list(), roles }),
  };
}

/** /admin/users/:id: one user and what an admin may do to them. */
function userPage(deps: AdminDeps): FormPage {
  return {
    view: 'admin/user',
    async load(req) {
      const subject = await service(deps, req).get(id(req));
      return { title: subject.name, subject, roles };
    },
  };
}

/** GET /admin/users */
export function listUsers(deps: AdminDeps): RequestHandler {
  return showPage(usersPage(deps));
}

/** POST /admin/users: invite a staff user; shows the one-time link. */
export function inviteUser(deps: AdminDeps): RequestHandler {
  return formAction({ page: usersPage(deps), fields: { name: 'text', email: 'text', role: 'text' } }, async (req, res) => {
    const input = parseBody(inviteSchema, req.body);
    const { user, token, expiresAt } = await service(deps, req).invite(input);
    secretResponse(res);
    res.status(201).render('admin/link-issued', {
      title: req.t('admin.invite_created_title'),
      subject: user,
      purpose: 'invite',
      link: `${publicBase(req, deps.config)}/invite/${token}`,
      expiresAt,
    });
  });
}

/** GET /admin/users/:id */
export function showUser(deps: AdminDeps): RequestHandler {
  return showPage(userPage(deps));
}

/** POST /admin/users/:id/role */
export function changeRole(deps: AdminDeps): RequestHandler {
  return formAction({ page: userPage(deps), fields: { role: 'text' } }, async (req, res) => {
    const { role } = parseBody(roleSchema, req.body);
    await service(deps, req).changeRole(id(req), role);
    flash(req, 'success', 'admin.role_changed');
    res.redirect(303, `/admin/users/${id(req)}`);
  });
}

/** POST /admin/users/:id/deactivate */
export function deactivateUser(deps: AdminDeps): RequestHandler {
  return async (req, res) => {
    await service(deps, req).deactivate(id(req));
    flash(req, 'success', 'admin.user_deactivated');
    res.redirect(303, `/admin/users/${id(req)}`);
  };
}

/** POST /admin/users/:id/reactivate */
export function reactivateUser(deps: AdminDeps): RequestHandler {
  return async (req, res) => {
    await service(deps, req).reactivate(id(req));
    flash(req, 'success', 'admin.user_reactivated');
    res.redirect(303, `/admin/users/${id(req)}`);
  };
}

/** POST /admin/users/:id/reset-password: a one-time link to choose a new password. */
export function resetPassword(deps: AdminDeps): RequestHandler {
  return async (req, res) => {
    const users = service(deps, req);
    const subject = await users.get(id(req));
    const { token, expiresAt, purpose } = await users.issuePasswordReset(subject.id);
    secretResponse(res);
    res.status(201).render('admin/link-issued', {
      title: req.t('admin.reset_created_title'),
      subject,
      purpose,
      link: `${publicBase(req, deps.config)}/${purpose === 'invite' ? 'invite' : 'password-reset'}/${token}`,
      expiresAt,
    });
  };
}

/** POST /admin/users/:id/unlock: ends a sign-in lockout early. */
export function unlockUser(deps: AdminDeps): RequestHandler {
  return async (req, res) => {
    await service(deps, req).unlock(id(req));
    flash(req, 'success', 'admin.user_unlocked');
    res.redirect(303, `/admin/users/${id(req)}`);
  };
}
