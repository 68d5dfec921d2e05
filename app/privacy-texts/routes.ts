import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { callerOf } from '../access/caller';
import { formAction, showPage, type FormPage } from '../http/form-page';
import { flash } from '../http/flash';
import { languages } from '../i18n';
import { QueueSettingsStore } from '../queue/settings';
import { recordingNotice } from '../recordings/policy';
import { orgVersion, privacyTextKinds, PrivacyTexts } from './service';

/**
 * /compliance/privacy: the organisation's privacy and recording notices
 * (versioned; one form per text and language) and the automated-routing
 * opt-in with its history.
 */
function privacyTextsPage(knex: Knex): FormPage {
  return {
    view: 'requests/privacy',
    async load(req) {
      const organisationId = callerOf(req).user.organisationId;
      const texts = new PrivacyTexts(knex);
      const current = [];
      for (const kind of privacyTextKinds) {
        for (const language of languages) {
          const latest = await texts.latest(organisationId, kind, language);
          current.push({
            kind,
            language,
            version: latest ? orgVersion(latest.version) : null,
            text: latest?.text ?? '',
            builtin: kind === 'recording_notice' ? recordingNotice(language).text : null,
          });
        }
      }
      const routing = await new AuditService(knex).list(organisationId, { action: 'organisation.auto_routing_changed' }, { limit: 50, offset: 0 });
      return {
        title: req.t('requests.privacy.title'),
        current,
        history: (await texts.history(organisationId)).map((h) => ({ ...h, label: orgVersion(h.version) })),
        autoRouting: (await new QueueSettingsStore(knex).get(organisationId)).autoRouting,
        routingEvents: routing.events,
      };
    },
  };
}

/** GET /compliance/privacy */
export function privacyPage(knex: Knex): RequestHandler {
  return showPage(privacyTextsPage(knex));
}

/** POST /compliance/privacy: saves a new version of one text in one language (the form's hidden kind and language). */
export function savePrivacyText(knex: Knex): RequestHandler {
  return formAction({ page: privacyTextsPage(knex), fields: { kind: 'hidden', language: 'hidden', text: 'text' } }, async (req, res) => {
    const { version, changed } = await new PrivacyTexts(knex).save(callerOf(req), req.body);
    flash(req, 'success', changed ? 'requests.privacy.saved_flash' : 'requests.privacy.unchanged_flash', { version: orgVersion(version) });
    res.redirect(303, '/compliance/privacy');
  });
}
