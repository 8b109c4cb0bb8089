/**
 * Gathers what is sent during one turn of the event loop into one batch: on a busy replica a
 * hundred requests that each send a wake-up cost one Redis PUBLISH instead of a hundred (the
 * protocol profile showed per-message round trips and their syscalls high in the API's CPU time).
 * Each caller's promise settles with the send of the batch it joined; order is kept.
 */
export class Coalescer<T> {
  #items: T[] = [];
  #waiters: { resolve(): void; reject(err: unknown): void }[] = [];
  #scheduled = false;

  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly maxBatch = 500,
  ) {}

  push(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#items.push(item);
      this.#waiters.push({ resolve, reject });
      if (this.#items.length >= this.maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#flush();
        });
      }
    });
  }

  #flush(): void {
    if (this.#items.length === 0) return;
    const items = this.#items;
    const waiters = this.#waiters;
    this.#items = [];
    this.#waiters = [];
    let sending: Promise<void>;
    try {
      sending = this.send(items);
    } catch (err) {
      sending = Promise.reject(err);
    }
    sending.then(
      () => {
        for (const w of waiters) w.resolve();
      },
      (err: unknown) => {
        for (const w of waiters) w.reject(err);
      },
    );
  }
}
