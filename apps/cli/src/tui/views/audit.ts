import type { AuditEntry } from "@skiff/protocol";
import type { Emitter } from "../model/emitter.ts";
import type { Fields } from "../model/filter.ts";
import type { KeyBinding } from "../model/keys.ts";
import { auditColumns, auditDetail, detailsText, verifyMessage } from "../render/audit.ts";
import { formatDateTime } from "../render/format.ts";
import type { Line } from "../render/style.ts";
import type { Column } from "../render/table.ts";
import { TableView } from "./table-view.ts";
import type { ViewContext } from "./view.ts";

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

  protected columns(): Column<AuditEntry>[] {
    return auditColumns();
  }

  protected override empty(): Line {
    const denied = this.ctx.stores.audit.forbidden;
    return denied ? [{ text: denied, color: "yellow" }] : super.empty();
  }

  override title(): Line {
    const line = super.title();
    const v = this.ctx.stores.audit.verification;
    if (v) {
      const m = verifyMessage(v.result);
      line.push({
        text: `  ${m.level === "info" ? "✓" : "✗"} ${m.text}`,
        color: m.level === "info" ? "green" : "red",
      });
    }
    return line;
  }

  protected viewKeys(): KeyBinding[] {
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
        key: "v",
        description: "verify the audit chain",
        hint: true,
        handler: () => this.ctx.actions.verify(),
      },
    ];
  }
}
