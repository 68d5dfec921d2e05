import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ejs from 'ejs';
import type { Express } from 'express';
import { appVersion, publicDir, viewsDir } from '../core/paths';
import { languages } from '../i18n';

const LAYOUT = path.join(viewsDir, 'layout.ejs');

/**
 * EJS with a layout: a page view renders first, then `views/layout.ejs`
 * wraps it (`body` holds the page's HTML). A view may set `layout: false`
 * in its locals to render alone. EJS escapes every `<%= %>` output.
 */
function renderWithLayout(file: string, locals: object, callback: (err: Error | null, html?: string) => void): void {
  const options = locals as Record<string, unknown>;
  ejs.renderFile(file, options, (err, body) => {
    if (err) return callback(err);
    if (options.layout === false) return callback(null, body);
    ejs.renderFile(LAYOUT, { ...options, body }, (layoutErr, html) => callback(layoutErr, html));
  });
}

/**
 * URL of a static asset with a content hash, so that browsers may cache it
 * for a long time and still fetch a new version after an upgrade.
 */
const hashes = new Map<string, string>();
export function assetUrl(file: string): string {
  let hash = hashes.get(file);
  if (hash === undefined) {
    const onDisk = staticFile(file);
    hash = onDisk && fs.existsSync(onDisk)
      ? crypto.createHash('sha256').update(fs.readFileSync(onDisk)).digest('hex').slice(0, 12)
      : appVersion;
    hashes.set(file, hash);
  }
  return `/static/${file}?v=${hash}`;
}

/** Vendor files served under /static/vendor/, each from its npm package. */
export const vendorFiles: Record<string, string> = {
  'pico.min.css': require.resolve('@picocss/pico/css/pico.min.css'),
};

function staticFile(file: string): string | undefined {
  if (file.startsWith('vendor/')) return vendorFiles[file.slice('vendor/'.length)];
  return path.join(publicDir, file);
}

export function configureViews(app: Express, options: { cache: boolean }): void {
  app.engine('ejs', renderWithLayout);
  app.set('view engine', 'ejs');
  app.set('views', viewsDir);
  app.set('view cache', options.cache);
  app.locals.asset = assetUrl;
  app.locals.appVersion = appVersion;
  app.locals.languages = languages;
}
