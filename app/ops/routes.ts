import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { AuditCheckpoints } from '../audit/checkpoints';
import { NotFoundError } from '../core/errors';
import type { Logger } from '../core/logger';
import { addressMatcher } from '../net/addresses';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics';
import { dataDirFree, gatherFigures, migrationsCurrent, statusScope, type OpsProbe } from './probe';
import { versionInfo } from './version';

export interface OpsDeps {
  knex: Knex;
  config: Config;
  logger: Logger;
  ops?: OpsProbe;
}

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest();

/**
 * Who may read /metrics: a client address in VCLERK_METRICS_ALLOW, or a
 * request with the bearer token VCLERK_METRICS_TOKEN. The address is
 * `req.ip`, so X-Forwarded-For counts only from a trusted proxy; a request
 * that was forwarded (X-Forwarded-For or Forwarded present) while no proxy
 * is trusted is refused by address, since its socket address is the
 * proxy's (often 127.0.0.1) and says nothing about the client. Refusals
 * answer the ordinary 404 and are logged, not audited.
 */
export function metricsAccess(deps: { config: Pick<Config, 'metricsAllow' | 'metricsToken' | 'trustProxy'>; logger: Logger }): RequestHandler {
  let rules: { allowed: (address: string) => boolean; token: Buffer | null; proxyTrusted: boolean } | undefined;
  return (req, _res, next) => {
    // Compiled at the first request: the route table is also built without a config (tests listing it).
    rules ??= { allowed: addressMatcher(deps.config.metricsAllow), token: deps.config.metricsToken ? sha256(deps.config.metricsToken) : null, proxyTrusted: deps.config.trustProxy !== '' };
    const { allowed, token, proxyTrusted } = rules;
    const logger = deps.logger;
    const authorization = req.get('authorization');
    const bearer = authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    if (token && bearer && crypto.timingSafeEqual(sha256(bearer), token)) return next();
    const forwarded = req.get('x-forwarded-for') !== undefined || req.get('forwarded') !== undefined;
    if ((!forwarded || proxyTrusted) && req.ip && allowed(req.ip)) return next();
    (req.log ?? logger).warn({ ip: req.ip ?? null, forwarded, tokenGiven: bearer !== undefined }, 'metrics request refused');
    next(new NotFoundError());
  };
}

/** GET /metrics: Prometheus text format. */
export function metrics(deps: OpsDeps): RequestHandler {
  return async (req, res) => {
    const figures = await gatherFigures(deps.knex, deps.ops, req.log ?? deps.logger);
    res.setHeader('Cache-Control', 'no-store');
    res.type(METRICS_CONTENT_TYPE).send(renderMetrics(figures, versionInfo(), { tlsMode: deps.config.tls, turnConfigured: Boolean(deps.config.turnUrls && deps.config.turnSecret) }));
  };
}

function uptime(seconds: number): { days: number; hours: number; minutes: number } {
  return { days: Math.floor(seconds / 86400), hours: Math.floor((seconds % 86400) / 3600), minutes: Math.floor((seconds % 3600) / 60) };
}

/**
 * GET /admin/status: the figures for people, with how the appliance is set
 * up. On an appliance shared by several organisations an organisation's
 * admin sees their organisation's calls, queue and recordings and the
 * machine's health (workers up, free disk, version), never the appliance's
 * load, which would tell other organisations' business (that is /metrics,
 * for the operator).
 */
export function statusPage(deps: OpsDeps): RequestHandler {
  return async (req, res) => {
    const { config } = deps;
    const logger = req.log ?? deps.logger;
    const scope = await statusScope(deps.knex, callerOf(req).user.organisationId);
    const [figures, migrations, diskFree] = await Promise.all([gatherFigures(deps.knex, deps.ops, logger, scope), migrationsCurrent(deps.knex), dataDirFree(config.dataDir, logger)]);
    res.setHeader('Cache-Control', 'no-store');
    res.render('admin/status', {
      title: req.t('ops.title'),
      figures,
      disk: { free: diskFree, reserve: config.recordingMinFreeMb * 1024 * 1024 },
      version: versionInfo(),
      uptime: uptime(process.uptime()),
      startedAt: new Date(Date.now() - process.uptime() * 1000),
      database: {
        kind: deps.ops?.database ? (deps.ops.database.embedded ? 'embedded' : 'external') : config.databaseUrl ? 'external' : 'embedded',
        migrations,
        role: deps.ops?.database?.role ?? null,
      },
      // The appliance-wide audit chain (sign-ins before an organisation is known, refusals, ...): no other page verifies it.
      systemChain: await new AuditCheckpoints(deps.knex, config.dataDir).verify(null).catch((err: unknown) => {
        logger.warn({ err }, 'could not verify the appliance-wide audit chain');
        return null;
      }),
      ffmpegPath: deps.ops?.ffmpegPath ?? config.ffmpegPath ?? null,
      encryption: Boolean(config.recordingKey),
      tls: { mode: config.tls, fingerprint: deps.ops?.tls?.fingerprint ?? null, notAfter: deps.ops?.tls?.notAfter ?? null },
      turn: { configured: Boolean(config.turnUrls && config.turnSecret), urls: config.turnUrls ?? [], ttlSeconds: config.turnTtlSeconds },
      metricsAccess: { allow: config.metricsAllow, token: Boolean(config.metricsToken) },
      // The node that answers: its media workers are the ones listed.
      thisNode: deps.ops?.node?.name ?? null,
    });
  };
}
