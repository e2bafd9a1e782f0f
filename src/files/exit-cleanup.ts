const pending = new Set<() => void>();

// A signal handler that ends the process with process.exit skips every pending await and finally block; only
// 'exit' listeners still run, and only their synchronous work.
process.on('exit', () => {
  for (const cleanup of pending) {
    try {
      cleanup();
    } catch {
      // One cleanup that fails must not keep the others from running.
    }
  }
});

/**
 * Runs `cleanup` (synchronous) if the process exits before the returned function is called, e.g. to remove a
 * temp file or a lock that the interrupted code would have removed itself.
 */
export function cleanupOnExit(cleanup: () => void): () => void {
  pending.add(cleanup);
  return () => {
    pending.delete(cleanup);
  };
}
