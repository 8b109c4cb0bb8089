import type { Emitter } from "../model/emitter.ts";
import type { Fields } from "../model/filter.ts";
import type { KeyBinding } from "../model/keys.ts";
import type { AgentRecord } from "../model/types.ts";
import { agentColumns, agentStatusCell, heartbeatAge, labelsText } from "../render/agents.ts";
import { formatAge, formatDateTime } from "../render/format.ts";
import { heartbeatCell } from "../render/heartbeat.ts";
import type { Line } from "../render/style.ts";
import type { Column } from "../render/table.ts";
import { fieldLines } from "../render/table.ts";
import { TableView } from "./table-view.ts";
import type { ViewContext } from "./view.ts";

const ONLINE = "status:online";

/** Every agent with its heartbeat age ticking once a second from its last beat (no request). */
export class AgentsView extends TableView<AgentRecord> {
  readonly name = "agents";

  constructor(ctx: ViewContext) {
    super(ctx, 1000);
  }

  protected label() {
    return "Agents";
  }

  protected store(): Emitter {
    return this.ctx.stores.agents;
  }

  protected source() {
    return this.ctx.stores.agents.list();
  }

  protected idOf(a: AgentRecord) {
    return a.id;
  }

  protected fields(a: AgentRecord): Fields {
    return {
      name: a.name,
      id: a.id,
      status: a.status === "offline" ? "offline" : `online ${a.activity}`,
      version: a.version,
      sandbox: a.unsafe ? "unsafe none" : a.sandbox,
      labels: labelsText(a.labels),
    };
  }

  protected columns(now: number): Column<AgentRecord>[] {
    return agentColumns(now, this.ctx.stores.agents.skewMs, this.ctx.policy);
  }

  protected viewKeys(): KeyBinding[] {
    const { actions } = this.ctx;
    return [
      { key: "enter", description: "agent details", hint: true, handler: () => this.details() },
      {
        key: "o",
        description: "hide or show offline agents",
        hint: true,
        // The filter's own term, so what is hidden is said in the title and `/` can change it.
        handler: () => {
          const current = this.filter.get();
          const terms = current.split(/\s+/).filter((t) => t !== "");
          this.filter.set(
            terms.includes(ONLINE)
              ? terms.filter((t) => t !== ONLINE).join(" ")
              : [...terms, ONLINE].join(" "),
          );
        },
      },
      {
        key: "d",
        description: "drain the agent",
        dangerous: true,
        hint: true,
        handler: () => {
          const a = this.selected();
          if (a) actions.drain(a);
        },
      },
      ...actions.scaleKeys(),
    ];
  }

  private details(): void {
    const a = this.selected();
    if (!a) return;
    const now = Date.now();
    const age = heartbeatAge(a, now, this.ctx.stores.agents.skewMs);
    const r = a.resources;
    const lines: Line[] = fieldLines([
      ["Name", a.name],
      ["ID", a.id],
      ["Status", agentStatusCell(a)],
      ["Heartbeat", heartbeatCell(age, a.status, this.ctx.policy)],
      ["Last beat", formatDateTime(a.lastHeartbeatAt)],
      [
        "Registered",
        `${formatDateTime(a.registeredAt)} (${formatAge(now - Date.parse(a.registeredAt))} ago)`,
      ],
      ["Version", a.version],
      [
        "Sandbox",
        a.unsafe ? { text: `${a.sandbox} UNSAFE: runs jobs without a sandbox`, color: "red" } : a.sandbox,
      ],
      ["Slots", `${a.running} of ${a.slots} in use`],
      ["Running", a.runningJobs.length > 0 ? a.runningJobs.join(", ") : "-"],
      ["Queues", a.queues.join(", ")],
      ["Labels", labelsText(a.labels)],
      ["Resources", JSON.stringify(r)],
      ["Drain", a.drainRequested ? "requested" : "no"],
    ]);
    this.ctx.overlay(`agent ${a.name}`, lines);
  }
}
