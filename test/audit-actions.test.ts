import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openApiDocument } from '../app/api/openapi';
import { auditActions } from '../app/audit/actions';

const APP = path.join(__dirname, '..', 'app');

/** Every .ts file under app/ except the action list itself and the migrations, with its code (type declarations left out). */
function sources(): { file: string; text: string }[] {
  const files = fs.readdirSync(APP, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => !f.endsWith(path.join('audit', 'actions.ts')) && !f.includes(`${path.sep}migrations${path.sep}`));
  // Type declarations name actions without writing them (`Extract<AuditAction, 'api.request' | ...>`).
  const code = (text: string) => text.split('\n').filter((line) => !/^\s*(export )?type |Extract</.test(line)).join('\n');
  return files.map((file) => ({ file, text: code(fs.readFileSync(file, 'utf8')) }));
}

/**
 * Whether the source writes `action`: the action as a string literal, or
 * its name as a literal when some file builds `<group>.${...}` (the
 * catalog writes `catalog.${change}` with the change named by its callers).
 */
function written(action: string, files: { text: string }[]): boolean {
  const [group, name] = action.split('.') as [string, string];
  if (files.some(({ text }) => text.includes(`'${action}'`))) return true;
  return files.some(({ text }) => text.includes(`\`${group}.\${`)) && files.some(({ text }) => text.includes(`'${name}'`));
}

describe('audit actions and the API description say what is written', () => {
  it('every action the audit filters offer is written somewhere in app/', () => {
    const files = sources();
    assert.deepEqual(auditActions.filter((a) => !written(a, files)), []);
  });

  it('the filters do not offer api.request (accepted API requests go to the API request log)', () => {
    assert.equal((auditActions as readonly string[]).includes('api.request'), false);
    assert.equal((auditActions as readonly string[]).includes('api.refused'), true);
  });

  it('the OpenAPI description no longer claims that accepted requests are audited', () => {
    const text = openApiDocument().info.description;
    assert.doesNotMatch(text, /every request is audited/i);
    assert.match(text, /Accepted requests are written to the organisation's API request log/);
    assert.match(text, /refused requests .* are recorded in the audit trail \(aggregated per source\)/);
  });
});
