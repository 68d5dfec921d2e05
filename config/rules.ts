import type { Config, SettingKey } from './schema';

/** One thing wrong with the configuration, as `ConfigError` and `vclerk config check` name it. */
export interface ConfigProblem {
  /** Where the bad value came from: an environment variable or `file:<key>`. */
  source: string;
  key?: SettingKey;
  reason: string;
}

/**
 * Rules across settings, checked wherever the configuration is loaded (the
 * server's start and `vclerk config check` alike): a setting that needs
 * another, or excludes one. Each problem names the variable to change.
 */
export function crossFieldProblems(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const files = config.tlsCertFile || config.tlsKeyFile;
  if (config.tls === 'off' && files) {
    problems.push({ source: 'VCLERK_TLS', key: 'tls', reason: 'VCLERK_TLS_CERT_FILE/VCLERK_TLS_KEY_FILE are set but VCLERK_TLS is off: set VCLERK_TLS=files to serve HTTPS with them, or remove them' });
  }
  if (config.tls === 'files' && (!config.tlsCertFile || !config.tlsKeyFile)) {
    problems.push({ source: 'VCLERK_TLS', key: 'tls', reason: 'VCLERK_TLS=files needs both VCLERK_TLS_CERT_FILE and VCLERK_TLS_KEY_FILE' });
  }
  if (config.tls === 'self-signed' && files) {
    problems.push({ source: 'VCLERK_TLS', key: 'tls', reason: 'VCLERK_TLS=self-signed makes its own certificate: remove VCLERK_TLS_CERT_FILE/VCLERK_TLS_KEY_FILE, or set VCLERK_TLS=files' });
  }
  if (Boolean(config.turnUrls) !== Boolean(config.turnSecret)) {
    problems.push({ source: config.turnUrls ? 'VCLERK_TURN_SECRET' : 'VCLERK_TURN_URLS', reason: 'TURN needs both VCLERK_TURN_URLS and VCLERK_TURN_SECRET' });
  }
  return problems;
}
