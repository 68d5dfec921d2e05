import type { RequestHandler } from 'express';

/** GET /dashboard: the signed-in user's start page, by role. */
export const dashboard: RequestHandler = (req, res) => {
  res.render('dashboard/index', { title: req.t('dashboard.title') });
};
