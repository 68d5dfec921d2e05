import type { Knex } from 'knex';
import type { Logger } from '../core/logger';
import { scheduleCronJob, type CronJob } from '../jobs/cron';
import type { JobQueue } from '../jobs/queue';
import { ldapLookup } from './ldap-client';
import { ldapSettingsOf, type SsoSecrets } from './provider-settings';
import { SsoProvisioning } from './provisioning';
import { markChecked, providersDueForCheck } from './store';

export const DIRECTORY_CHECK_QUEUE = 'sso.directory_check';
/** Every minute the job looks for providers whose interval (`check_minutes`) has passed. */
export const DIRECTORY_CHECK_CRON = '* * * * *';

export interface DirectoryCheckReport {
  organisationId: string;
  providerId: string;
  checked: number;
  deprovisioned: number;
  /** The directory could not answer (or its settings no longer open): nobody was ended, and it is tried again at the next tick. */
  unavailable: boolean;
}

/**
 * The periodic directory check: for each enabled LDAP provider whose
 * `check_minutes` have passed since its last complete check, every active
 * user it provisioned is looked up by subject; whoever the directory no
 * longer has, or who is in no mapped group any more, has their sessions
 * ended (audited `sso.deprovisioned` by provisioning). A directory that
 * cannot answer ends nobody and is not marked checked, so the next tick
 * tries again. OpenID Connect providers offer no lookup: their users are
 * refused at the next sign-in and by back-channel logout.
 */
export async function runDirectoryChecks(knex: Knex, secrets: SsoSecrets, now: Date = new Date()): Promise<DirectoryCheckReport[]> {
  const provisioning = new SsoProvisioning(knex);
  const reports: DirectoryCheckReport[] = [];
  for (const provider of await providersDueForCheck(knex, now)) {
    const base = { organisationId: provider.organisation_id, providerId: provider.id };
    let settings: ReturnType<typeof ldapSettingsOf>;
    try {
      settings = ldapSettingsOf(provider, provider.organisation_slug, secrets);
    } catch {
      reports.push({ ...base, checked: 0, deprovisioned: 0, unavailable: true });
      continue;
    }
    const result = await provisioning.check(provider, (subject) => ldapLookup(settings, subject));
    if (!result.unavailable) await markChecked(knex, provider.organisation_id, provider.id, now);
    reports.push({ ...base, ...result });
  }
  return reports;
}

/** The check as a cron job on the appliance's job queue (once per tick across processes). */
export function startDirectoryCheck(options: { jobs: JobQueue; knex: Knex; logger: Logger; secrets: SsoSecrets; cron?: string }): Promise<CronJob> {
  const log = options.logger.child({ component: 'sso-directory-check' });
  return scheduleCronJob(options.jobs, {
    log,
    queue: DIRECTORY_CHECK_QUEUE,
    cron: options.cron ?? DIRECTORY_CHECK_CRON,
    run: async () => {
      for (const report of await runDirectoryChecks(options.knex, options.secrets)) {
        if (report.unavailable) log.warn(report, 'directory check: the directory could not answer; nobody was ended, retried at the next tick');
        else if (report.deprovisioned) log.info(report, 'directory check: sessions ended of people the directory no longer has or maps');
      }
    },
  });
}
