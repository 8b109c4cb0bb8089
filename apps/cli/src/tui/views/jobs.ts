import type { Job } from "@skiff/protocol";
import type { Emitter } from "../model/emitter.ts";
import { memo } from "../model/emitter.ts";
import type { Fields } from "../model/filter.ts";
import type { KeyBinding } from "../model/keys.ts";
import { JOB_PAGE } from "../model/sync.ts";
import { jobColumns, unservedText } from "../render/jobs.ts";
import type { Line } from "../render/style.ts";
import type { Column } from "../render/table.ts";
import { jobActionKeys } from "./actions.ts";
import { loadOlderKey } from "./listkeys.ts";
import { TableView } from "./table-view.ts";
import type { ViewContext } from "./view.ts";

/** The newest jobs, filterable by state, queue and text; Enter opens the log. */
export class JobsView extends TableView<Job> {
  readonly name = "jobs";

  constructor(ctx: ViewContext) {
    super(ctx, 1000);
  }

  protected label() {
    return "Jobs";
  }

  protected store(): Emitter {
    return this.ctx.stores.jobs;
  }

  protected source() {
    return this.ctx.stores.jobs.list();
  }

  protected idOf(j: Job) {
    return j.id;
  }

  protected override timeOf(j: Job): number {
    return Date.parse(j.createdAt);
  }

  protected fields(j: Job): Fields {
    return {
      id: j.id,
      name: j.name,
      state: j.state,
      queue: j.queue,
      agent: j.agentId ? this.ctx.stores.agents.nameOf(j.agentId) : "",
      agentid: j.agentId ?? "",
      by: j.createdBy,
    };
  }

  protected columns(now: number): Column<Job>[] {
    const { agents } = this.ctx.stores;
    // Until the agents are known, nothing is marked unserved.
    return jobColumns(now, (id) => agents.nameOf(id), agents.size > 0 ? agents.servedQueues() : null);
  }

  private readonly unserved = memo((_jobs: number, _agents: number) => {
    const { jobs, agents } = this.ctx.stores;
    return agents.size > 0 ? jobs.unserved(agents.servedQueues()) : new Map<string, number>();
  });

  /**
   * Most telling first, since at 80 columns the end is cut: how many are held and on the server, what
   * waits on a queue nobody serves, then the paging hint.
   */
  override title(): Line {
    const line = super.title();
    const { jobs, agents } = this.ctx.stores;
    const onServer = jobs.serverTotal();
    const held = this.source().length;
    if (onServer !== null && onServer > held)
      line.push({ text: ` of ${onServer} on the server`, color: "gray" });
    const text = unservedText(this.unserved(jobs.version, agents.version));
    if (text) line.push({ text: `  ⚠ ${text}`, color: "yellow" });
    if (jobs.olderCursor !== null && (onServer === null || onServer > held))
      line.push({ text: `  M loads ${JOB_PAGE} older`, color: "gray" });
    return line;
  }

  protected viewKeys(): KeyBinding[] {
    const { actions, stores, sync } = this.ctx;
    const withJob = (fn: (j: Job) => void) => () => {
      const j = this.selected();
      if (j) fn(j);
      else this.ctx.stores.session.say("no job selected: the list is empty or filtered out", "error");
    };
    return [
      {
        key: "enter",
        description: "open the job's log",
        hint: true,
        handler: withJob((j) => this.ctx.openJob(j.id)),
      },
      {
        key: "i",
        description: "the job in full: attempts, agent, times, steps (A there goes to its agent)",
        hint: true,
        handler: withJob((j) => this.ctx.openJobDetail(j.id)),
      },
      ...jobActionKeys(actions, withJob),
      loadOlderKey(
        this.ctx,
        { one: "job", plural: "jobs", page: JOB_PAGE },
        {
          ready: () => stores.jobs.loaded && !sync.loadingLists,
          more: () => stores.jobs.olderCursor !== null,
          load: () => sync.loadOlderJobs(),
        },
      ),
      {
        key: "n",
        description: "submit a job from a file",
        dangerous: true,
        hint: true,
        handler: () => actions.submit(),
      },
    ];
  }
}
