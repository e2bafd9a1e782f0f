/**
 * Wall time and the process's CPU time (all its threads: the snapshot's parser runs in a worker) from now: on a
 * machine shared with other work, the wall time says how long the operator waits, the CPU time what the run costs.
 */
export function stopwatch(): { seconds(): number; cpuSeconds(): number } {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return {
    seconds: () => (performance.now() - wall) / 1000,
    cpuSeconds: () => {
      const used = process.cpuUsage(cpu);
      return (used.user + used.system) / 1e6;
    },
  };
}
