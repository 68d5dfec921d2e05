import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../../config';
import { auditActions } from '../audit/actions';
import { AuditExports, EXPORT_TTL_MS, type ExportSelection } from '../audit/export';
import type { ExportFormat } from '../audit/manifest';
import { loadApplianceKey } from '../audit/signing';
import { callerOf } from '../auth/caller';
import { NotFoundError, ValidationError } from '../errors';
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

/** The export page: filter form, recent exports with their files and manifests, the appliance's public key. */
async function renderPage(deps: ExportDeps, req: Request, res: Response, status: number, values: Record<string, unknown>, errors: Record<string, string>): Promise<void> {
  const key = loadApplianceKey(deps.config.dataDir);
  const created = typeof req.query.created === 'string' ? req.query.created : null;
  res.status(status).set('Cache-Control', 'no-store').render('compliance/export', {
    title: req.t('compliance.export.title'),
    actions: auditActions,
    groups: actionGroups,
    actionKey,
    values,
    errors,
    exports: await exportService(deps, req).list(),
    created,
    ttlHours: EXPORT_TTL_MS / 3_600_000,
    key: key?.info ?? null,
  });
}

/** The submitted filter values, as typed, to fill the form again. */
function submitted(body: unknown): Record<string, string> {
  return Object.fromEntries(Object.entries((body ?? {}) as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** GET /compliance/audit/export; the audit page's filters may be passed in the query to fill the form. */
export function exportPage(deps: ExportDeps): RequestHandler {
  return async (req, res) => {
    const parsed = auditQuerySchema.safeParse(req.query);
    const values = parsed.success ? { from: parsed.data.from, to: parsed.data.to, actor: parsed.data.actor, action: parsed.data.action } : {};
    await renderPage(deps, req, res, 200, values, {});
  };
}

/** POST /compliance/audit/export: writes the export (audited) and returns to the page, where file and manifest wait. */
export function createExport(deps: ExportDeps): RequestHandler {
  return async (req, res) => {
    let selection: ExportSelection;
    let format: ExportFormat;
    try {
      const query = parseBody(auditQuerySchema, req.body);
      format = parseBody(formatSchema, req.body).format;
      selection = { from: query.from, to: query.to, actor: query.actor || undefined, action: query.action };
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const errors = Object.fromEntries(err.fields.map((f) => [f.field, `compliance.errors.${f.code}`]));
      await renderPage(deps, req, res, 400, submitted(req.body), errors);
      return;
    }
    const created = await exportService(deps, req).create(selection, format);
    flash(req, 'success', 'compliance.export.created', { count: created.rowCount });
    res.redirect(303, `/compliance/audit/export?created=${created.id}#export-${created.id}`);
  };
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
