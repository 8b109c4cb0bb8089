import { createRequire } from "node:module";
import pino from "pino";
import type { PrettyOptions } from "pino-pretty";
import { UsageError } from "./env.ts";
import { colorOn } from "./output.ts";

export type LogFormat = "json" | "pretty";

/** The help text of `--log-format`, the same on every long-running command. */
export const LOG_FORMAT_HELP =
  "json or pretty (default: pretty on a terminal, else json; env SKIFF_LOG_FORMAT)";

/**
 * `--log-format`, else SKIFF_LOG_FORMAT, else pretty when the logs go to a terminal and JSON lines
 * when they go to a pipe or a file (what log collectors read).
 */
export function logFormat(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  terminal: boolean = process.stdout.isTTY === true,
): LogFormat {
  const raw = flag ?? (env.SKIFF_LOG_FORMAT || undefined);
  if (raw === undefined) return terminal ? "pretty" : "json";
  if (raw === "json" || raw === "pretty") return raw;
  throw new UsageError(
    `${flag === undefined ? "SKIFF_LOG_FORMAT" : "--log-format"} must be json or pretty, got "${raw}"`,
  );
}

/**
 * Fields pino writes on every line itself. A log call that passes one of them would print the key
 * twice (`"name":"skiff-controller","name":"vm-w-1"`), which JSON parsers read as the last one.
 */
const RESERVED = new Set(["name", "pid", "hostname", "level", "time"]);

/** Renames a log call's field that pino writes itself: `name` becomes `subject` (what the line is about). */
export function withoutReservedKeys(fields: Record<string, unknown>): Record<string, unknown> {
  if (!Object.keys(fields).some((k) => RESERVED.has(k))) return fields;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields))
    out[RESERVED.has(k) ? (k === "name" ? "subject" : `${k}Field`) : k] = v;
  return out;
}

interface Sink {
  write(chunk: string): unknown;
}

/**
 * Holds log lines until `release()`, so a process can print its start-up banner in one piece before
 * any line of its log, and the two never interleave on a terminal. A start that may wait on others
 * (a worker retrying an API that is not up yet) gives `atMostMs`: the lines go out then, so its
 * retries show, and the banner still comes in one write.
 */
class HeldSink implements Sink {
  private held: string[] | null = [];
  constructor(
    private readonly to: Sink,
    atMostMs: number | undefined,
  ) {
    if (atMostMs !== undefined) setTimeout(() => this.release(), atMostMs).unref();
    // A process that stops before its banner still shows what it logged (the writes are synchronous).
    process.once("exit", () => this.release());
  }
  write(chunk: string): void {
    if (this.held) this.held.push(chunk);
    else this.to.write(chunk);
  }
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const chunk of held) this.to.write(chunk);
  }
}

function prettyStream(options: PrettyOptions): Sink {
  // Loaded only when used: it costs every other command a third of a second at start.
  const pretty = createRequire(import.meta.url)("pino-pretty") as (o: PrettyOptions) => Sink;
  return pretty({ ignore: "pid,hostname", translateTime: "SYS:HH:MM:ss.l", sync: true, ...options });
}

export interface Log {
  logger: pino.Logger;
  /** Lets the held lines out (in order) and every later one straight through. */
  release(): void;
}

/**
 * The logger of a long-running process: pretty (pino-pretty) or JSON lines, on stdout or appended
 * to `file` (created with its directory). Lines are held until `release()`, at most `holdAtMostMs`.
 */
export function createLogger(
  name: string,
  opts: { format: LogFormat; file?: string; holdAtMostMs?: number },
): Log {
  const options: pino.LoggerOptions = {
    name,
    level: process.env.SKIFF_LOG_LEVEL || "info",
    formatters: { log: withoutReservedKeys },
  };
  const to: Sink =
    opts.format === "pretty"
      ? prettyStream(
          opts.file
            ? { destination: opts.file, mkdir: true, colorize: false }
            : { destination: 1, colorize: colorOn(process.stdout) },
        )
      : pino.destination(opts.file ? { dest: opts.file, mkdir: true, sync: true } : { dest: 1, sync: true });
  const sink = new HeldSink(to, opts.holdAtMostMs);
  return { logger: pino(options, sink), release: () => sink.release() };
}
