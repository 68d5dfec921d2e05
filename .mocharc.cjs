// Tests are TypeScript, loaded through tsx. The root hooks start one real
// PostgreSQL for the run (embedded unless DATABASE_URL is set); each test
// file takes its own fresh database from a migrated template.
// `npx mocha test/x.test.ts` runs just that file: mocha would add the
// configured spec to files named on the command line, so the default spec
// applies only when none is named.
const named = process.argv.slice(2).some((arg) => /\.test\.ts$/.test(arg));
module.exports = {
  require: ['tsx/cjs', 'test/support/hooks.ts'],
  ...(named ? {} : { spec: ['test/**/*.test.ts'] }),
  extension: ['ts'],
  timeout: 60000,
  reporter: 'test/support/reporter.js',
  exit: true,
};
