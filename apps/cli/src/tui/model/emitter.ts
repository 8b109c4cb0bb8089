/** A store's change notification: listeners run on every change, `version` counts them (for caches). */
export class Emitter {
  private readonly listeners = new Set<() => void>();
  version = 0;

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  protected changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }
}

/** Recomputes `compute` only when one of the keys changed since the last call. */
export function memo<K extends readonly unknown[], V>(compute: (...keys: K) => V): (...keys: K) => V {
  let last: K | null = null;
  let value: V;
  return (...keys: K) => {
    if (last === null || keys.length !== last.length || keys.some((k, i) => k !== last?.[i])) {
      value = compute(...keys);
      last = keys;
    }
    return value;
  };
}
