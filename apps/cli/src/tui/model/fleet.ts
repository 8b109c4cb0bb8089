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

/** The newest audit entries, new ones arriving by event, and the last chain verification. */
export class AuditStore extends Emitter {
  private entries: AuditEntry[] = [];
  /** Set when the token may not read the audit log (a viewer). */
  forbidden: string | null = null;
  /** The last check of the chain: its result, when, and the newest entry it covered. */
  verification: { result: AuditVerifyResult; at: number; upTo: number } | null = null;

  load(entries: readonly AuditEntry[]): void {
    this.entries = [...entries].sort((a, b) => b.seq - a.seq);
    this.forbidden = null;
    this.changed();
  }

  append(e: AuditEntry): void {
    if (this.entries.some((x) => x.seq === e.seq)) return;
    this.entries = [e, ...this.entries].sort((a, b) => b.seq - a.seq).slice(0, 5000);
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
