// Bundles the browser call client: client/call/main.ts -> public/build/call.js
// (+ .map), one minified IIFE for current browsers. Served by the app as
// asset('build/call.js'). `node client/build.mjs` builds once; `--watch`
// rebuilds on every change.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const options = {
  absWorkingDir: root,
  entryPoints: ['client/call/main.ts'],
  outfile: 'public/build/call.js',
  tsconfig: 'client/tsconfig.json',
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: ['es2020', 'chrome100'],
  minify: true,
  sourcemap: true,
  // Without a source map comment pointing elsewhere, the map sits next to the bundle.
  sourcesContent: true,
  legalComments: 'eof',
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  logLevel: 'warning',
};

function report(metafile) {
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (file.endsWith('.map')) continue;
    console.log(`client: ${file} ${(output.bytes / 1024).toFixed(1)} KiB`);
  }
}

if (watch) {
  const context = await esbuild.context({
    ...options,
    plugins: [
      {
        name: 'report',
        setup(build) {
          build.onEnd((result) => {
            if (result.errors.length === 0 && result.metafile) report(result.metafile);
          });
        },
      },
    ],
  });
  await context.watch();
  console.log('client: watching client/ for changes (Ctrl-C to stop)');
} else {
  try {
    const result = await esbuild.build(options);
    report(result.metafile);
  } catch {
    // esbuild has already printed the errors.
    process.exitCode = 1;
  }
}
