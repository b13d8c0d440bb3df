// kvrfd entry point. The reconcile loop lands with issue #4; this build only answers --version
// and --help so the packaging and the DaemonSet can be exercised end to end.
const version = process.env["KVRF_VERSION"] ?? "0.1.0";

function main(argv: readonly string[]): number {
  if (argv.includes("--version")) {
    process.stdout.write(`kvrfd ${version}\n`);
    return 0;
  }
  process.stderr.write("usage: kvrfd [--version]\nthe reconciler is not implemented in this build\n");
  return argv.includes("--help") ? 0 : 2;
}

process.exitCode = main(process.argv.slice(2));
