import { type FleetUpdateBody, isFinal, type Job } from "@skiff/protocol";
import { readJobFile } from "../../jobfile.ts";
import type { Backend } from "../data/backend.ts";
import type { KeyBinding } from "../model/keys.ts";
import type { PromptSpec } from "../model/prompt.ts";
import type { Stores } from "../model/sync.ts";
import type { AgentRecord } from "../model/types.ts";
import { verifyMessage } from "../render/audit.ts";
import { completePath } from "./paths.ts";

export interface ActionHost {
  backend: Backend;
  stores: Stores;
  prompt(spec: PromptSpec): void;
  openJob(jobId: string): void;
}

function failure(err: unknown): string {
  const e = err as { message?: string; code?: string; hint?: string };
  return `${e.message ?? String(err)}${e.code ? ` (${e.code})` : ""}`;
}

const WHOLE = /^\d+$/;

/**
 * What the console can do to the server. Every change asks for confirmation first (and a reason
 * where the API records one); the result or the server's error comes back as a flash message.
 */
export class Actions {
  constructor(private readonly host: ActionHost) {}

  private say(text: string, level: "info" | "error" = "info"): void {
    this.host.stores.session.say(text, level);
  }

  private confirm(question: string, run: () => Promise<string>): void {
    this.host.prompt({
      kind: "confirm",
      question,
      onYes: () => {
        run().then(
          (done) => this.say(done),
          (err) => this.say(failure(err), "error"),
        );
      },
      onNo: () => this.say("nothing changed"),
    });
  }

  private ask(
    label: string,
    initial: string,
    then: (value: string) => void,
    validate?: (v: string) => string | null,
  ): void {
    this.host.prompt({ kind: "input", label, initial, onSubmit: then, ...(validate ? { validate } : {}) });
  }

  readonly cancel = (job: Job): void => {
    // Said at once, rather than after a reason and a confirmation the server would then refuse.
    if (isFinal(job.state)) {
      this.say(`job ${job.name} is already ${job.state}: nothing to cancel (r retries it)`, "error");
      return;
    }
    const reason = (v: string) => (v.trim() ? null : "a reason is required");
    this.ask(
      `Reason to cancel ${job.name}: `,
      "",
      (r) =>
        this.confirm(`Cancel job ${job.name} (${job.id}), reason "${r.trim()}"?`, async () => {
          const j = await this.host.backend.cancelJob(job.id, r.trim());
          return `job ${job.id} is ${j.state}`;
        }),
      reason,
    );
  };

  readonly retry = (job: Job): void => {
    if (!isFinal(job.state)) {
      this.say(`job ${job.name} is ${job.state}: only a finished job can be retried (c cancels it)`, "error");
      return;
    }
    this.confirm(`Retry job ${job.name} (${job.id}): queue a new job with the same spec?`, async () => {
      const j = await this.host.backend.retryJob(job.id);
      return `retry queued as job ${j.id}`;
    });
  };

  readonly drain = (agent: AgentRecord): void => {
    this.ask(`Reason to drain ${agent.name}: `, "drained from the console", (r) =>
      this.confirm(`Drain agent ${agent.name}: no new jobs, it exits when idle?`, async () => {
        await this.host.backend.drainAgent(agent.id, r.trim() || "drained from the console");
        return `agent ${agent.name} is draining`;
      }),
    );
  };

  /** Sets the fleet to `replicas` workers in manual mode, after confirmation. */
  scaleTo(replicas: number): void {
    const f = this.host.stores.fleet.view;
    const from = f ? ` (now ${f.mode === "manual" ? f.replicas : `auto ${f.min}-${f.max}`})` : "";
    this.setFleet(`Scale the fleet to ${replicas} worker${replicas === 1 ? "" : "s"}${from}?`, {
      mode: "manual",
      replicas,
    });
  }

  scalePrompt(): void {
    const current = this.host.stores.fleet.view?.replicas ?? 0;
    this.ask(
      "Scale to how many workers? ",
      String(current),
      (v) => this.scaleTo(Number(v)),
      (v) => (WHOLE.test(v.trim()) && Number(v) <= 10_000 ? null : "a whole number from 0 to 10000"),
    );
  }

