import type { Knex } from 'knex';
import type { Config } from '../../config';
import { AuditService } from '../audit/service';
import type { Actor } from '../audit/actions';
import { accountKey, LoginThrottle } from '../sign-in/throttle';
import { OneTimeTokens } from '../access/one-time-tokens';
import { OrganisationStore } from '../organisation/service';
import { baseUrl } from '../setup/link';
import { SetupService } from '../setup/service';
import { emailTaken, insertUserId, userByEmail } from './store';

/** The server shell's own actor in the audit trail. */
const SHELL: Actor = { type: 'system', label: 'vclerk CLI' };

export class CliError extends Error {}

/**
 * What an IT admin can do from the server shell when nobody can sign in:
 * create an admin (who gets a one-time link to choose a password), issue a
 * password-reset link (which also lifts a sign-in lockout), or print a new
 * first-run setup link. Passwords never pass through the command line.
 */
export class AdminCli {
  constructor(private readonly knex: Knex, private readonly config: Config) {}

  async createAdmin(input: { email: string; name: string; org?: string; orgName?: string }): Promise<string> {
    const email = input.email.trim().toLowerCase();
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new CliError(`not an e-mail address: ${input.email}`);
    if (!input.name.trim()) throw new CliError('--name is required');
    return this.knex.transaction(async (trx) => {
      const organisations = new OrganisationStore(trx);
      let organisation = input.org ? await organisations.bySlug(input.org) : undefined;
      if (input.org && !organisation) throw new CliError(`no organisation with the ID "${input.org}"`);
      if (!organisation) {
        if (!input.orgName) {
          const count = await organisations.count();
          throw new CliError(count === 0 ? 'no organisation exists yet: give --org-name to create one' : 'give --org <organisation ID> (or --org-name to create a new organisation)');
        }
        organisation = await organisations.create({ name: input.orgName }, SHELL, trx);
      }
      if (await emailTaken(trx, email)) throw new CliError(`a user with the e-mail ${email} already exists: use reset-password`);
      const userId = await insertUserId(trx, { organisation_id: organisation.id, name: input.name.trim(), email, role: 'admin', status: 'invited' });
      const { token } = await new OneTimeTokens(trx).issue('invite', { organisationId: organisation.id, userId }, this.config.inviteLinkHours, trx);
      await new AuditService(this.knex).record({ organisationId: organisation.id, actor: SHELL, action: 'user.invited', target: { type: 'user', id: userId }, details: { email, role: 'admin', via: 'cli' } }, trx);
      return `${baseUrl(this.config)}/invite/${token}`;
    });
  }

  async resetPassword(emailInput: string): Promise<string> {
    const email = emailInput.trim().toLowerCase();
    const link = await this.knex.transaction(async (trx) => {
      const user = await userByEmail(trx, email);
      if (!user) throw new CliError(`no user with the e-mail ${email}`);
      if (user.status === 'deactivated') throw new CliError(`${email} is deactivated; an admin of the organisation can reactivate the account`);
      const purpose = user.status === 'invited' ? 'invite' : 'password_reset';
      const hours = purpose === 'invite' ? this.config.inviteLinkHours : this.config.passwordResetLinkHours;
      const { token } = await new OneTimeTokens(trx).issue(purpose, { organisationId: user.organisation_id, userId: user.id }, hours, trx);
      await new AuditService(this.knex).record({ organisationId: user.organisation_id, actor: SHELL, action: purpose === 'invite' ? 'user.invited' : 'password.reset_issued', target: { type: 'user', id: user.id }, details: { via: 'cli' } }, trx);
      return `${baseUrl(this.config)}/${purpose === 'invite' ? 'invite' : 'password-reset'}/${token}`;
    });
    const throttle = new LoginThrottle(this.knex, { maxPerAccount: 1, maxPerIp: 1, lockoutMinutes: 1 });
    await throttle.clear(accountKey(email));
    return link;
  }

  async setupLink(): Promise<string> {
    const issued = await new SetupService(this.knex).issueLink(this.config.setupLinkHours);
    if (!issued) throw new CliError('VClerk is already set up; use create-admin or reset-password');
    return `${baseUrl(this.config)}/setup/${issued.token}`;
  }
}
