import { type JobState, LogLine } from "@skiff/protocol";
import { type ApiClient, expectShape } from "./client.ts";
import { colorOn, err, formatDuration, paint, terminalSafe } from "./output.ts";
import { subscribe } from "./sse.ts";

/**
 * A job's output as the user's own program would print it: stdout lines to stdout, stderr lines to
 * stderr, and the worker's system lines (step markers, sandbox notes) to stderr, dimmed on a
 * terminal and prefixed otherwise, so `> file` captures only what the job wrote.
 */
export function printLogLine(line: LogLine): void {
  const to = line.stream === "stdout" ? process.stdout : process.stderr;
  // On a terminal the job's text is shown, not obeyed; piped, it is passed on as the job wrote it.
  const text = to.isTTY ? terminalSafe(line.text) : line.text;
  if (line.stream !== "system") to.write(`${text}\n`);
  else if (colorOn(process.stderr)) process.stderr.write(`${paint(process.stderr, "dim", text)}\n`);
  else process.stderr.write(`[system] ${text}\n`);
}

export interface JobEnd {
  state: string;
  exitCode: number | null;
}

/**
 * Follows `/v1/jobs/:id/logs/stream` from `after`, handing each line over once, until the server's
 * `end` event (the job is final) or `signal` aborts. A drop is resumed from the last line
 * (Last-Event-ID), with one note on stderr per outage.
 */
export function followLogs(
  client: ApiClient,
  jobId: string,
  opts: { after?: number; onLine(line: LogLine): void; signal?: AbortSignal },
): Promise<JobEnd> {
  let last = opts.after ?? 0;
  let end: JobEnd | null = null;
  let lost = false;
  const sub = subscribe(
    client,
    `/v1/jobs/${encodeURIComponent(jobId)}/logs/stream`,
    { after: last > 0 ? last : undefined },
    {
      events: {
        line(data) {
          const line = expectShape(LogLine, data, "log line");
          if (line.seq <= last) return;
          last = line.seq;
          opts.onLine(line);
        },
        end(data) {
          const d = (data ?? {}) as { state?: unknown; exitCode?: unknown };
          end = {
            state: typeof d.state === "string" ? d.state : "unknown",
            exitCode: typeof d.exitCode === "number" ? d.exitCode : null,
          };
          sub.close();
        },
      },
      onReconnecting() {
        if (lost) return;
        lost = true;
        err(paint(process.stderr, "dim", `lost the log stream from ${client.baseUrl}; reconnecting...`));
      },
      onOpen() {
        if (!lost) return;
        lost = false;
        err(paint(process.stderr, "dim", `reconnected; resuming after line ${last}`));
      },
    },
    (lastEventId) => ({ after: lastEventId }),
  );
  opts.signal?.addEventListener("abort", () => sub.close(), { once: true });
  return sub.done.then(() => end ?? { state: "unknown", exitCode: null });
}

/**
 * The one status line shown on stderr while a job waits for a worker: rewritten in place on a
 * terminal (with a ticking clock), one line per change otherwise. It gives way for good once the
 * job's own output starts.
 */
export class ProgressLine {
  private readonly tty = Boolean(process.stderr.isTTY);
  private text = "";
  private shown = false;
  private stopped = false;
  private readonly since = Date.now();
  private readonly ticker: NodeJS.Timeout | undefined;

  constructor(private readonly jobId: string) {
    if (this.tty) this.ticker = setInterval(() => this.draw(), 1000);
  }

  /** A new state (and what it is waiting for); printed at once. */
  update(state: JobState | string, note = ""): void {
    const next = `job ${this.jobId}: ${state}${note ? ` ${note}` : ""}`;
    if (next === this.text) return;
    this.text = next;
    if (this.stopped) err(paint(process.stderr, "dim", next));
    else if (this.tty) this.draw();
    else err(next);
  }

  /** Clears the line before the job's output; later states print as plain lines. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    if (this.tty && this.shown) process.stderr.write("\r\u001b[2K");
  }

  private draw(): void {
    if (this.stopped || !this.text) return;
    const elapsed = formatDuration(Date.now() - this.since);
    // Only drawn on a terminal; the text holds a reason and names the API passed on.
    const text = terminalSafe(`${this.text} (${elapsed})`).replace(/\n/g, " ");
    process.stderr.write(`\r\u001b[2K${paint(process.stderr, "dim", text)}`);
    this.shown = true;
  }
}

/** A `job.state` event, as far as following a job needs it. */
export interface JobStateChange {
  jobId: string;
  state: string;
  queue: string;
  agentId: string | null;
  reason?: string;
}

/** Opens `/v1/events?topics=jobs` and resolves once the server says it is subscribed (or gives up). */
export async function watchJobStates(
  client: ApiClient,
  onState: (payload: JobStateChange) => void,
): Promise<{ close(): void }> {
  let ready: () => void = () => {};
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const sub = subscribe(
    client,
    "/v1/events",
    { topics: "jobs" },
    {
      events: {
        ready: () => ready(),
        "job.state"(data) {
          const d = (data ?? {}) as Record<string, unknown>;
          if (typeof d.jobId !== "string" || typeof d.state !== "string") return;
          onState({
            jobId: d.jobId,
            state: d.state,
            queue: typeof d.queue === "string" ? d.queue : "",
            agentId: typeof d.agentId === "string" ? d.agentId : null,
            reason: typeof d.reason === "string" ? d.reason : undefined,
          });
        },
      },
    },
  );
  // Progress is a nicety: if the events stream cannot be had, the job is still followed by its log.
  sub.done.catch(() => ready());
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    isReady,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 5000);
    }),
  ]);
  clearTimeout(timer);
  return { close: () => sub.close() };
}
