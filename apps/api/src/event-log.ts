import {
  EVENT_SCHEMAS,
  type EventName,
  parseEvent,
  type SkiffEvent,
  type Topic,
  topicOf,
} from "@skiff/protocol";
import type { Store, StoredEvent } from "@skiff/store";
import type { FastifyBaseLogger } from "fastify";
import { sseFrameOfJson } from "./sse.ts";

/**
 * One event as this replica relays it: its global position (its SSE id), its topic and the SSE frame,
 * made once from the payload's text for every subscriber. The payload is parsed (and validated)
 * only when something here reads it.
 */
export class LoggedEvent {
  readonly frame: string;
  private parsed: SkiffEvent | null = null;

  constructor(
    readonly id: number,
    readonly name: EventName,
    readonly topic: Topic,
    private readonly payloadText: string,
  ) {
    this.frame = sseFrameOfJson(name, payloadText, id);
  }

  get event(): SkiffEvent {
    this.parsed ??= parseEvent({ name: this.name, payload: JSON.parse(this.payloadText) });
    return this.parsed;
  }
}

export interface EventFeedOptions {
  /** Recent events held in memory, so most resumes need no query. */
  capacity?: number;
  /** How often the log is read even without a notification (one may be lost). */
  pollMs?: number;
  /** Numbered events older than this are deleted (the newest thousand are always kept). */
  retentionSeconds: number;
  pruneEveryMs?: number;
}

const PAGE = 1000;

/**
 * This replica's view of the event log in the database. Every change records its events in its own
 * transaction (see the store's `sql/events.ts`); the feed hears of them (LISTEN/NOTIFY, in-process
 * on PGlite), numbers what is committed and not yet numbered, reads the new range in order and
 * hands it to subscribers. Every replica reads the same log, so every console sees the same events
 * in the same order with the same ids, whichever replica it is attached to, and a reconnecting
 * client gets exactly what it missed.
 */
export class EventFeed {
  private readonly ring: LoggedEvent[] = [];
  private lastSeq = 0;
  private readonly listeners = new Set<(batch: LoggedEvent[]) => void>();
  private pumping: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private unlisten: (() => Promise<void>) | null = null;
  private poll: NodeJS.Timeout | null = null;
  private prune: NodeJS.Timeout | null = null;
  private readonly capacity: number;
  readonly started: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
    private readonly opts: EventFeedOptions,
  ) {
    this.capacity = opts.capacity ?? 10_000;
    this.started = this.start();
    this.started.catch((err) => log.error({ err }, "the event feed could not start; consoles get no events"));
  }

  private async start(): Promise<void> {
    // A new replica starts at the end: its subscribers ask for older events by id.
    await this.store.numberEvents();
    this.lastSeq = (await this.store.eventBounds()).last;
    // This process's own changes wake the relay at once; other processes' changes and other
    // replicas' numbering arrive as NOTIFYs.
    const unwrote = this.store.onWrote(() => this.wake());
    const unlisten = await this.store.onEvents(() => this.wake());
    if (this.stopped) {
      unwrote();
      await unlisten();
      return;
    }
    this.unlisten = async () => {
      unwrote();
      await unlisten();
    };
    this.poll = setInterval(() => this.wake(), this.opts.pollMs ?? 1_000);
    this.poll.unref();
    this.prune = setInterval(() => {
      this.store
        .pruneEvents(this.opts.retentionSeconds)
        .catch((err) => this.log.warn({ err }, "could not prune old events"));
    }, this.opts.pruneEveryMs ?? 60_000);
    this.prune.unref();
    this.wake();
  }

  /** The newest position this replica has delivered. */
  get lastId(): number {
    return this.lastSeq;
  }

  /** Reads what is new: coalesced, so a burst of notifications costs one pass or two. */
  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.again && !this.stopped) {
        this.again = false;
        this.wake();
      }
    });
  }

  private retryTimer: NodeJS.Timeout | null = null;

  private retrySoon(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.wake();
    }, 5);
    this.retryTimer.unref();
  }

  /** Resolves once everything committed before the call has been delivered here. */
  async caughtUp(): Promise<void> {
    await this.started;
    while (this.pumping) await this.pumping;
    this.wake();
    while (this.pumping) await this.pumping;
  }

  private async pump(): Promise<void> {
    try {
      // Another replica is numbering: its range arrives with its NOTIFY, and a look shortly after
      // numbers whatever committed behind its back.
      if ((await this.store.numberEvents()) < 0) this.retrySoon();
      for (;;) {
        const rows = await this.store.eventsAfter(this.lastSeq, PAGE);
        const batch = rows.map((r) => this.toLogged(r)).filter((e): e is LoggedEvent => e !== null);
        if (rows.length > 0) this.lastSeq = rows[rows.length - 1]?.seq ?? this.lastSeq;
        if (batch.length > 0) {
          this.ring.push(...batch);
          if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
          for (const l of this.listeners) l(batch);
        }
        if (rows.length < PAGE) return;
      }
    } catch (err) {
      this.log.warn({ err }, "could not read the event log; retrying");
    }
  }

  private toLogged(r: StoredEvent): LoggedEvent | null {
    // The store wrote it; only a name this version does not know is skipped. A payload is not parsed
    // here (at thousands of events a second that was most of the relay's cost), and a line break in
    // it would end the SSE frame early, which the database's JSON text never has.
    if (!(r.name in EVENT_SCHEMAS) || r.payloadText.includes("\n")) {
      this.log.error({ seq: r.seq, name: r.name }, "skipping an event this version cannot relay");
      return null;
    }
    const name = r.name as EventName;
    return new LoggedEvent(r.seq, name, topicOf(name), r.payloadText);
  }

  /**
   * Up to `limit` events after `id`, in order, no further than what this replica has delivered;
   * null when some of them are no longer kept (or `id` is from a log this database never had), so
   * the client must reload. The newest events come from memory, older ones from the table; which
   * ids are kept is the table's answer either way, so every replica answers the same.
   */
  async since(id: number, limit = PAGE): Promise<LoggedEvent[] | null> {
    await this.started;
    const upTo = this.lastSeq;
    const bounds = await this.store.eventBounds();
    // Ahead of the log itself: not an id this database gave.
    if (id > bounds.last) return null;
    // Ahead of this replica but not of the log: another replica delivered it first.
    if (id >= upTo) return [];
    if (id < bounds.first - 1) return null;
    const first = this.ring[0];
    if (first && id >= first.id - 1) {
      const out: LoggedEvent[] = [];
      for (const e of this.ring) {
        if (e.id <= id) continue;
        if (e.id > upTo || out.length >= limit) break;
        out.push(e);
      }
      return out;
    }
    const rows = await this.store.eventsAfter(id, limit);
    const out: LoggedEvent[] = [];
    for (const r of rows) {
      if (r.seq > upTo) break;
      const e = this.toLogged(r);
      if (e) out.push(e);
    }
    return out;
  }

  listen(fn: (batch: LoggedEvent[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    if (this.prune) clearInterval(this.prune);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.started.catch(() => {});
    await this.pumping;
    await this.unlisten?.();
  }
}
