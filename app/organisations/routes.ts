import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { WidgetSettings } from '../widget/service';
import { weekdays } from '../queue/hours';
import { QueueSettingsStore } from '../queue/settings';
import { RecordingPolicyStore } from '../recordings/policy';
import { PrivacyContact } from './privacy';
import multer from 'multer';
import { callerOf } from '../auth/caller';
import { NotFoundError, ValidationError } from '../errors';
import { receiveMultipart } from '../http/multipart';
import { flash } from '../http/flash';
import {
  brandThemeCss, DEFAULT_BRAND_COLOR, FIELDS, MAX_LOGO_BYTES, OrganisationProfileService, PublicBranding, type BrandingChange,
} from './profile-service';

const VIEW = 'admin/organisation';
const PAGE = '/admin/organisation';
const PUBLIC_CACHE = 'public, max-age=300';

/** Field problem codes with a message under `organisation.errors.`; anything else shows as `invalid`. */
const ERROR_CODES = new Set(['required', 'too_long', 'invalid', 'invalid_vat', 'invalid_color', 'logo_type', 'logo_too_large']);

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

interface FormState {
  profile?: { name: string; vat_number: string };
  branding?: { brand_color: string; brand_color_picker?: string };
  errors?: Record<string, string>;
}

async function renderPage(knex: Knex, req: Request, res: Response, status: number, state: FormState = {}): Promise<void> {
  const organisation = await service(knex, req).get();
  const picker = state.branding?.brand_color_picker;
  res.status(status).render(VIEW, {
    title: req.t('organisation.title'),
    organisation,
    profile: state.profile ?? { name: organisation.name, vat_number: organisation.vatNumber ?? '' },
    // Not `branding`: the layout reads that name for the page's theme (partials/branding.ejs).
    brandingForm: {
      brand_color: state.branding?.brand_color ?? organisation.brandColor ?? '',
      brand_color_picker: picker && /^#[0-9a-f]{6}$/i.test(picker) ? picker.toLowerCase() : organisation.brandColor ?? DEFAULT_BRAND_COLOR,
    },
    widgetOrigins: (await new WidgetSettings(knex).origins(organisation.id)).join('\n'),
    appBase: `${req.protocol}://${req.get('host')}`,
    queueSettings: await new QueueSettingsStore(knex).get(organisation.id),
    privacyContact: await new PrivacyContact(knex).get(organisation.id),
    recordingPolicy: await new RecordingPolicyStore(knex).get(organisation.id),
    weekdays,
    errors: state.errors ?? {},
  });
}

/**
 * Runs a form action. A validation failure shows the page again with 400,
 * the submitted values and a message per field; clients that prefer JSON
 * get the error handler's JSON with the field codes instead.
 */
async function asForm(knex: Knex, req: Request, res: Response, state: () => FormState, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (!(err instanceof ValidationError) || req.accepts(['html', 'json']) !== 'html') throw err;
    const errors = Object.fromEntries(err.fields.map((f) => [f.field, `organisation.errors.${ERROR_CODES.has(f.code) ? f.code : 'invalid'}`]));
    await renderPage(knex, req, res, 400, { ...state(), errors });
  }
}

/** GET /admin/organisation: profile and branding forms. */
export function organisationPage(knex: Knex): RequestHandler {
  return async (req, res) => {
    await renderPage(knex, req, res, 200);
  };
}

/** POST /admin/organisation: name and VAT or organisation number. */
export function updateOrganisationProfile(knex: Knex): RequestHandler {
  return async (req, res) => {
    const profile = { name: text(req.body, 'name') ?? '', vat_number: text(req.body, 'vat_number') ?? '' };
    await asForm(knex, req, res, () => ({ profile }), async () => {
      await service(knex, req).updateProfile({ name: profile.name, vatNumber: profile.vat_number });
      flash(req, 'success', 'organisation.profile_saved');
      res.redirect(303, PAGE);
    });
  };
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
  return async (req, res) => {
    const organisations = service(knex, req);
    const state = (): FormState => ({
      branding: { brand_color: text(req.body, 'brand_color') ?? '', brand_color_picker: text(req.body, 'brand_color_picker') },
    });
    await asForm(knex, req, res, state, async () => {
      await receiveUpload(req, res);
      const current = await organisations.get();
      const change: BrandingChange = { brandColor: chosenColor(req.body, current.brandColor) };
      if (req.file) change.logo = { data: req.file.buffer, declaredType: req.file.mimetype };
      else if (text(req.body, 'remove_logo')) change.removeLogo = true;
      await organisations.changeBranding(change);
      flash(req, 'success', 'organisation.branding_saved');
      res.redirect(303, PAGE);
    });
  };
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
