/**
 * Runs a benchmark's main and ends the process with its outcome: 1 when it
 * threw or set `process.exitCode`, else 0. Needed because the embedded
 * PostgreSQL's exit hook (async-exit-hook, on `beforeExit`) ends the process
 * with 0 otherwise, whatever `process.exitCode` says.
 */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(Number(process.exitCode ?? 0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
