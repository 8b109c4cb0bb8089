import type { AuditEntry, AuditVerifyResult, EventPayload } from "@skiff/protocol";
import type { FleetView } from "../data/schemas.ts";
import { Emitter } from "./emitter.ts";

/** The fleet as `GET /v1/fleet` last said, with `fleet.changed` settings merged in until the next fetch. */
export class FleetStore extends Emitter {
  view: FleetView | null = null;

  set(view: FleetView): void {
    this.view = view;
    this.changed();
  }

  merge(p: EventPayload<"fleet.changed">): void {
    if (!this.view) return;
    const { reason: _reason, leaderEpoch: _epoch, ...settings } = p;
    this.view = { ...this.view, ...settings };
    if (this.view.mode === "manual") this.view.desired = this.view.replicas;
    this.changed();
  }
}

/** How many audit entries the console keeps as new ones arrive (older pages asked for come on top). */
const AUDIT_CAP = 5000;

/** The newest audit entries, new ones arriving by event, and the last chain verification. */
export class AuditStore extends Emitter {
  private entries: AuditEntry[] = [];
  /** Set when the token may not read the audit log (a viewer). */
  forbidden: string | null = null;
  /** The last check of the chain: its result, when, and the newest entry it covered. */
  verification: { result: AuditVerifyResult; at: number; upTo: number } | null = null;

  /** Where the next older page starts on the server; null when the log has no more. */
  olderCursor: string | null = null;
  /** How many entries are kept: the newest AUDIT_CAP, plus every older page the operator asked for. */
  private cap = AUDIT_CAP;

  load(entries: readonly AuditEntry[], olderCursor: string | null = null): void {
    this.entries = [...entries].sort((a, b) => b.seq - a.seq);
    this.olderCursor = olderCursor;
    this.cap = AUDIT_CAP;
    this.forbidden = null;
    this.changed();
  }

  /** An older page the operator asked for, kept below the newer entries; how many were new. */
  addOlder(entries: readonly AuditEntry[], nextCursor: string | null): number {
    const have = new Set(this.entries.map((e) => e.seq));
    const fresh = entries.filter((e) => !have.has(e.seq));
    this.entries = [...this.entries, ...fresh].sort((a, b) => b.seq - a.seq);
    this.cap += fresh.length;
    this.olderCursor = nextCursor;
    this.changed();
    return fresh.length;
  }

  append(e: AuditEntry): void {
    if (this.entries.some((x) => x.seq === e.seq)) return;
    const kept = [e, ...this.entries].sort((a, b) => b.seq - a.seq);
    // Entries dropped off the end are older than the rest: M fetches them again.
    const last = kept.length > this.cap ? kept[this.cap - 1] : undefined;
    this.entries = kept.slice(0, this.cap);
    if (last) this.olderCursor = String(last.seq);
    this.changed();
  }

  deny(message: string): void {
    this.forbidden = message;
    this.changed();
  }

  /** The newest entry's sequence number (0 when there is none). */
  newest(): number {
    return this.entries[0]?.seq ?? 0;
  }

  verified(result: AuditVerifyResult, upTo: number, at = Date.now()): void {
    this.verification = { result, at, upTo };
    this.changed();
  }

  /** Newest first. */
  list(): readonly AuditEntry[] {
    return this.entries;
  }
}
