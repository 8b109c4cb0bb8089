/**
 * Key bindings as data. One table binds the keys, and the help screen and footer are drawn from the
 * same table, so what is shown is exactly what works. Dangerous bindings (anything that changes the
 * server) are left out altogether when changes are not allowed: they are not merely refused, they do
 * not exist, and so they do not appear in the help either.
 */
export interface KeyBinding {
  /** The key as the terminal layer names it: `j`, `G`, `:`, `enter`, `escape`, `C-l`, `up`. */
  key: string;
  aliases?: string[];
  description: string;
  handler: () => void;
  /** Changes the server: confirms first, and is not bound when read-only or for a viewer. */
  dangerous?: boolean;
  /** Shown in the footer's hints as well as in the help. */
  hint?: boolean;
}

export interface KeyGroup {
  title: string;
  bindings: KeyBinding[];
}

export function keysOf(b: KeyBinding): string[] {
  return [b.key, ...(b.aliases ?? [])];
}

export class KeyMap {
  private groups: KeyGroup[] = [];
  private readonly index = new Map<string, KeyBinding>();

  constructor(private readonly allowDangerous: () => boolean) {}

  /** Binds the groups, earlier groups winning a key over later ones (a view's keys over global ones). */
  set(groups: readonly KeyGroup[]): void {
    const allow = this.allowDangerous();
    this.index.clear();
    this.groups = [];
    for (const g of groups) {
      const bindings: KeyBinding[] = [];
      for (const b of g.bindings) {
        if (b.dangerous && !allow) continue;
        const free = keysOf(b).filter((k) => !this.index.has(k));
        if (free.length === 0) continue;
        const effective: KeyBinding = { ...b, key: free[0] ?? b.key, aliases: free.slice(1) };
        for (const k of free) this.index.set(k, effective);
        bindings.push(effective);
      }
      if (bindings.length > 0) this.groups.push({ title: g.title, bindings });
    }
  }

  /** What is bound now, by group: the help screen's content. */
  bound(): readonly KeyGroup[] {
    return this.groups;
  }

  /** Every key that does something now. */
  keys(): string[] {
    return [...this.index.keys()];
  }

  /** Runs the binding for `key`; false when nothing is bound to it. */
  dispatch(key: string): boolean {
    const b = this.index.get(key);
    if (!b) return false;
    b.handler();
    return true;
  }
}
