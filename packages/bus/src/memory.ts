import { Listeners } from "./listeners.ts";
import { type Bus, BusClosedError, type BusLogger, consoleLogger } from "./types.ts";
import { checkQueueName } from "./wake.ts";

export interface MemoryBusOptions {
  logger?: BusLogger;
}

/** The bus of a single process (combined mode): no network, same contract as the Redis bus. */
export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  const logger = options.logger ?? consoleLogger;
  const wakes = new Listeners<string>("wake", logger);
  let closed = false;

  function ensureOpen(): void {
    if (closed) throw new BusClosedError();
  }

  return {
    kind: "memory",
    async wake(queue) {
      ensureOpen();
      checkQueueName(queue);
      // Asynchronous so a caller never runs listener code on its own stack.
      queueMicrotask(() => wakes.emit(queue));
    },
    onWake: (listener) => wakes.add(listener),
    async ping() {
      ensureOpen();
    },
    async close() {
      closed = true;
      wakes.clear();
    },
  };
}
