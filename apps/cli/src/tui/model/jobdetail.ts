import type { JobWithSteps } from "@skiff/protocol";
import { type Backend, isGone } from "../data/backend.ts";
import { Emitter } from "./emitter.ts";

/** One job with its steps while a view shows it (Job, Job log), fetched again whenever the job changes. */
export class JobDetailStore extends Emitter {
  job: JobWithSteps | null = null;
  error: string | null = null;
  /** The job does not exist (a mistyped id, or pruned): not worth asking again. */
  gone = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly backend: Backend,
    readonly jobId: string,
  ) {
    super();
  }

  start(): void {
    this.stopped = false;
    void this.fetch();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** A `job.state` event for this job: fetch it again shortly (several events come as one fetch). */
  jobChanged(delayMs = 200): void {
    if (this.timer || this.stopped || this.gone) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.fetch();
    }, delayMs);
  }

  private async fetch(): Promise<void> {
    try {
      const job = await this.backend.getJob(this.jobId);
      if (this.stopped) return;
      this.job = job;
      this.error = null;
    } catch (err) {
      if (this.stopped) return;
      this.gone = isGone(err);
      this.error = this.gone ? `no job ${this.jobId}: check the id (Esc goes back)` : (err as Error).message;
    }
    this.changed();
  }
}
