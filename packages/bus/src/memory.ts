import { parseEvent, type SkiffEvent } from "@skiff/protocol";
import { Listeners } from "./listeners.ts";
import { type Bus, BusClosedError, type BusLogger, consoleLogger } from "./types.ts";
import { checkQueueName } from "./wake.ts";

export interface MemoryBusOptions {
  logger?: BusLogger;
}

/** The bus of a single process (combined mode): no network, same contract as the Redis bus. */
export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  const logger = options.logger ?? consoleLogger;
  const events = new Listeners<SkiffEvent>("event", logger);
  const wakes = new Listeners<string>("wake", logger);
  let closed = false;

  function ensureOpen(): void {
    if (closed) throw new BusClosedError();
  }

  return {
    kind: "memory",
    async publish(event) {
      ensureOpen();
      // Validated like the Redis bus does, so a malformed event fails here too and listeners get a
      // fresh copy they cannot share with the publisher.
      const copy = parseEvent(event);
      // Asynchronous so a publisher never runs listener code on its own stack.
      queueMicrotask(() => events.emit(copy));
    },
    subscribe: (listener) => events.add(listener),
    async wake(queue) {
      ensureOpen();
      checkQueueName(queue);
      queueMicrotask(() => wakes.emit(queue));
    },
    onWake: (listener) => wakes.add(listener),
    async ping() {
      ensureOpen();
    },
    async close() {
      closed = true;
      events.clear();
      wakes.clear();
    },
  };
}
