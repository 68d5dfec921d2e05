import fs from 'node:fs';
import path from 'node:path';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../access/caller';
import { NotFoundError } from '../core/errors';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { formAction } from '../http/form-page';
import { organisationForms } from '../organisation/routes';
import { contentSecurityPolicy } from '../http/security';
import { OrganisationStore } from '../organisation/service';
import { brandButtonColors } from '../organisation/profile-service';
import { publicDir } from '../core/paths';
import { isOpen } from '../queue/hours';
import { QueueService } from '../queue/service';
import { QueueSettingsStore } from '../queue/settings';
import { WidgetSettings, widgetOriginsSchema } from './service';

const widgetScript = () => fs.readFileSync(path.join(publicDir, 'widget', 'widget.js'));

/**
 * GET /widget.js: the script an organisation embeds on its own website.
 * Small, no dependencies, loaded async; it may be loaded by any site
 * (Cross-Origin-Resource-Policy: cross-origin), but only allowed origins
 * get the widget's data (CORS on /q/:slug/widget.json).
 */
export const widgetJs: RequestHandler = (_req, res) => {
  res
    .type('application/javascript')
    .set('Cross-Origin-Resource-Policy', 'cross-origin')
    .set('Cache-Control', 'public, max-age=300')
    .send(widgetScript());
};

/** GET /q/:slug/widget.json: whether anyone is available, the button's text and the brand colours; CORS for allowed origins only. */
export function widgetData(knex: Knex): RequestHandler {
  return async (req, res) => {
    const organisation = typeof req.params.slug === 'string' ? await new OrganisationStore(knex).bySlug(req.params.slug) : undefined;
    if (!organisation || organisation.closedAt) throw new NotFoundError();
    const origin = req.get('origin');
    const allowed = await new WidgetSettings(knex).origins(organisation.id);
    res.vary('Origin').set('Cross-Origin-Resource-Policy', 'cross-origin').set('Cache-Control', 'no-store');
    if (origin && allowed.includes(origin.toLowerCase())) res.set('Access-Control-Allow-Origin', origin);
    const open = isOpen((await new QueueSettingsStore(knex).get(organisation.id)).hours);
    const available = open && (await new QueueService(knex).availableClerks(organisation.id)) > 0;
    const colors = brandButtonColors(organisation.brandColor);
    res.json({ available, label: req.t(available ? 'widget.talk' : 'widget.unavailable'), url: `/q/${organisation.slug}?via=widget`, color: colors.background, textColor: colors.text });
  };
}

/**
 * Queue pages may be framed by the organisation's allowed origins (and by
 * nobody else): frame-ancestors replaces the default 'none' for them.
 */
export function queueFraming(knex: Knex): RequestHandler {
  return async (req, res, next) => {
    const organisation = typeof req.params.slug === 'string' ? await new OrganisationStore(knex).bySlug(req.params.slug) : undefined;
    if (!organisation) return next();
    const allowed = await new WidgetSettings(knex).origins(organisation.id);
    if (allowed.length === 0) return next();
    const directives = { ...contentSecurityPolicy, 'frame-ancestors': ["'self'", ...allowed] };
    res.setHeader('Content-Security-Policy', Object.entries(directives).map(([k, v]) => `${k} ${v.join(' ')}`).join(';'));
    res.removeHeader('X-Frame-Options');
    next();
  };
}

/** POST /admin/organisation/widget: the website origins allowed to embed the widget. */
export function saveWidgetOrigins(knex: Knex): RequestHandler {
  return formAction(organisationForms(knex).widget, async (req, res) => {
    const { widget_origins } = parseBody(widgetOriginsSchema, req.body);
    await new WidgetSettings(knex).setOrigins(callerOf(req), widget_origins);
    flash(req, 'success', 'widget.saved');
    res.redirect(303, '/admin/organisation');
  });
}