  scaleBy(delta: number): void {
    const current = this.host.stores.fleet.view?.replicas ?? 0;
    this.scaleTo(Math.max(0, current + delta));
  }

  autoscale(min: number, max: number, warm: number): void {
    this.setFleet(`Autoscale the fleet between ${min} and ${max} workers, ${warm} warm?`, {
      mode: "auto",
      min,
      max,
      warm,
    });
  }

  autoscalePrompt(): void {
    const f = this.host.stores.fleet.view;
    this.ask(
      "Autoscale: min max [warm]: ",
      f ? `${f.min} ${f.max} ${f.warm}` : "",
      (v) => {
        const [min = 0, max = 0, warm = 0] = v.trim().split(/\s+/).map(Number);
        this.autoscale(min, max, warm);
      },
      (v) => {
        const parts = v.trim().split(/\s+/);
        if (parts.length < 2 || parts.length > 3 || !parts.every((p) => WHOLE.test(p)))
          return "two or three whole numbers: min max [warm]";
        return Number(parts[0]) > Number(parts[1]) ? "min must not exceed max" : null;
      },
    );
  }

  /** The fleet keys of the views that show it: `s` asks a number, `+`/`-` step by one. */
  scaleKeys(): KeyBinding[] {
    return [
      {
        key: "s",
        description: "scale to a number of workers",
        dangerous: true,
        hint: true,
        handler: () => this.scalePrompt(),
      },
      { key: "+", description: "one worker more", dangerous: true, handler: () => this.scaleBy(1) },
      { key: "-", description: "one worker fewer", dangerous: true, handler: () => this.scaleBy(-1) },
    ];
  }

  private setFleet(question: string, body: FleetUpdateBody): void {
    this.confirm(question, async () => {
      const f = await this.host.backend.setFleet(body);
      this.host.stores.fleet.set(f);
      return f.mode === "manual"
        ? `fleet set to ${f.replicas} workers`
        : `fleet autoscales ${f.min}-${f.max}`;
    });
  }

  /**
   * Checks the audit chain on the server. `quiet` (the Audit view's own re-check when entries arrive)
   * updates the badge without a message, unless the chain turns out broken.
   */
  verify(opts: { quiet?: boolean } = {}): Promise<void> {
    const audit = this.host.stores.audit;
    const upTo = audit.newest();
    if (!opts.quiet) this.say("verifying the audit chain…");
    return this.host.backend.verifyAudit().then(
      (r) => {
        audit.verified(r, upTo);
        const m = verifyMessage(r);
        if (!opts.quiet || !r.ok) this.say(m.text, m.level);
      },
      (err) => {
        if (!opts.quiet) this.say(failure(err), "error");
      },
    );
  }

  /** Asks for a JobSpec file (Tab completes paths), checks it, confirms, submits, opens its log. */
  submit(file?: string): void {
    if (file) {
      void this.submitFile(file);
      return;
    }
    this.host.prompt({
      kind: "input",
      label: "Job file (YAML or JSON): ",
      complete: completePath,
      onSubmit: (f) => void this.submitFile(f.trim()),
    });
  }

  private async submitFile(file: string): Promise<void> {
    let spec: unknown;
    try {
      spec = await readJobFile(file);
    } catch (err) {
      this.say(
        failure(err)
          .replace(/:\n\s*/g, ": ")
          .replace(/\n\s*/g, "; "),
        "error",
      );
      return;
    }
    const name = (spec as { name?: unknown }).name;
    this.confirm(`Submit job ${String(name)} from ${file}?`, async () => {
      const j = await this.host.backend.submitJob(spec);
      this.host.openJob(j.id);
      return `submitted job ${j.id}`;
    });
  }
}

/** The keys for a job that every job screen offers: cancel and retry, both dangerous. */
export function jobActionKeys(
  actions: Actions,
  withJob: (fn: (job: Job) => void) => () => void,
): KeyBinding[] {
  return [
    {
      key: "c",
      description: "cancel the job (asks a reason)",
      dangerous: true,
      hint: true,
      handler: withJob(actions.cancel),
    },
    { key: "r", description: "retry the job", dangerous: true, hint: true, handler: withJob(actions.retry) },
  ];
}
