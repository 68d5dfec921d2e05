import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, redactConfig } from '../config';

function problemsOf(env: Record<string, string>): { source: string; reason: string }[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, 'expected a ConfigError');
    return err.problems;
  }
  assert.fail('expected the configuration to be refused');
}

describe('configuration', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-config-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('has a default for every required setting', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.dataDir, './data');
    assert.equal(config.defaultLanguage, 'en');
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.logRequests, true);
  });

  it('reads VCLERK_ variables and DATABASE_URL with their types', () => {
    const config = loadConfig({
      VCLERK_PORT: '9000',
      VCLERK_DATA_DIR: '/var/lib/vclerk',
      VCLERK_LOG_REQUESTS: 'false',
      VCLERK_DEFAULT_LANGUAGE: 'de',
      VCLERK_TRUST_PROXY: '10.0.0.0/8, loopback',
      DATABASE_URL: 'postgres://vclerk:pw@db:5432/vclerk',
    });
    assert.equal(config.port, 9000);
    assert.equal(config.dataDir, '/var/lib/vclerk');
    assert.equal(config.logRequests, false);
    assert.equal(config.defaultLanguage, 'de');
    assert.equal(config.trustProxy, '10.0.0.0/8, loopback');
    assert.equal(config.databaseUrl, 'postgres://vclerk:pw@db:5432/vclerk');
  });

  it('names every bad key and why, all at once', () => {
    const problems = problemsOf({
      VCLERK_PORT: 'eighty',
      VCLERK_LOG_LEVEL: 'loud',
      VCLERK_TRUST_PROXY: 'everyone',
      VCLERK_PUBLIC_URL: 'ftp://example.org',
    });
    const sources = problems.map((p) => p.source).sort();
    assert.deepEqual(sources, ['VCLERK_LOG_LEVEL', 'VCLERK_PORT', 'VCLERK_PUBLIC_URL', 'VCLERK_TRUST_PROXY']);
    const port = problems.find((p) => p.source === 'VCLERK_PORT')!;
    assert.match(port.reason, /whole number between 1 and 65535, got "eighty"/);
    assert.match(problems.find((p) => p.source === 'VCLERK_LOG_LEVEL')!.reason, /one of: fatal, error/);
  });

  it('checks the rules across settings (TLS files, TURN) wherever it loads, naming what to change', () => {
    assert.match(problemsOf({ VCLERK_TLS: 'files', VCLERK_TLS_CERT_FILE: '/x.crt' })[0]!.reason, /VCLERK_TLS=files needs both VCLERK_TLS_CERT_FILE and VCLERK_TLS_KEY_FILE/);
    assert.match(problemsOf({ VCLERK_TLS_KEY_FILE: '/x.key' })[0]!.reason, /VCLERK_TLS is off/);
    assert.match(problemsOf({ VCLERK_TLS: 'self-signed', VCLERK_TLS_CERT_FILE: '/x.crt' })[0]!.reason, /makes its own certificate/);
    const turn = problemsOf({ VCLERK_TURN_URLS: 'turn:turn.example.org:3478' });
    assert.deepEqual(turn.map((p) => [p.source, p.reason]), [['VCLERK_TURN_SECRET', 'TURN needs both VCLERK_TURN_URLS and VCLERK_TURN_SECRET']]);
    assert.match(problemsOf({ VCLERK_TURN_SECRET: 's3cret-value-s3cret-value-s3cret-value' })[0]!.reason, /TURN needs both/);
    assert.doesNotMatch(JSON.stringify(problemsOf({ VCLERK_TURN_SECRET: 's3cret-value-s3cret-value-s3cret-value' })), /s3cret-value-s3cret-value-s3cret-value/);
    assert.doesNotThrow(() => loadConfig({ VCLERK_TLS: 'files', VCLERK_TLS_CERT_FILE: '/x.crt', VCLERK_TLS_KEY_FILE: '/x.key', VCLERK_TURN_URLS: 'turn:turn.example.org:3478', VCLERK_TURN_SECRET: 's3cret-value-s3cret-value-s3cret-value' }));
  });

  it('refuses out-of-range numbers', () => {
    assert.match(problemsOf({ VCLERK_PORT: '70000' })[0]!.reason, /between 1 and 65535/);
  });

  it('refuses unknown VCLERK_ variables and suggests the intended one', () => {
    const [problem] = problemsOf({ VCLERK_PROT: '8080' });
    assert.equal(problem!.source, 'VCLERK_PROT');
    assert.match(problem!.reason, /unknown setting \(did you mean VCLERK_PORT\?\)/);
  });

  it('ignores variables that are not VClerk\'s', () => {
    assert.doesNotThrow(() => loadConfig({ PATH: '/usr/bin', HOME: '/root', NODE_ENV: 'production' }));
  });

  it('reads secrets from *_FILE variables, without the trailing newline', () => {
    const file = path.join(dir, 'database_url');
    fs.writeFileSync(file, 'postgres://vclerk:s3cret@db/vclerk\n');
    const config = loadConfig({ DATABASE_URL_FILE: file, VCLERK_PORT_FILE: writeFile('port', '8181') });
    assert.equal(config.databaseUrl, 'postgres://vclerk:s3cret@db/vclerk');
    assert.equal(config.port, 8181);
  });

  it('refuses a missing secret file and a value given twice', () => {
    const problems = problemsOf({
      DATABASE_URL_FILE: path.join(dir, 'missing'),
      VCLERK_PORT: '1',
      VCLERK_PORT_FILE: writeFile('port2', '2'),
    });
    assert.match(problems.find((p) => p.source === 'DATABASE_URL_FILE')!.reason, /cannot read .*missing \(ENOENT\)/);
    assert.match(problems.find((p) => p.source === 'VCLERK_PORT')!.reason, /either VCLERK_PORT or VCLERK_PORT_FILE/);
  });

  it('never echoes a secret value in an error', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://admin:TopSecret99@db/x' });
    const text = new ConfigError(problems).message;
    assert.match(text, /DATABASE_URL/);
    assert.doesNotMatch(text, /TopSecret99/);
  });

  it('reads the optional JSON config file; the environment wins', () => {
    const file = writeFile('vclerk.json', JSON.stringify({ port: 7000, logLevel: 'debug', logRequests: false }));
    const config = loadConfig({ VCLERK_CONFIG_FILE: file, VCLERK_LOG_LEVEL: 'warn' });
    assert.equal(config.port, 7000);
    assert.equal(config.logRequests, false);
    assert.equal(config.logLevel, 'warn');
  });

  it('refuses unknown keys and bad values in the config file', () => {
    const file = writeFile('bad.json', JSON.stringify({ prot: 1, port: 'x' }));
    const problems = problemsOf({ VCLERK_CONFIG_FILE: file });
    assert.deepEqual(problems.map((p) => p.source).sort(), ['VCLERK_CONFIG_FILE:port', 'VCLERK_CONFIG_FILE:prot']);
    assert.match(problems.find((p) => p.source.endsWith('prot'))!.reason, /did you mean port\?/);
  });

  it('refuses a config file that is not JSON', () => {
    const [problem] = problemsOf({ VCLERK_CONFIG_FILE: writeFile('broken.json', '{ port: ') });
    assert.match(problem!.reason, /not valid JSON/);
  });

  it('masks secrets in the printable configuration', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u:hunter2hunter2@h/d' });
    const shown = JSON.stringify(redactConfig(config));
    assert.doesNotMatch(shown, /hunter2/);
    assert.match(shown, /"databaseUrl":"\[redacted\]"/);
  });

  function writeFile(name: string, content: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    return file;
  }
});
