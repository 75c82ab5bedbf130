// Preloaded into the benchmark's gateways and proxies (with --expose-gc): SIGUSR2 runs a full
// garbage collection, so the memory figure counts what idle sessions retain, not garbage
// that merely has not been collected yet. Benchmark-only: never loaded by `warden start` itself.
process.on('SIGUSR2', () => {
  if (typeof global.gc === 'function') global.gc();
});
