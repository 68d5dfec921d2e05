import type { RequestHandler } from 'express';

/** GET /: the start page. */
export const home: RequestHandler = (req, res) => {
  res.render('pages/home', { title: req.t('home.title') });
};
