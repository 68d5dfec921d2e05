import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../access/caller';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { formAction } from '../http/form-page';
import { organisationForms } from './routes';
import { PrivacyContact, privacyContactSchema } from './privacy';

/** POST /admin/organisation/privacy: the data-protection contact shown to customers. */
export function savePrivacyContact(knex: Knex): RequestHandler {
  return formAction(organisationForms(knex).privacy, async (req, res) => {
    const { privacy_contact } = parseBody(privacyContactSchema, req.body);
    await new PrivacyContact(knex).set(callerOf(req), privacy_contact);
    flash(req, 'success', 'organisation.privacy_saved');
    res.redirect(303, '/admin/organisation');
  });
}
