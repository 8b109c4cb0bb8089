import type { BusLogger } from "./types.ts";

/** A set of listeners where one that throws is logged and does not stop delivery to the others. */
export class Listeners<T> {
  readonly #listeners = new Set<(value: T) => void>();
  readonly #what: string;
  readonly #logger: BusLogger;

  constructor(what: string, logger: BusLogger) {
    this.#what = what;
    this.#logger = logger;
  }

  add(listener: (value: T) => void): () => void {
    // Wrapped so that adding the same function twice gives two independent subscriptions.
    const entry = (value: T) => listener(value);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Iterates the live set, so a listener removed by an earlier one in the same round is not called. */
  emit(value: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(value);
      } catch (err) {
        this.#logger.error({ err: describeError(err) }, `${this.#what} listener threw`);
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
