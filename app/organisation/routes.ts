import type { Request, RequestHandler, Response } from 'express';
import { formAction, showPage, type Form, type FormFields, type FormPage } from '../http/form-page';
import type { Knex } from 'knex';
import { WidgetSettings } from '../widget/service';
import { weekdays } from '../queue/hours';
import { QueueSettingsStore } from '../queue/settings';
import { RecordingPolicyStore } from '../recordings/policy';
import { PrivacyContact } from './privacy';
import { supportedTimeZones } from '../i18n/dates';
import { organisationTimeZone } from './time-zone';
import multer from 'multer';
import { callerOf } from '../access/caller';
import { NotFoundError, ValidationError } from '../core/errors';
import { receiveMultipart } from '../http/multipart';
import { flash } from '../http/flash';
import {
  brandThemeCss, DEFAULT_BRAND_COLOR, FIELDS, MAX_LOGO_BYTES, OrganisationProfileService, PublicBranding, type BrandingChange,
} from './profile-service';

const PAGE = '/admin/organisation';
const PUBLIC_CACHE = 'public, max-age=300';

/**
 * The logo upload: in memory, one file, a few fields. One byte more than
 * the largest logo is let through so that the service decides (and says)
 * what is too large; anything larger stops the upload early.
 */
const upload = multer({
  storage: multer.memoryStorage(),
  limits: { fileSize: MAX_LOGO_BYTES + 1, files: 1, fields: 10 },
}).single(FIELDS.logo);

function service(knex: Knex, req: Request): OrganisationProfileService {
  return new OrganisationProfileService(knex, callerOf(req));
}

function text(body: unknown, name: string): string | undefined {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * /admin/organisation: the profile, branding, widget, queue, recording and
 * privacy forms, each filled with the organisation's current settings.
 */
function pageOf(knex: Knex): FormPage {
  return {
    view: 'admin/organisation',
    async load(req) {
      const organisation = await service(knex, req).get();
      const queueSettings = await new QueueSettingsStore(knex).get(organisation.id);
      const hours: Record<string, string> = {};
      for (const d of weekdays) {
        const slot = queueSettings.hours?.days[d];
        hours[`${d}_from`] = slot?.from ?? '';
        hours[`${d}_to`] = slot?.to ?? '';
      }
      return {
        title: req.t('organisation.title'),
        organisation,
        appBase: `${req.protocol}://${req.get('host')}`,
        queueSettings,
        recordingPolicy: await new RecordingPolicyStore(knex).get(organisation.id),
        weekdays,
        timeZones: supportedTimeZones(),
        defaultBrandColor: DEFAULT_BRAND_COLOR,
        values: {
          name: organisation.name,
          vat_number: organisation.vatNumber ?? '',
          brand_color: organisation.brandColor ?? '',
          brand_color_picker: organisation.brandColor ?? DEFAULT_BRAND_COLOR,
          widget_origins: (await new WidgetSettings(knex).origins(organisation.id)).join('\n'),
          timezone: await organisationTimeZone(knex, organisation.id),
          ...hours,
          privacy_contact: await new PrivacyContact(knex).get(organisation.id),
        },
      };
    },
  };
}

/** The forms of /admin/organisation, by the fields each submits. */
export function organisationForms(knex: Knex) {
  const page = pageOf(knex);
  const hours = Object.fromEntries(weekdays.flatMap((d) => [[`${d}_from`, 'text'], [`${d}_to`, 'text']])) as FormFields;
  return {
    profile: { page, fields: { name: 'text', vat_number: 'text' } },
    branding: { page, fields: { brand_color: 'text', brand_color_picker: 'text', [FIELDS.logo]: 'file' } },
    widget: { page, fields: { widget_origins: 'text' } },
    queue: { page, fields: { timezone: 'text', ...hours } },
    recording: { page, fields: { mode: 'text' } },
    privacy: { page, fields: { privacy_contact: 'text' } },
  } satisfies Record<string, Form>;
}

/** GET /admin/organisation */
export function organisationPage(knex: Knex): RequestHandler {
  return showPage(pageOf(knex));
}

/** POST /admin/organisation: name and VAT or organisation number. */
export function updateOrganisationProfile(knex: Knex): RequestHandler {
  return formAction(organisationForms(knex).profile, async (req, res) => {
    await service(knex, req).updateProfile({ name: text(req.body, 'name') ?? '', vatNumber: text(req.body, 'vat_number') ?? '' });
    flash(req, 'success', 'organisation.profile_saved');
    res.redirect(303, PAGE);
  });
}

/** Reads the multipart body; upload limits become typed errors, a too-large logo a field problem. */
function receiveUpload(req: Request, res: Response): Promise<void> {
  return receiveMultipart(upload, req, res, (err) =>
    err.code === 'LIMIT_FILE_SIZE' ? new ValidationError([{ field: FIELDS.logo, code: 'logo_too_large' }]) : undefined,
  );
}

/**
 * The colour the branding form asks for. The form has a colour picker and
 * a text field for the code, both showing the current colour, and no script
 * to keep them in step: whichever the user changed counts (the text field
 * first). An empty text field means the default colour. Undefined: no change.
 */
function chosenColor(body: unknown, current: string | null): string | null | undefined {
  const typed = text(body, 'brand_color');
  if (typed !== undefined && typed.trim().toLowerCase() !== (current ?? '')) return typed;
  const picked = text(body, 'brand_color_picker');
  if (picked !== undefined && picked.trim().toLowerCase() !== (current ?? DEFAULT_BRAND_COLOR)) return picked;
  return undefined;
}

/**
 * POST /admin/organisation/branding (multipart; the CSRF token is in the
 * action URL because the CSRF check runs before the upload is read): colour,
 * new logo, or removing the logo.
 */
export function updateOrganisationBranding(knex: Knex): RequestHandler {
  return formAction(organisationForms(knex).branding, async (req, res) => {
    const organisations = service(knex, req);
    await receiveUpload(req, res);
    const current = await organisations.get();
    const change: BrandingChange = { brandColor: chosenColor(req.body, current.brandColor) };
    if (req.file) change.logo = { data: req.file.buffer, declaredType: req.file.mimetype };
    else if (text(req.body, 'remove_logo')) change.removeLogo = true;
    await organisations.changeBranding(change);
    flash(req, 'success', 'organisation.branding_saved');
    res.redirect(303, PAGE);
  });
}

/** GET /branding/:slug/logo: the organisation's logo, for anyone. */
export function brandingLogo(knex: Knex): RequestHandler {
  const branding = new PublicBranding(knex);
  return async (req, res) => {
    const logo = await branding.logo(String(req.params.slug));
    if (!logo) throw new NotFoundError();
    res.set({
      'Content-Type': logo.type,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': PUBLIC_CACHE,
      ETag: `"${logo.sha256}"`,
    });
    // Answers 304 itself when the browser's If-None-Match matches.
    res.send(logo.data);
  };
}

/** GET /branding/:slug/theme.css: the brand colour as CSS variables; empty for the default colour. */
export function brandingTheme(knex: Knex): RequestHandler {
  const branding = new PublicBranding(knex);
  return async (req, res) => {
    const found = await branding.color(String(req.params.slug));
    if (!found) throw new NotFoundError();
    res.set('Cache-Control', PUBLIC_CACHE).type('text/css').send(brandThemeCss(found.brandColor));
  };
}
