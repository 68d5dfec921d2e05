import { routes, type Route } from '../../app/routes';

/**
 * What the page crawls share (test/pages.test.ts, test/external-urls.test.ts):
 * which routes are pages, and how to find what a page, a stylesheet or a
 * Content-Security-Policy would load from outside the appliance.
 */

/** GET routes without a path parameter that answer an HTML page. */
export function pageRoutes(): Route[] {
  const notPages = ['/healthz', '/readyz', '/language', '/queue/ticket', '/metrics'];
  return routes({} as never).filter((r) => r.method === 'get' && !r.path.includes(':') && !r.path.startsWith('/api/') && !/\.(js|json|csv)$/.test(r.path) && !notPages.includes(r.path));
}

/** Whether a signed-in user of `role` is routed to `route`. */
export function routedTo(route: Route, role: string): boolean {
  return !Array.isArray(route.access) || route.access.includes(role);
}

/** Absolute http(s) or protocol-relative: somewhere other than the appliance. */
export function isExternal(url: string): boolean {
  return /^\s*(https?:)?\/\//i.test(url);
}

/** Every URL in src, href, action, poster and srcset attributes. */
export function attributeUrls(html: string): string[] {
  const urls: string[] = [];
  for (const m of html.matchAll(/\s(src|href|action|poster|srcset)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) {
    const value = (m[2] ?? m[3] ?? '').replace(/&amp;/g, '&');
    if (m[1]!.toLowerCase() === 'srcset') urls.push(...value.split(',').map((part) => part.trim().split(/\s+/)[0]!).filter(Boolean));
    else urls.push(value);
  }
  return urls;
}

/** The attribute URLs of a page that point outside the appliance. */
export function externalUrls(html: string): string[] {
  return attributeUrls(html).filter(isExternal);
}

/** url(...) and @import targets in a stylesheet that point outside the appliance. */
export function externalCssUrls(css: string): string[] {
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  const found = [
    ...[...text.matchAll(/url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"]*))\s*\)/gi)].map((m) => m[1] ?? m[2] ?? m[3] ?? ''),
    ...[...text.matchAll(/@import\s+(?:"([^"]*)"|'([^']*)')/gi)].map((m) => m[1] ?? m[2] ?? ''),
  ];
  return found.filter(isExternal);
}

/** Sources in a Content-Security-Policy header other than keywords, nonces, hashes, data: and blob:. */
export function externalCspSources(header: string): string[] {
  const sources: string[] = [];
  for (const directive of header.split(';')) {
    const [, ...values] = directive.trim().split(/\s+/);
    for (const value of values) if (!/^('[^']*'|data:|blob:)$/i.test(value)) sources.push(value);
  }
  return sources;
}

/** Inline script, style or event handlers, which the CSP forbids. */
export function inlineCode(html: string): string[] {
  const problems: string[] = [];
  if (/<script(?![^>]*\s(src=|type="application\/json"))[^>]*>/i.test(html)) problems.push('inline <script>');
  if (/<style/i.test(html)) problems.push('<style> element');
  if (/\sstyle=/i.test(html)) problems.push('style attribute');
  if (/\son[a-z]+=/i.test(html)) problems.push('inline event handler');
  return problems;
}
