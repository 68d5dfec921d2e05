import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { renderConfigReference } from '../config/docs';
import { schema } from '../config/schema';

describe('configuration reference', () => {
  it('docs/configuration.md matches the schema (run `npm run config:docs` after changing a setting)', () => {
    const committed = fs.readFileSync(path.join(__dirname, '..', 'docs', 'configuration.md'), 'utf8');
    assert.equal(committed, renderConfigReference());
  });

  it('.env.example (for docker compose) mentions every setting', () => {
    const example = fs.readFileSync(path.join(__dirname, '..', '.env.example'), 'utf8');
    const missing = Object.values(schema).map((spec) => spec.env).filter((env) => !new RegExp(`^#? ?${env}=`, 'm').test(example));
    assert.deepEqual(missing, []);
  });

  it('documents every setting with an environment variable and a description', () => {
    for (const [key, spec] of Object.entries(schema)) {
      assert.match(spec.env, /^(VCLERK_[A-Z0-9_]+|DATABASE_URL|DATABASE_OWNER_URL|MEDIASOUP_WORKER_BIN|FFMPEG_PATH)$/, key);
      assert.ok(spec.description.length > 20, `${key} needs a description`);
    }
  });
});
