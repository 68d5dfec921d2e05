import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { root } from './support/process';

/**
 * docker/Dockerfile builds only through the repository's scripts, and CI
 * builds it for real (scripts/test-image.sh, test/image).
 */
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const dockerfile = read('docker/Dockerfile').replace(/\\\n/g, ' ');
const stages = dockerfile.split(/^FROM /m).slice(1).map((s) => `FROM ${s}`);
const [ffmpeg, build, runtime] = stages as [string, string, string];
const runLines = (stage: string) => [...stage.matchAll(/^RUN (.*)$/gm)].map((m) => m[1]!);
/** The repository scripts a text calls, in order: `bash <path> [argument]`. */
const scriptCalls = (text: string) => [...text.matchAll(/bash ((?:media\/)?scripts\/[\w-]+\.sh)(?: (--?[\w-]+|deps|build|prune))?/g)].map((m) => `${m[1]}${m[2] ? ` ${m[2]}` : ''}`);

describe('docker/Dockerfile', () => {
  it('builds on node:20-bookworm and runs on node:20-bookworm-slim', () => {
    assert.equal(stages.length, 3);
    assert.match(ffmpeg, /^FROM \$\{BUILD_IMAGE\} AS ffmpeg/);
    assert.match(dockerfile, /^ARG BUILD_IMAGE=node:20-bookworm$/m);
    assert.match(dockerfile, /^ARG RUNTIME_IMAGE=node:20-bookworm-slim$/m);
    assert.match(build, /^FROM \$\{BUILD_IMAGE\} AS build/);
    assert.match(runtime, /^FROM \$\{RUNTIME_IMAGE\} AS runtime/);
  });

  it('ffmpeg is built from Debian\'s source package by script, and only its binary reaches the runtime', () => {
    assert.deepEqual(scriptCalls(runLines(ffmpeg).join('\n')), ['media/scripts/build-ffmpeg.sh']);
    assert.match(runtime, /^COPY --from=ffmpeg \/opt\/vclerk-ffmpeg\/bin\/ffmpeg \/usr\/local\/bin\/ffmpeg$/m);
    assert.match(read('media/scripts/build-ffmpeg.sh'), /apt-get source/);
    const deps = read('media/scripts/install-deps.sh');
    const runtimePackages = /^runtime=\((.*)\)$/m.exec(deps)?.[1]?.split(/\s+/) ?? [];
    assert.ok(!runtimePackages.includes('ffmpeg'), 'the runtime stage does not install Debian\'s ffmpeg package');
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

  it('CI builds the image and starts the compose file for real after the tests (scripts/test-image.sh)', () => {
    const ci = read('.ci/run');
    assert.match(ci, /npm run setup/);
    assert.ok(ci.indexOf('npm run test:image') > ci.indexOf('npm test'), 'the image tests run after npm test');
    const script = read('scripts/test-image.sh');
    assert.match(script, /scripts\/ci-engine\.sh/);
    assert.match(script, /scripts\/ci-images\.sh --env/);
    // The app's image from docker/Dockerfile by default (the HAProxy example's image names its own).
    assert.match(script, /file="\$\{3:-\$2\/docker\/Dockerfile\}"/);
    assert.match(script, /build --file "\$file"/);
    assert.match(script, /test\/image\/\*\.image\.ts/);
    assert.match(read('media/scripts/setup.sh'), /install-deps\.sh" "\$@"[\s\S]*build-worker\.sh"/);
  });
});
