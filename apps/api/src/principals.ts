import type { Bus } from "@skiff/bus";
import type { Store } from "@skiff/store";
import { authenticate, hashTokenCached, type Principal } from "./auth.ts";

const REVOKED = "token-revoked:";

/**
 * Remembers who a token is for a few seconds, so the hot agent calls do not look every token up
 * again. A revocation drops the entry on this replica at once and on the others through the bus;
 * the short TTL bounds the window if the bus is down. Unknown tokens are never cached.
 */
export class PrincipalCache {
  private readonly byHash = new Map<string, { who: Principal; until: number }>();
  private readonly stop: () => void;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly ttlMs = 5_000,
    private readonly maxEntries = 10_000,
  ) {
    this.stop = bus.onWake((key) => {
      if (key.startsWith(REVOKED)) this.drop(key.slice(REVOKED.length));
    });
  }

  async resolve(header: string | undefined): Promise<{ who: Principal | null; fresh: boolean }> {
    if (!header) return { who: null, fresh: false };
    const key = hashTokenCached(header);
    const hit = this.byHash.get(key);
    // Stryker disable next-line EqualityOperator: one millisecond more of a cache entry's life
    if (hit && hit.until > Date.now()) return { who: hit.who, fresh: false };
    const who = await authenticate(this.store, header);
    if (who) {
      if (this.byHash.size >= this.maxEntries) this.byHash.clear();
      this.byHash.set(key, { who, until: Date.now() + this.ttlMs });
      // Stryker disable next-line BlockStatement: an entry left here has expired (else it had been used above); this only frees memory
    } else {
      this.byHash.delete(key);
    }
    return { who, fresh: true };
  }

  /** Forgets a token (and the credentials of the agents it registered), or one agent's credential. */
  private drop(id: string): void {
    for (const [key, entry] of this.byHash)
      if (entry.who.tokenId === id || entry.who.agentId === id) this.byHash.delete(key);
  }

  /** After a revocation commits: forget it here and tell the other replicas. */
  async revoked(tokenId: string): Promise<void> {
    this.drop(tokenId);
    await this.bus.wake(`${REVOKED}${tokenId}`).catch(() => {});
  }

  /** After agents deregistered or went offline: their own credentials are dead here and on the other replicas. */
  async agentsGone(agentIds: string[]): Promise<void> {
    for (const id of agentIds) {
      this.drop(id);
      await this.bus.wake(`${REVOKED}${id}`).catch(() => {});
    }
  }

  close(): void {
    this.stop();
  }
}
