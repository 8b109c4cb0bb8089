import type { AuditEntry } from "@skiff/protocol";
import type { Emitter } from "../model/emitter.ts";
import type { Fields } from "../model/filter.ts";
import type { KeyBinding } from "../model/keys.ts";
import { AUDIT_PAGE } from "../model/sync.ts";
import { auditColumns, auditDetail, detailsText, verifyBadge } from "../render/audit.ts";
import { formatDateTime } from "../render/format.ts";
import type { Line } from "../render/style.ts";
import type { Column } from "../render/table.ts";
import { loadOlderKey } from "./listkeys.ts";
import { TableView } from "./table-view.ts";
import { Ticker, type ViewContext } from "./view.ts";

/** How often the Audit view re-checks the chain when newer entries have arrived. */
const RECHECK_MS = 5_000;

/** The audit log, newest first, filterable by actor, action, target and time; `v` checks the chain. */
export class AuditView extends TableView<AuditEntry> {
  readonly name = "audit";

  constructor(ctx: ViewContext) {
    super(ctx, null);
  }

  protected label() {
    return "Audit";
  }

  protected store(): Emitter {
    return this.ctx.stores.audit;
  }

  protected source() {
    return this.ctx.stores.audit.list();
  }

  protected idOf(e: AuditEntry) {
    return String(e.seq);
  }

  protected fields(e: AuditEntry): Fields {
    return {
      seq: String(e.seq),
      at: formatDateTime(e.at),
      actor: e.actor,
      role: e.role,
      action: e.action,
      target: e.target,
      outcome: e.outcome,
      details: detailsText(e.details),
    };
  }

  protected override timeOf(e: AuditEntry): number {
    return Date.parse(e.at);
  }

  protected columns(): Column<AuditEntry>[] {
    return auditColumns();
  }

  protected override empty(): Line {
    const denied = this.ctx.stores.audit.forbidden;
    return denied ? [{ text: denied, color: "yellow" }] : super.empty();
  }

  override title(): Line {
    const line = super.title();
    const audit = this.ctx.stores.audit;
    if (audit.olderCursor !== null)
      line.push({ text: `  older entries on the server: M loads ${AUDIT_PAGE} more`, color: "gray" });
    if (audit.verification) line.push(verifyBadge(audit.verification, audit.newest()));
    return line;
  }

  override start(): void {
    super.start();
    this.recheck.start();
  }

  override stop(): void {
    this.recheck.stop();
    super.stop();
  }

  /**
   * Once the chain has been checked, entries that arrive later are checked too (at most every
   * RECHECK_MS, while this view is open), so the badge never vouches for less than it shows.
   */
  private readonly recheck = new Ticker(RECHECK_MS, () => {
    const audit = this.ctx.stores.audit;
    const v = audit.verification;
    if (!v?.result.ok || this.checking || audit.newest() <= v.upTo) return;
    this.checking = true;
    void this.ctx.actions.verify({ quiet: true }).finally(() => {
      this.checking = false;
    });
  });
  private checking = false;

  protected viewKeys(): KeyBinding[] {
    // A viewer cannot read the audit log: nothing here to open or verify.
    if (this.ctx.stores.audit.forbidden || this.ctx.stores.session.who?.role === "viewer") return [];
    return [
      {
        key: "enter",
        description: "entry details",
        hint: true,
        handler: () => {
          const e = this.selected();
          if (e) this.ctx.overlay(`audit #${e.seq}`, auditDetail(e));
        },
      },
      {
        key: "t",
        description: "go to the entry's target (a job, an agent, the fleet)",
        hint: true,
        handler: () => {
          const e = this.selected();
          if (!e) return;
          const target = e.target;
          if (target.startsWith("job_")) this.ctx.openJobDetail(target);
          else if (target.startsWith("agt_")) this.ctx.jump("agents", `id:${target}`);
          else if (target === "fleet") this.ctx.show("fleet");
          else this.ctx.stores.session.say(`no view shows ${target}`, "error");
        },
      },
      {
        key: "v",
        description: "verify the audit chain",
        hint: true,
        handler: () => void this.ctx.actions.verify(),
      },
      loadOlderKey(
        this.ctx,
        { one: "audit entry", plural: "audit entries", page: AUDIT_PAGE },
        {
          ready: () => !this.ctx.sync.loadingLists,
          more: () => this.ctx.stores.audit.olderCursor !== null,
          load: () => this.ctx.sync.loadOlderAudit(),
        },
      ),
    ];
  }
}
