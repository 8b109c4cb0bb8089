import type { JobWithSteps } from "@skiff/protocol";
import { JobDetailStore } from "../model/jobdetail.ts";
import type { KeyBinding } from "../model/keys.ts";
import { jobDetailLines } from "../render/jobdetail.ts";
import type { Line } from "../render/style.ts";
import { TextWidget } from "../widgets/table.ts";
import { jobActionKeys } from "./actions.ts";
import { Ticker, type View, type ViewContext } from "./view.ts";

/**
 * One job in full (state, attempts, agent, times, spec, steps), and the way to its neighbours: its log
 * (`l` or Enter), its agent (`A`), the job it is a retry of (`p`). Esc walks back the way you came.
 */
export class JobView implements View {
  readonly name = "job";
  private readonly detail: JobDetailStore;
  private text: TextWidget | null = null;
  private unsubscribe: (() => void)[] = [];
  private readonly ticker: Ticker;

  constructor(
    private readonly ctx: ViewContext,
    readonly jobId: string,
  ) {
    this.detail = new JobDetailStore(ctx.backend, jobId);
    // Steps move on without a job.state event: a job in flight is fetched again every other second.
    let tick = 0;
    this.ticker = new Ticker(1000, () => {
      const state = this.detail.job?.state;
      if ((state === "running" || state === "assigned" || state === "canceling") && ++tick % 2 === 0)
        this.detail.jobChanged();
      ctx.requestRender();
    });
  }

  title(): Line {
    const job = this.detail.job;
    return [{ text: " Job ", bold: true }, { text: job ? `${job.name} (${job.id})` : this.jobId }];
  }

  keys(): KeyBinding[] {
    const say = (text: string) => this.ctx.stores.session.say(text, "error");
    const withJob = (fn: (j: JobWithSteps) => void) => () => {
      const j = this.detail.job;
      if (j) fn(j);
      else say(this.detail.error ?? "the job is still loading");
    };
    return [
      {
        key: "l",
        aliases: ["enter"],
        description: "open the job's log",
        hint: true,
        handler: () => this.ctx.openJob(this.jobId),
      },
      {
        key: "A",
        description: "go to the job's agent",
        hint: true,
        handler: withJob((j) =>
          j.agentId ? this.ctx.jump("agents", `id:${j.agentId}`) : say("no agent has taken this job yet"),
        ),
      },
      {
        key: "p",
        description: "open the job this one is a retry of",
        handler: withJob((j) =>
          j.retryOf ? this.ctx.openJobDetail(j.retryOf) : say("this job is not a retry"),
        ),
      },
      ...jobActionKeys(this.ctx.actions, withJob),
    ];
  }

  start(): void {
    this.text = new TextWidget(
      this.ctx.region,
      { top: 0, left: 0, width: "100%", height: "100%" },
      this.ctx.color,
    );
    this.unsubscribe = [
      this.detail.subscribe(() => this.ctx.requestRender()),
      this.ctx.sync.onJobChange((id) => {
        if (id === this.jobId) this.detail.jobChanged();
      }),
    ];
    this.detail.start();
    this.ticker.start();
  }

  stop(): void {
    this.ticker.stop();
    this.detail.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.text?.destroy();
    this.text = null;
  }

  draw(now: number): void {
    if (!this.text) return;
    const { job, error } = this.detail;
    const agentName = (id: string) => this.ctx.stores.agents.nameOf(id);
    this.text.setLines(
      job
        ? jobDetailLines(job, now, agentName)
        : [[{ text: error ? `cannot load the job: ${error}` : "loading…", color: error ? "red" : "gray" }]],
    );
  }
}
