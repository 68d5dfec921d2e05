import { CONFIG_FILE_ENV, schema, type SettingSpec } from './schema';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function shownDefault(spec: SettingSpec<unknown>): string {
  if (!('default' in spec)) return '_(unset)_';
  if (spec.default === '') return '_(empty)_';
  return `\`${String(spec.default)}\``;
}

/** The configuration reference, generated from the schema. */
export function renderConfigReference(): string {
  const rows = Object.entries(schema).map(([key, spec]: [string, SettingSpec<unknown>]) =>
    `| \`${spec.env}\` | \`${key}\` | ${cell(spec.type.label)} | ${shownDefault(spec)} | ${spec.secret ? 'yes' : ''} | ${cell(spec.description)} |`,
  );
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from config/schema.ts by `npm run config:docs`. Do not edit by hand: a test fails when this file is stale. -->',
    '',
    'VClerk reads its settings at start-up and refuses to start when any of them is invalid or unknown;',
    'the error names every offending setting and why.',
    '',
    '- **Environment variables**: the names below. Unknown variables starting with `VCLERK_` are errors (typos do not pass silently).',
    '- **Secret files**: append `_FILE` to any variable name to read its value from a file (for Docker secrets),',
    '  e.g. `DATABASE_URL_FILE=/run/secrets/database_url`. A trailing newline is ignored. Setting both forms is an error.',
    `- **Config file**: \`${CONFIG_FILE_ENV}\` may name a JSON file whose keys are the names in the "Key" column,`,
    '  e.g. `{ "port": 8080, "dataDir": "/var/lib/vclerk" }`. Environment variables override the file.',
    '- **Secrets** are never logged and never echoed in error messages.',
    '',
    '| Environment variable | Key | Type | Default | Secret | Description |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
