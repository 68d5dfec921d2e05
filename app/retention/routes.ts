import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { flash } from '../http/flash';
import { parseQuery } from '../http/query';
import { formAction, showPage, type Form, type FormFields } from '../http/form-page';
import { ApiRequestLog } from './api-requests';
import { RetentionService } from './service';
import { DEFAULT_RETENTION, MAX_DAYS, MIN_DAYS, RetentionSettingsStore, retentionKinds } from './settings';

export interface RetentionDeps {
  knex: Knex;
  /** Read when a request comes (the route table is also built without a config, by tests). */
  config: Config;
}

const PAGE_SIZE = 50;
const pageSchema = z.object({ page: z.coerce.number().int().min(1).max(100000).catch(1) });

/** /compliance/retention: the settings form, whether a hold suspends retention, and the latest receipts. */
function settingsForm(deps: RetentionDeps): Form {
  return {
    page: {
      view: 'retention/settings',
      noStore: true,
      async load(req) {
        const service = new RetentionService(deps.knex, callerOf(req));
        return {
          title: req.t('retention.title'),
          kinds: retentionKinds,
          defaults: DEFAULT_RETENTION,
          minDays: MIN_DAYS,
          maxDays: MAX_DAYS,
          receipts: await service.receipts(),
          organisationHeld: await service.organisationHeld(),
          values: { ...(await new RetentionSettingsStore(deps.knex).get(callerOf(req).user.organisationId)) },
        };
      },
    },
    fields: Object.fromEntries(retentionKinds.map((kind) => [kind, 'text'])) as FormFields,
  };
}

/** GET /compliance/retention */
export function retentionPage(deps: RetentionDeps): RequestHandler {
  return showPage(settingsForm(deps).page);
}

/** POST /compliance/retention: saves the settings (validated, audited with before and after). */
export function saveRetention(deps: RetentionDeps): RequestHandler {
  return formAction(settingsForm(deps), async (req, res) => {
    await new RetentionSettingsStore(deps.knex).save(callerOf(req), req.body);
    flash(req, 'success', 'retention.saved');
    res.redirect(303, '/compliance/retention');
  });
}

/** POST /compliance/retention/run: runs retention for the caller's organisation now (audited). */
export function runRetentionNow(deps: RetentionDeps): RequestHandler {
  return async (req, res) => {
    const receipts = await new RetentionService(deps.knex, callerOf(req)).runNow(deps.config.dataDir);
    const rows = receipts.reduce((n, r) => n + r.rows, 0);
    const files = receipts.reduce((n, r) => n + r.files, 0);
    const held = receipts.reduce((n, r) => n + r.heldSkipped, 0);
    flash(req, 'success', 'retention.run_done', { rows, files, held });
    res.redirect(303, '/compliance/retention');
  };
}

/** GET /compliance/api-requests: the API request log with client IPs, newest first, paged. */
export function apiRequestsPage(deps: RetentionDeps): RequestHandler {
  return async (req, res) => {
    const { page } = parseQuery(pageSchema, req);
    const offset = (page - 1) * PAGE_SIZE;
    const { requests, total } = await new ApiRequestLog(deps.knex).list(callerOf(req).user.organisationId, { limit: PAGE_SIZE, offset });
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    res.set('Cache-Control', 'no-store').render('retention/api-requests', {
      title: req.t('retention.api.title'),
      requests,
      total,
      page,
      pages,
      prev: page > 1 ? `/compliance/api-requests?page=${Math.min(page - 1, pages)}` : null,
      next: page < pages ? `/compliance/api-requests?page=${page + 1}` : null,
    });
  };
}
