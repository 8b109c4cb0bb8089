import { type Emitter, memo } from "../model/emitter.ts";
import type { Fields } from "../model/filter.ts";
import type { KeyBinding } from "../model/keys.ts";
import type { AgentRecord } from "../model/types.ts";
import { agentColumns, agentStatusCell, heartbeatAge, labelsText, versionCounts } from "../render/agents.ts";
import { formatAge, formatDateTime } from "../render/format.ts";
import { heartbeatCell } from "../render/heartbeat.ts";
import type { Line } from "../render/style.ts";
import type { Column } from "../render/table.ts";
import { fieldLines } from "../render/table.ts";
import { TableView } from "./table-view.ts";
import type { ViewContext } from "./view.ts";

const ONLINE = "status:online";
/** Offline agents whose last heartbeat is older than this are left out unless asked for (O). */
const OLD_OFFLINE_MIN = 10;
const OLD_OFFLINE_MS = OLD_OFFLINE_MIN * 60_000;

/** Every agent with its heartbeat age ticking once a second from its last beat (no request). */
export class AgentsView extends TableView<AgentRecord> {
  readonly name = "agents";

  constructor(ctx: ViewContext) {
    super(ctx, 1000, { showIds: false });
  }

  protected label() {
    return "Agents";
  }

  protected store(): Emitter {
    return this.ctx.stores.agents;
  }

  /** Whether agents offline for longer than OLD_OFFLINE_MS are listed (O); by default they are not. */
  private showOld = false;

  /** What the title and the rows need of the fleet, worked out again only when its shape changed. */
  private readonly facts = memo((_version: number, key: string) => {
    const all = this.ctx.stores.agents.list();
    const cutoff = Date.now() - this.ctx.stores.agents.skewMs - OLD_OFFLINE_MS;
    const visible =
      key === "all"
        ? all
        : all.filter((a) => a.status !== "offline" || Date.parse(a.lastHeartbeatAt) >= cutoff);
    let unsafe = 0;
    for (const a of all) if (a.status !== "offline" && (a.unsafe || a.sandbox === "none")) unsafe++;
    return { visible, hidden: all.length - visible.length, unsafe, versions: versionCounts(all) };
  });

  private fleetFacts() {
    return this.facts(this.ctx.stores.agents.shape, this.sourceKey());
  }

  protected source() {
    return this.fleetFacts().visible;
  }

  protected override sourceKey(): string {
    return this.showOld ? "all" : String(Math.floor(Date.now() / 5_000));
  }

  override title(): Line {
    const line = super.title();
    const { hidden, unsafe, versions } = this.fleetFacts();
    if (hidden > 0)
      line.push({ text: `  ${hidden} offline for over ${OLD_OFFLINE_MIN}m hidden (O shows)`, color: "gray" });
    if (unsafe > 0) line.push({ text: `  ⚠ ${unsafe} UNSAFE: no sandbox`, color: "red", bold: true });
    if (versions.length > 1)
      line.push({
        text: `  versions differ: ${versions.map(([v, n]) => `${v} (${n})`).join(", ")}`,
        color: "yellow",
      });
    return line;
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
    const common = this.fleetFacts().versions[0]?.[0] ?? null;
    return agentColumns(now, this.ctx.stores.agents.skewMs, this.ctx.policy, common);
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
        key: "J",
        description: "the agent's jobs (running and recent)",
        hint: true,
        handler: () => {
          const a = this.selected();
          // By id: a name can be a prefix of another's (vm-1, vm-11) or reused by a new agent.
          if (a) this.ctx.jump("jobs", `agentid:${a.id}`);
          else this.ctx.stores.session.say("no agent selected", "error");
        },
      },
      {
        key: "O",
        description: `list agents offline for over ${OLD_OFFLINE_MIN} minutes too, or hide them again`,
        handler: () => {
          this.showOld = !this.showOld;
          this.ctx.requestRender();
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
