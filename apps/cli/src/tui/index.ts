import type { ConnectionOptions } from "../client.ts";
import { UsageError } from "../env.ts";
import { App } from "./app.ts";
import { connectBackend } from "./data/connection.ts";
import { DEFAULT_HEARTBEAT_POLICY, type HeartbeatPolicy } from "./render/heartbeat.ts";

export interface TuiOptions extends ConnectionOptions {
  readOnly?: boolean;
  color?: boolean;
  /** Asked before `q` quits (see AppOptions.confirmQuit). */
  confirmQuit?: string;
  /**
   * The console is part of a longer-lived process (`skiff up`): `D` may close it while the process
   * keeps running, and the process is not ended when the console is.
   */
  embedded?: boolean;
  /** Clicks select rows, the wheel scrolls (`--mouse`). */
  mouse?: boolean;
}

export interface TuiResult {
  /** The operator closed the console with `D`, asking the process to keep running. */
  detached: boolean;
}

/** The API's heartbeat timing, when the operator set it for the server in this environment too. */
function policyFromEnv(): HeartbeatPolicy {
  const read = (name: string, fallback: number) => {
    const n = Number(process.env[name]);
    return Number.isInteger(n) && n > 0 ? n : fallback;
  };
  return {
    intervalMs: read("SKIFF_HEARTBEAT_INTERVAL_MS", DEFAULT_HEARTBEAT_POLICY.intervalMs),
    offlineAfterMs: read("SKIFF_OFFLINE_AFTER_MS", DEFAULT_HEARTBEAT_POLICY.offlineAfterMs),
  };
}

/** Below this the console cannot lay out its views (blessed-contrib's charts fail outright at 0×0). */
export const MIN_COLUMNS = 40;
export const MIN_ROWS = 12;

/** Why the console cannot draw on this terminal, or null when it can. */
export function terminalTooSmall(
  columns = process.stdout.columns,
  rows = process.stdout.rows,
): string | null {
  if ((columns ?? 0) >= MIN_COLUMNS && (rows ?? 0) >= MIN_ROWS) return null;
  return `the terminal is ${columns ?? 0}×${rows ?? 0}; the console needs at least ${MIN_COLUMNS}×${MIN_ROWS}`;
}

/**
 * Runs the console until the operator quits. The terminal is restored on every way out: q and Ctrl-C
 * (keys, the terminal being raw), SIGTERM, SIGHUP (the SSH session went away), and a crash, after
 * which the error is printed on the restored screen.
 */
export async function runTui(opts: TuiOptions): Promise<TuiResult> {
  const small = terminalTooSmall();
  if (small)
    throw new UsageError(
      `${small} (resize it, or use \`skiff jobs\`, \`skiff agents\` and the other commands)`,
    );
  const backend = connectBackend(opts);
  const color = opts.color !== false && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";
  const app = new App({
    backend,
    readOnly: opts.readOnly === true,
    color,
    policy: policyFromEnv(),
    ...(opts.confirmQuit ? { confirmQuit: opts.confirmQuit } : {}),
    detachable: opts.embedded === true,
    mouse: opts.mouse === true,
  });
  let crash: unknown = null;
  const quit = () => app.stop();
  const crashed = (err: unknown) => {
    crash = err;
    app.stop();
  };
  process.on("SIGTERM", quit);
  process.on("SIGHUP", quit);
  process.on("SIGINT", quit);
  process.on("uncaughtException", crashed);
  process.on("unhandledRejection", crashed);
  try {
    app.start();
    await app.done;
  } catch (err) {
    crash = err;
    app.stop();
  } finally {
    process.off("SIGTERM", quit);
    process.off("SIGHUP", quit);
    process.off("SIGINT", quit);
    process.off("uncaughtException", crashed);
    process.off("unhandledRejection", crashed);
  }
  if (crash !== null) {
    const e = crash instanceof Error ? crash : new Error(String(crash));
    process.stderr.write(`skiff tui crashed; the terminal was restored.\n${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  }
  // Everything the console opened is closed; a stray handle (a socket in keep-alive) must not keep a
  // closed console hanging on the operator's shell. Not when the console is part of `skiff up`: that
  // process goes on to drain its workers (or, detached, to serve), which must not be cut short.
  if (!opts.embedded) setTimeout(() => process.exit(), 1500).unref();
  return { detached: app.detached };
}
