import { type AgentLogger, type RunningWorker, startWorker, type WorkerConfigInput } from "@skiff/worker";
import type { Scaler } from "./types.ts";

/** Workers inside this process (the combined node). They leave when a drain ends them. */
export function createEmbeddedScaler(
  base: Omit<WorkerConfigInput, "name">,
  namePrefix: string,
  log: AgentLogger,
): Scaler & { workers(): RunningWorker[] } {
  const workers = new Map<string, RunningWorker>();
  let next = 1;
  return {
    kind: "embedded",
    list: () => [...workers.keys()],
    workers: () => [...workers.values()],
    async add(n) {
      for (let i = 0; i < n; i++) {
        const name = `${namePrefix}-${next++}`;
        const w = await startWorker({ ...base, name, healthPort: null }, log);
        workers.set(name, w);
        void w.agent.stopped.then(() => {
          if (workers.get(name) === w) workers.delete(name);
        });
      }
    },
    async close() {
      await Promise.all([...workers.values()].map((w) => w.stop("controller stopping")));
      workers.clear();
    },
  };
}
