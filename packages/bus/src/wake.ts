/**
 * Wake-ups travel as `{"queues": ["<name>", ...]}` (one message per batch) or, from older
 * publishers and tools, `{"queue": "<name>"}`; queue names must be non-empty.
 */

export function checkQueueName(queue: string): void {
  if (queue === "") throw new Error("wake: the queue name must not be empty");
}

/** Validates a wake-up read off the wire (untrusted: another process wrote it). */
export function parseWakeMessage(raw: unknown): string[] {
  if (typeof raw === "object" && raw !== null) {
    if ("queue" in raw && typeof raw.queue === "string") {
      checkQueueName(raw.queue);
      return [raw.queue];
    }
    if ("queues" in raw && Array.isArray(raw.queues) && raw.queues.every((q) => typeof q === "string")) {
      for (const q of raw.queues) checkQueueName(q);
      return raw.queues;
    }
  }
  throw new Error('wake: expected {"queues": [string, ...]} or {"queue": string}');
}
