import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { root } from './support/process';

/**
 * docker/Dockerfile builds only through the repository's scripts, and CI
 * (which has no Docker engine) runs the same scripts in the same order.
 */
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const dockerfile = read('docker/Dockerfile').replace(/\\\n/g, ' ');
const stages = dockerfile.split(/^FROM /m).slice(1).map((s) => `FROM ${s}`);
const [build, runtime] = stages as [string, string];
const runLines = (stage: string) => [...stage.matchAll(/^RUN (.*)$/gm)].map((m) => m[1]!);
/** The repository scripts a text calls, in order: `bash <path> [argument]`. */
const scriptCalls = (text: string) => [...text.matchAll(/bash ((?:media\/)?scripts\/[\w-]+\.sh)(?: (--?[\w-]+|deps|build|prune))?/g)].map((m) => `${m[1]}${m[2] ? ` ${m[2]}` : ''}`);

describe('docker/Dockerfile', () => {
  it('builds on node:20-bookworm and runs on node:20-bookworm-slim', () => {
    assert.equal(stages.length, 2);
    assert.match(dockerfile, /^ARG BUILD_IMAGE=node:20-bookworm$/m);
    assert.match(dockerfile, /^ARG RUNTIME_IMAGE=node:20-bookworm-slim$/m);
    assert.match(build, /^FROM \$\{BUILD_IMAGE\} AS build/);
    assert.match(runtime, /^FROM \$\{RUNTIME_IMAGE\} AS runtime/);
  });

  it('the build stage only calls the repository scripts: deps, npm ci, worker, build, prune', () => {
    for (const line of runLines(build)) assert.match(line, /^bash (media\/)?scripts\/[\w-]+\.sh( [\w-]+)?(\s+&&\s+bash (media\/)?scripts\/[\w-]+\.sh( [\w-]+)?)*$/, line);
    assert.deepEqual(scriptCalls(runLines(build).join('\n')), [
      'media/scripts/install-deps.sh --build',
      'scripts/build-app.sh deps',
      'media/scripts/build-worker.sh',
      'scripts/build-app.sh build',
      'scripts/build-app.sh prune',
    ]);
  });

  it('the runtime stage installs the runtime packages by script, runs as vclerk, and checks /healthz with node', () => {
    assert.match(runtime, /bash \/tmp\/install-deps\.sh --runtime/);
    assert.match(runtime, /^COPY media\/scripts\/install-deps\.sh /m);
    assert.match(runtime, /^COPY --from=build \/app\/media\/bin \.\/media\/bin$/m);
    assert.match(runtime, /^USER vclerk$/m);
    assert.match(runtime, /^HEALTHCHECK .*CMD \["node", "docker\/healthcheck\.js"\]$/m);
    assert.match(fs.readFileSync(path.join(root, 'docker', 'healthcheck.js'), 'utf8'), /\/healthz/);
    assert.match(runtime, /^ENTRYPOINT \["\/app\/docker\/entrypoint"\]$/m);
    assert.doesNotMatch(runtime, /^(RUN|HEALTHCHECK).*\b(curl|wget)\b/m);
  });

  it('CI runs the same build scripts in the same order (scripts/stage-runtime.sh), after `npm run setup` built the worker', () => {
    const stage = scriptCalls(read('scripts/stage-runtime.sh'));
    assert.deepEqual(stage, scriptCalls(runLines(build).join('\n')).filter((call) => !call.startsWith('media/scripts/install-deps.sh')));
    const ci = read('.ci/run');
    assert.match(ci, /bash scripts\/build-app\.sh deps/);
    assert.match(ci, /npm run setup/);
    assert.match(ci, /bash scripts\/stage-runtime\.sh /);
    assert.match(ci, /PRODUCTION_APP_DIR=.* test\/production-start\.test\.ts/);
    assert.match(read('media/scripts/setup.sh'), /install-deps\.sh" "\$@"[\s\S]*build-worker\.sh"/);
  });
});
