import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LAYERS, layerOf } from './support/layers';

const root = path.join(__dirname, '..');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(rel);
    return /\.ts$/.test(entry.name) ? [rel] : [];
  });
}

/** Every relative module a file names: static imports and exports, `import()` and `require()`. */
function relativeImports(file: string): { line: number; target: string }[] {
  const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n');
  const found: { line: number; target: string }[] = [];
  const pattern = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;
  lines.forEach((text, index) => {
    for (const match of text.matchAll(pattern)) {
      found.push({ line: index + 1, target: path.posix.normalize(path.posix.join(path.posix.dirname(file), match[2]!)) });
    }
  });
  return found;
}

describe('layers: imports under app/ run one way (feature → shared → database → core/config)', () => {
  const files = [...sourceFiles('app'), ...sourceFiles('config'), ...sourceFiles('media')];

  it('every folder of app/ has a layer', () => {
    const folders = fs.readdirSync(path.join(root, 'app'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `app/${e.name}`);
    const unplaced = folders.filter((folder) => layerOf(`${folder}/x.ts`) === undefined);
    assert.deepEqual(unplaced, [], 'folders without a layer in test/support/layers.ts (and docs/architecture.md)');
  });

  it('no file imports a folder of a higher layer than its own', () => {
    const problems: string[] = [];
    for (const file of files) {
      const own = layerOf(file);
      assert.ok(own !== undefined, `${file} has no layer`);
      for (const { line, target } of relativeImports(file)) {
        const theirs = layerOf(target);
        if (theirs === undefined) problems.push(`${file}:${line} imports ${target}, which has no layer`);
        else if (theirs.rank > own.rank) problems.push(`${file}:${line} (${own.name}) imports ${target} (${theirs.name})`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('media/ and config/ import nothing of app/', () => {
    const problems = files
      .filter((file) => !file.startsWith('app/'))
      .flatMap((file) => relativeImports(file).filter(({ target }) => target.startsWith('app/')).map(({ line, target }) => `${file}:${line} imports ${target}`));
    assert.deepEqual(problems, []);
  });

  it('the layer list names only folders that exist', () => {
    const missing = LAYERS.flatMap((layer) => layer.folders).filter((folder) => !fs.existsSync(path.join(root, folder)));
    assert.deepEqual(missing, []);
  });

  it('fails on an import against the layers (the check itself can fail)', () => {
    const shared = layerOf('app/http/forms.ts');
    const feature = layerOf('app/catalog/service.ts');
    assert.ok(shared && feature && feature.rank > shared.rank);
  });
});
