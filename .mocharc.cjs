// Tests are TypeScript, loaded through tsx. The root hooks start one real
// PostgreSQL for the run (embedded unless DATABASE_URL is set); each test
// file takes its own fresh database from a migrated template.
module.exports = {
  require: ['tsx/cjs', 'test/support/hooks.ts'],
  spec: ['test/**/*.test.ts'],
  extension: ['ts'],
  timeout: 60000,
  reporter: 'test/support/reporter.js',
  exit: true,
};
