import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuditAction } from '../audit/actions';
import { OrganisationScopedService } from '../access/scoped-service';
import { ConflictError, NotFoundError, ValidationError, type FieldProblem } from '../core/errors';
import { checkedImageType, imageTypes, type ImageType } from '../http/images';
import { SLUG, type Organisation } from './service';
import { brandColorBySlug, lockOwnOrganisation, logoBySlug, ownOrganisation, updateOwnOrganisation } from './store';

/** The largest logo accepted, in bytes. */
export const MAX_LOGO_BYTES = 256 * 1024;

export const logoTypes = imageTypes;
export type LogoType = ImageType;

/** The colour the appliance uses when an organisation has chosen none (as in public/css/app.css). */
export const DEFAULT_BRAND_COLOR = '#1d4ed8';

const profileSchema = z.object({
  name: z.string().trim().min(1, 'required').max(200, 'too_long'),
  vat_number: z.string().trim().max(50, 'too_long').regex(/^[\p{L}\p{N} .\-/]*$/u, 'invalid_vat'),
});

/** Form field names, so that problems show next to the right input. */
export const FIELDS = { name: 'name', vatNumber: 'vat_number', brandColor: 'brand_color', logo: 'logo' } as const;

/** `#RRGGBB` in any case becomes `#rrggbb`; empty or null means "the default colour" (null). */
export function normaliseBrandColor(input: string | null | undefined): string | null {
  const value = (input ?? '').trim();
  if (value === '') return null;
  if (!/^#[0-9a-f]{6}$/i.test(value)) throw new ValidationError([{ field: FIELDS.brandColor, code: 'invalid_color' }]);
  return value.toLowerCase();
}

export interface LogoFacts {
  type: LogoType;
  size: number;
  sha256: string;
}

/**
 * Checks an uploaded logo: its size, and that its bytes are the type the
 * browser declared and one we accept. Returns what the audit trail records.
 */
export function checkLogo(data: Buffer, declaredType: string): LogoFacts {
  if (data.length > MAX_LOGO_BYTES) throw new ValidationError([{ field: FIELDS.logo, code: 'logo_too_large' }]);
  const type = checkedImageType(data, declaredType);
  if (!type) throw new ValidationError([{ field: FIELDS.logo, code: 'logo_type' }]);
  return { type, size: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') };
}

export interface BrandingChange {
  /** A new colour (`#rrggbb`), null for the default, undefined to leave it. */
  brandColor?: string | null;
  /** A new logo as uploaded; replaces the current one. */
  logo?: { data: Buffer; declaredType: string };
  /** Removes the current logo (ignored when a new logo is given). */
  removeLogo?: boolean;
}

/**
 * The caller's own organisation: its profile (name, VAT or organisation
 * number) and branding (colour, logo). Built per request with the caller;
 * every query is scoped to the caller's organisation, every change is
 * audited in the same transaction with its before and after values (for a
 * logo: type, size and SHA-256, never the bytes). A closed organisation is
 * read-only.
 */
export class OrganisationProfileService extends OrganisationScopedService {

  async get(): Promise<Organisation> {
    const organisation = await ownOrganisation(this.knex, this.organisationId);
    if (!organisation) throw new NotFoundError();
    return organisation;
  }

  async updateProfile(input: { name: string; vatNumber?: string | null }): Promise<Organisation> {
    const parsed = profileSchema.safeParse({ name: input.name ?? '', vat_number: input.vatNumber ?? '' });
    if (!parsed.success) {
      const fields: FieldProblem[] = [];
      for (const issue of parsed.error.issues) {
        const field = String(issue.path[0]);
        if (!fields.some((f) => f.field === field)) fields.push({ field, code: /^[a-z_]+$/.test(issue.message) ? issue.message : 'invalid' });
      }
      throw new ValidationError(fields);
    }
    const after = { name: parsed.data.name, vat_number: parsed.data.vat_number || null };
    return this.knex.transaction(async (trx) => {
      const current = await this.lock(trx, ['name', 'vat_number']);
      const before = { name: current.name as string, vat_number: (current.vat_number as string | null) ?? null };
      const changed = (Object.keys(after) as (keyof typeof after)[]).filter((k) => after[k] !== before[k]);
      if (changed.length === 0) return this.read(trx);
      await updateOwnOrganisation(trx, this.organisationId, pick(after, changed));
      await this.record(trx, 'organisation.updated', { before: pick(before, changed), after: pick(after, changed) });
      return this.read(trx);
    });
  }

  updateBranding(input: { brandColor: string | null }): Promise<Organisation> {
    return this.changeBranding({ brandColor: input.brandColor });
  }

  setLogo(data: Buffer, declaredType: string): Promise<Organisation> {
    return this.changeBranding({ logo: { data, declaredType } });
  }

  removeLogo(): Promise<Organisation> {
    return this.changeBranding({ removeLogo: true });
  }

  /**
   * Colour and logo together, as the branding form sends them: everything
   * is checked before anything is written, and the change is one audited
   * transaction. Nothing is written (or audited) when nothing changes.
   */
  async changeBranding(change: BrandingChange): Promise<Organisation> {
    const problems: FieldProblem[] = [];
    let color: string | null | undefined;
    let logo: LogoFacts | undefined;
    if (change.brandColor !== undefined) {
      try {
        color = normaliseBrandColor(change.brandColor);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        problems.push(...err.fields);
      }
    }
    if (change.logo) {
      try {
        logo = checkLogo(change.logo.data, change.logo.declaredType);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        problems.push(...err.fields);
      }
    }
    if (problems.length > 0) throw new ValidationError(problems);

    return this.knex.transaction(async (trx) => {
      const current = await this.lock(trx, [
        'brand_color', 'logo_type',
        trx.raw('octet_length(logo) AS logo_size'),
        trx.raw(`encode(sha256(logo), 'hex') AS logo_sha256`),
      ]);
      const before: Record<string, unknown> = {};
      const after: Record<string, unknown> = {};
      const update: Record<string, unknown> = {};
      const currentColor = (current.brand_color as string | null) ?? null;
      if (color !== undefined && color !== currentColor) {
        before.brand_color = currentColor;
        after.brand_color = color;
        update.brand_color = color;
      }
      const currentLogo: LogoFacts | null = current.logo_type
        ? { type: current.logo_type, size: Number(current.logo_size), sha256: current.logo_sha256 }
        : null;
      if (logo && logo.sha256 !== currentLogo?.sha256) {
        before.logo = currentLogo;
        after.logo = logo;
        update.logo = change.logo!.data;
        update.logo_type = logo.type;
      } else if (!logo && change.removeLogo && currentLogo) {
        before.logo = currentLogo;
        after.logo = null;
        update.logo = null;
        update.logo_type = null;
      }
      if (Object.keys(update).length === 0) return this.read(trx);
      await updateOwnOrganisation(trx, this.organisationId, update);
      await this.record(trx, 'organisation.branding_changed', { before, after });
      return this.read(trx);
    });
  }

  /** Locks the organisation's row for the change, and refuses a closed organisation. */
  private async lock(trx: Knex.Transaction, columns: (string | Knex.Raw)[]): Promise<Record<string, any>> {
    const row = await lockOwnOrganisation(trx, this.organisationId, columns);
    if (!row) throw new NotFoundError();
    if (row.closed_at) throw new ConflictError('organisation_closed', { messageKey: 'organisation.closed' });
    return row;
  }

  private async read(trx: Knex.Transaction): Promise<Organisation> {
    return (await ownOrganisation(trx, this.organisationId))!;
  }

  private record(trx: Knex.Transaction, action: AuditAction, details: Record<string, unknown>): Promise<void> {
    return this.audit.record({
      ...this.base(),
      action,
      target: { type: 'organisation', id: this.organisationId },
      details,
    }, trx);
  }
}

function pick<T extends object>(object: T, keys: (keyof T)[]): Partial<T> {
  return Object.fromEntries(keys.map((k) => [k, object[k]])) as Partial<T>;
}

/**
 * What anyone may read about an organisation's branding, by its public
 * slug: the logo and the colour. Closed organisations still answer (they
 * are read-only, not gone). A malformed slug never reaches the database.
 */
export class PublicBranding {
  constructor(private readonly knex: Knex) {}

  async logo(slug: string): Promise<{ data: Buffer; type: LogoType; sha256: string } | undefined> {
    if (!SLUG.test(slug)) return undefined;
    const row = await logoBySlug(this.knex, slug);
    return row ? { data: row.logo, type: row.logo_type as LogoType, sha256: row.sha256 } : undefined;
  }

  /** The organisation's colour (null: the default), or undefined for an unknown slug. */
  async color(slug: string): Promise<{ brandColor: string | null } | undefined> {
    if (!SLUG.test(slug)) return undefined;
    const row = await brandColorBySlug(this.knex, slug);
    return row ? { brandColor: row.brand_color ?? null } : undefined;
  }
}

// --- The theme stylesheet ---------------------------------------------------

type Rgb = [number, number, number];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
/** Pico's dark background, against which dark-mode text must stay readable. */
const DARK_BACKGROUND: Rgb = [0x13, 0x17, 0x1f];

function parseHex(hex: string): Rgb {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as Rgb;
}

function toHex(rgb: Rgb): string {
  return `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;
}

function mix(a: Rgb, b: Rgb, weight: number): Rgb {
  return a.map((c, i) => c + (b[i]! - c) * weight) as Rgb;
}

function luminance(rgb: Rgb): number {
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as Rgb;
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** The colour, darkened or lightened just enough to read as text on the background (WCAG AA, 4.5:1). */
function readableOn(color: Rgb, background: Rgb, towards: Rgb): Rgb {
  for (let w = 0; w <= 1; w += 0.05) {
    const candidate = mix(color, towards, w);
    if (contrast(candidate, background) >= 4.5) return candidate;
  }
  return towards;
}

/** White or black, whichever reads better on the colour. */
function inverseOf(color: Rgb): Rgb {
  return contrast(WHITE, color) >= contrast(BLACK, color) ? WHITE : BLACK;
}

/**
 * A button in the brand colour outside the appliance's pages (the website
 * widget): the colour (the default when none is set) and white or black
 * text, whichever reads better on it.
 */
export function brandButtonColors(brandColor: string | null): { background: string; text: string } {
  const background = brandColor && /^#[0-9a-f]{6}$/.test(brandColor) ? brandColor : DEFAULT_BRAND_COLOR;
  return { background, text: toHex(inverseOf(parseHex(background))) };
}

function rgba(rgb: Rgb, alpha: number): string {
  return `rgba(${rgb.map(Math.round).join(', ')}, ${alpha})`;
}

function declarations(base: Rgb, text: Rgb, hoverTowards: Rgb): string {
  const hoverBackground = mix(base, hoverTowards, 0.15);
  return [
    `--vc-brand: ${toHex(text)};`,
    `--vc-brand-contrast: ${toHex(inverseOf(text))};`,
    `--pico-primary: ${toHex(text)};`,
    `--pico-primary-background: ${toHex(base)};`,
    `--pico-primary-border: ${toHex(base)};`,
    `--pico-primary-hover: ${toHex(mix(text, hoverTowards, 0.2))};`,
    `--pico-primary-hover-background: ${toHex(hoverBackground)};`,
    `--pico-primary-hover-border: ${toHex(hoverBackground)};`,
    `--pico-primary-underline: ${rgba(text, 0.5)};`,
    `--pico-primary-focus: ${rgba(text, 0.35)};`,
    `--pico-primary-inverse: ${toHex(inverseOf(base))};`,
  ].map((line) => `  ${line}`).join('\n');
}

/**
 * The organisation's theme: the brand colour in the variables of
 * public/css/app.css and Pico, with the same selectors so that it wins when
 * linked after app.css. Text colours are adjusted to stay readable in light
 * and dark mode. Empty when the organisation uses the default colour.
 */
export function brandThemeCss(brandColor: string | null): string {
  if (!brandColor || !/^#[0-9a-f]{6}$/.test(brandColor)) return '';
  const base = parseHex(brandColor);
  const light = declarations(base, readableOn(base, WHITE, BLACK), BLACK);
  const dark = declarations(base, readableOn(base, DARK_BACKGROUND, WHITE), WHITE);
  return [
    `/* Organisation theme: ${brandColor} */`,
    `[data-theme=light],\n:root:not([data-theme=dark]) {\n${light}\n}`,
    `[data-theme=dark] {\n${dark}\n}`,
    `@media only screen and (prefers-color-scheme: dark) {\n  :root:not([data-theme]) {\n${dark.replace(/^/gm, '  ')}\n  }\n}`,
    '',
  ].join('\n');
}
