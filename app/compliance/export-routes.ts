import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../../config';
import { auditActions } from '../audit/actions';
import { AuditExports, EXPORT_TTL_MS, type ExportSelection } from './audit-export';
import { loadApplianceKey } from '../audit/signing';
import { callerOf } from '../access/caller';
import { NotFoundError } from '../core/errors';
import { formAction, showPage, type Form } from '../http/form-page';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { actionGroups, actionKey, auditQuerySchema } from './routes';

export interface ExportDeps {
  knex: Knex;
  config: Pick<Config, 'dataDir'>;
}

const formatSchema = z.object({ format: z.enum(['ndjson', 'csv'], 'invalid_format') });

function exportService(deps: ExportDeps, req: Request): AuditExports {
  return new AuditExports(deps.knex, callerOf(req), deps.config.dataDir);
}

/**
 * /compliance/audit/export: filter form, recent exports with their files
 * and manifests, the appliance's public key. The audit page's filters may be
 * passed in the query to fill the form.
 */
function exportForm(deps: ExportDeps): Form {
  return {
    page: {
      view: 'compliance/export',
      noStore: true,
      async load(req) {
        const key = loadApplianceKey(deps.config.dataDir);
        const parsed = auditQuerySchema.safeParse(req.query);
        return {
          title: req.t('compliance.export.title'),
          actions: auditActions,
          groups: actionGroups,
          actionKey,
          values: parsed.success ? { from: parsed.data.from, to: parsed.data.to, actor: parsed.data.actor, action: parsed.data.action } : {},
          exports: await exportService(deps, req).list(),
          created: typeof req.query.created === 'string' ? req.query.created : null,
          ttlHours: EXPORT_TTL_MS / 3_600_000,
          key: key?.info ?? null,
        };
      },
    },
    fields: { from: 'text', to: 'text', actor: 'text', action: 'text', format: 'text', page: 'hidden' },
  };
}

/** GET /compliance/audit/export */
export function exportPage(deps: ExportDeps): RequestHandler {
  return showPage(exportForm(deps).page);
}

/** POST /compliance/audit/export: writes the export (audited) and returns to the page, where file and manifest wait. */
export function createExport(deps: ExportDeps): RequestHandler {
  return formAction(exportForm(deps), async (req, res) => {
    const query = parseBody(auditQuerySchema, req.body);
    const { format } = parseBody(formatSchema, req.body);
    const selection: ExportSelection = { from: query.from, to: query.to, actor: query.actor || undefined, action: query.action };
    const created = await exportService(deps, req).create(selection, format);
    flash(req, 'success', 'compliance.export.created', { count: created.rowCount });
    res.redirect(303, `/compliance/audit/export?created=${created.id}#export-${created.id}`);
  });
}

/** GET /compliance/audit/exports/:id/file: the export file (audited), while it is kept. */
export function exportFile(deps: ExportDeps): RequestHandler {
  return async (req, res) => {
    const { export: found, path } = await exportService(deps, req).download(String(req.params.id));
    const type = found.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
    await new Promise<void>((resolve, reject) => {
      res.download(path, found.fileName, { headers: { 'Content-Type': type, 'Cache-Control': 'no-store' } }, (err) => (err && !res.headersSent ? reject(new NotFoundError('export_expired', { messageKey: 'compliance.export.errors.export_expired', cause: err })) : resolve()));
    });
  };
}

/** GET /compliance/audit/exports/:id/manifest.json: the signed manifest, byte for byte as stored (kept after the file expired). */
export function exportManifest(deps: ExportDeps): RequestHandler {
  return async (req, res) => {
    const found = await exportService(deps, req).get(String(req.params.id));
    res.set('Cache-Control', 'no-store');
    res.attachment(found.fileName.replace(/\.(ndjson|csv)$/, '.manifest.json'));
    res.type('application/json; charset=utf-8').send(found.manifest);
  };
}

/** GET /compliance/audit/keys/:keyId.pem: the appliance's public key (the id in the URL names the key, for later rotation). */
export function applianceKeyPem(deps: ExportDeps): RequestHandler {
  return async (req, res) => {
    const key = loadApplianceKey(deps.config.dataDir);
    if (!key || key.info.key_id !== req.params.keyId) throw new NotFoundError();
    res.set('Cache-Control', 'no-store');
    res.attachment(`vclerk-appliance-key-${key.info.key_id}.pem`);
    res.type('application/x-pem-file').send(key.info.pem);
  };
}
