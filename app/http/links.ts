import type { Request } from 'express';
import type { Config } from '../../config';

/** Base URL for links shown to users: the configured public URL, else the request's own origin. */
export function publicBase(req: Request, config: Pick<Config, 'publicUrl'>): string {
  return config.publicUrl ?? `${req.protocol}://${req.get('host')}`;
}
