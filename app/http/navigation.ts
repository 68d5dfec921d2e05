import type { Request, RequestHandler } from 'express';
import type { Access } from '../access/guards';

/** What the navigation needs of a route of the table (app/routes.ts). */
export interface NavigableRoute {
  method: string;
  path: string;
  access: Access;
  /** Beyond `access`: whether this user may open it now (e.g. the recording policy), checked without auditing. */
  opens?: (req: Request) => Promise<boolean>;
}

function routedTo(access: Access, role: string): boolean {
  return access === 'public' || access === 'staff' || access.includes(role as never);
}

/**
 * Menus show only what the user may open. For a signed-in user's pages,
 * puts `mayOpen(path)` into the view locals: true when the route table has
 * a GET route of that path whose access admits the user's role and whose
 * `opens` check (the same rule the route's handler enforces) passes. The
 * header and the compliance section's navigation ask it for every link,
 * so that no menu offers a link that answers 403 (and is audited as a
 * security event). The checks run only when a page is rendered (they may
 * query the database): not for redirects, JSON, files or images.
 */
export function navigation(table: NavigableRoute[]): RequestHandler {
  const pages = table.filter((r) => r.method === 'get' && !r.path.includes(':'));
  return (req, res, next) => {
    const open = new Set<string>();
    res.locals.mayOpen = (path: string) => open.has(path);
    const user = req.user;
    if (!user) return next();
    const render = res.render.bind(res) as (...args: unknown[]) => void;
    res.render = ((...args: unknown[]) => {
      opened(req, user.role, pages)
        .then((paths) => paths.forEach((p) => open.add(p)), (err: unknown) => req.log?.warn({ err }, 'navigation checks failed; menus show no links'))
        .finally(() => render(...args));
    }) as typeof res.render;
    next();
  };
}

async function opened(req: Request, role: string, pages: NavigableRoute[]): Promise<string[]> {
  const paths: string[] = [];
  for (const route of pages) {
    if (!routedTo(route.access, role)) continue;
    if (route.opens) {
      try {
        if (!(await route.opens(req))) continue;
      } catch (err) {
        req.log?.warn({ err, path: route.path }, 'navigation check failed; link left out');
        continue;
      }
    }
    paths.push(route.path);
  }
  return paths;
}
