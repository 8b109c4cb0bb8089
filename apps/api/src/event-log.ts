import type { SkiffEvent, Topic } from "@skiff/protocol";
import { topicOf } from "@skiff/protocol";

export interface LoggedEvent {
  id: number;
  topic: Topic;
  event: SkiffEvent;
}

/**
 * The recent events this replica saw on the bus, numbered, so an SSE client that reconnects with
 * `Last-Event-ID` gets what it missed. A client too far behind is told to reload instead.
 */
export class EventLog {
  private readonly ring: LoggedEvent[] = [];
  private nextId = 1;
  private readonly listeners = new Set<(e: LoggedEvent) => void>();

  constructor(private readonly capacity = 5000) {}

  append(event: SkiffEvent): void {
    const entry: LoggedEvent = { id: this.nextId++, topic: topicOf(event.name), event };
    this.ring.push(entry);
    if (this.ring.length > this.capacity) this.ring.shift();
    for (const l of this.listeners) l(entry);
  }

  /** Events after `id`, or null when some of them have already been dropped. */
  since(id: number): LoggedEvent[] | null {
    const first = this.ring[0];
    if (id >= this.nextId - 1) return [];
    if (!first || id < first.id - 1) return null;
    return this.ring.filter((e) => e.id > id);
  }

  get lastId(): number {
    return this.nextId - 1;
  }

  listen(fn: (e: LoggedEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
