/** Wake-ups travel as `{"queue": "<name>"}`; the queue name must be non-empty. */

export function checkQueueName(queue: string): void {
  if (queue === "") throw new Error("wake: the queue name must not be empty");
}

/** Validates a wake-up read off the wire (untrusted: another process wrote it). */
export function parseWakeMessage(raw: unknown): string {
  if (typeof raw === "object" && raw !== null && "queue" in raw && typeof raw.queue === "string") {
    checkQueueName(raw.queue);
    return raw.queue;
  }
  throw new Error('wake: expected {"queue": string}');
}
