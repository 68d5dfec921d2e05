import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { callerOf } from '../auth/caller';
import { ValidationError } from '../errors';
import { flash } from '../http/flash';
import { languages } from '../i18n';
import { QueueSettingsStore } from '../queue/settings';
import { recordingNotice } from '../recordings/policy';
import { orgVersion, privacyTextKinds, PrivacyTexts } from './service';

const FIELD_CODES = new Set(['required', 'too_long', 'invalid']);

async function renderPage(knex: Knex, req: Request, res: Response, status = 200, failed?: { kind: string; language: string; text: string; error: string }): Promise<void> {
  const organisationId = callerOf(req).user.organisationId;
  const texts = new PrivacyTexts(knex);
  const current = [];
  for (const kind of privacyTextKinds) {
    for (const language of languages) {
      const latest = await texts.latest(organisationId, kind, language);
      const mine = failed && failed.kind === kind && failed.language === language;
      current.push({
        kind,
        language,
        version: latest ? orgVersion(latest.version) : null,
        text: mine ? failed.text : latest?.text ?? '',
        builtin: kind === 'recording_notice' ? recordingNotice(language).text : null,
        error: mine ? failed.error : null,
      });
    }
  }
  const routing = await new AuditService(knex).list(organisationId, { action: 'organisation.auto_routing_changed' }, { limit: 50, offset: 0 });
  res.status(status).render('requests/privacy', {
    title: req.t('requests.privacy.title'),
    current,
    history: (await texts.history(organisationId)).map((h) => ({ ...h, label: orgVersion(h.version) })),
    autoRouting: (await new QueueSettingsStore(knex).get(organisationId)).autoRouting,
    routingEvents: routing.events,
  });
}

/** GET /compliance/privacy: the organisation's privacy and recording notices (versioned) and the automated-routing opt-in with its history. */
export function privacyPage(knex: Knex): RequestHandler {
  return (req, res) => renderPage(knex, req, res);
}

/** POST /compliance/privacy: saves a new version of one text in one language. */
export function savePrivacyText(knex: Knex): RequestHandler {
  return async (req, res) => {
    try {
      const { version, changed } = await new PrivacyTexts(knex).save(callerOf(req), req.body);
      flash(req, 'success', changed ? 'requests.privacy.saved_flash' : 'requests.privacy.unchanged_flash', { version: orgVersion(version) });
      res.redirect(303, '/compliance/privacy');
    } catch (err) {
      if (!(err instanceof ValidationError) || req.accepts(['html', 'json']) !== 'html') throw err;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const kind = String(body.kind ?? '');
      const language = String(body.language ?? '');
      if (!(privacyTextKinds as readonly string[]).includes(kind) || !(languages as readonly string[]).includes(language)) throw err;
      const code = err.fields.find((f) => f.field === 'text')?.code ?? 'invalid';
      await renderPage(knex, req, res, 400, { kind, language, text: typeof body.text === 'string' ? body.text : '', error: `requests.errors.${FIELD_CODES.has(code) ? code : 'invalid'}` });
    }
  };
}
