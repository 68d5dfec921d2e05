import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { SYSTEM } from '../audit/actions';
import { enforcePolicy } from '../staff/password-service';
import { hashPassword } from '../security/passwords';
import { PASSWORD_MAX } from '../security/password-policy';
import { OneTimeTokens } from '../access/one-time-tokens';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors';
import { OrganisationStore, SLUG } from '../organisation/service';
import { emailTaken, insertUserId } from '../staff/store';

export const setupSchema = z
  .object({
    organisation_name: z.string().trim().min(1, 'required').max(200, 'too_long'),
    organisation_slug: z.string().trim().toLowerCase().max(63, 'too_long').refine((s) => s === '' || SLUG.test(s), 'invalid_slug').optional(),
    vat_number: z.string().trim().max(50, 'too_long').optional(),
    name: z.string().trim().min(1, 'required').max(200, 'too_long'),
    email: z.string().trim().toLowerCase().max(254, 'too_long').pipe(z.email('invalid_email')),
    password: z.string().max(PASSWORD_MAX * 4, 'too_long'),
    password_confirm: z.string(),
  })
  .refine((v) => v.password === v.password_confirm, { message: 'passwords_differ', path: ['password_confirm'] });

/**
 * First run: while no organisation exists, a one-time setup link (printed
 * to the log at start) creates the first organisation and its admin.
 */
export class SetupService {
  private readonly tokens: OneTimeTokens;

  constructor(private readonly knex: Knex) {
    this.tokens = new OneTimeTokens(knex);
  }

  async needed(): Promise<boolean> {
    return (await new OrganisationStore(this.knex).count()) === 0;
  }

  /** A new setup link token (older ones stop working), or undefined when setup is done. */
  async issueLink(ttlHours: number): Promise<{ token: string; expiresAt: Date } | undefined> {
    if (!(await this.needed())) return undefined;
    return this.tokens.issue('setup', {}, ttlHours);
  }

  async validLink(token: unknown): Promise<boolean> {
    return (await this.needed()) && (await this.tokens.find('setup', token)) !== undefined;
  }

  async complete(token: unknown, input: z.infer<typeof setupSchema>, meta: { ip: string | null; userAgent: string | null }): Promise<{ userId: string }> {
    enforcePolicy(input.password, { email: input.email, name: input.name });
    const passwordHash = await hashPassword(input.password);
    return this.knex.transaction(async (trx) => {
      // Serialise concurrent setups: only the first one wins.
      await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', ['vclerk:setup']);
      if (!(await this.tokens.consume('setup', token, trx))) throw new NotFoundError('link_invalid');
      const organisations = new OrganisationStore(trx);
      if ((await organisations.count()) > 0) throw new ConflictError('setup_done');
      if (await emailTaken(trx, input.email)) {
        throw new ValidationError([{ field: 'email', code: 'email_taken' }]);
      }
      const organisation = await organisations.create({ name: input.organisation_name, vatNumber: input.vat_number, slug: input.organisation_slug || null }, SYSTEM, trx);
      const userId = await insertUserId(trx, { organisation_id: organisation.id, name: input.name, email: input.email, role: 'admin', status: 'active', password_hash: passwordHash, password_changed_at: trx.fn.now() });
      await new AuditService(this.knex).record(
        {
          organisationId: organisation.id,
          actor: { type: 'user', id: userId, label: input.email, organisationId: organisation.id },
          action: 'setup.completed',
          target: { type: 'organisation', id: organisation.id },
          ...meta,
          details: { admin_email: input.email },
        },
        trx,
      );
      return { userId };
    });
  }
}
