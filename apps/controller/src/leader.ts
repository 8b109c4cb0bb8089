import type { Store } from "@skiff/store";

// The session advisory lock every controller competes for; the holder is the leader.
const LEADER_LOCK = 7_270_010;

export interface LeaderState {
  leading: boolean;
  epoch: number | null;
  holder: string;
}

/**
 * Leader election on a PostgreSQL session advisory lock: whoever holds it leads. Winning bumps the
 * leader epoch stored with the fleet, and every later write carries it, so a deposed leader's late
 * writes are refused. If the process dies its connection closes and the lock is free at once.
 */
export class LeaderElector {
  private state: LeaderState;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly store: Store,
    holder: string,
    private readonly pollMs = 1_000,
    private readonly onChange: (s: LeaderState) => void = () => {},
  ) {
    this.state = { leading: false, epoch: null, holder };
  }

  get current(): LeaderState {
    return this.state;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Called when a fenced write was refused: someone else leads now. */
  deposed(): void {
    if (!this.state.leading) return;
    this.set({ leading: false, epoch: null });
  }

  private set(patch: Partial<LeaderState>) {
    this.state = { ...this.state, ...patch };
    this.onChange(this.state);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.store.db.session(async (q) => {
          while (!this.stopped) {
            const got = await q.query<{ ok: boolean }>("select pg_try_advisory_lock($1) as ok", [
              LEADER_LOCK,
            ]);
            if (got.rows[0]?.ok) break;
            await this.sleep(this.pollMs);
          }
          if (this.stopped) return;
          const { value } = await this.store.takeLeadership(this.state.holder);
          this.set({ leading: true, epoch: value.epoch });
          try {
            // Hold the lock on this connection; a failing ping means the lock may be gone.
            while (!this.stopped && this.state.leading) {
              await this.sleep(this.pollMs);
              await q.query("select 1");
            }
          } finally {
            if (this.state.leading) this.set({ leading: false, epoch: null });
            await q.query("select pg_advisory_unlock($1)", [LEADER_LOCK]).catch(() => {});
          }
        });
      } catch {
        if (this.state.leading) this.set({ leading: false, epoch: null });
        if (!this.stopped) await this.sleep(this.pollMs);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }
}
