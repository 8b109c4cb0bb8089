import { FleetUpdateBody } from "@skiff/protocol";
import type { ViewName } from "./views/view.ts";

/** What the app lets the palette do. */
export interface CommandHost {
  show(view: ViewName): void;
  openJob(jobId: string): void;
  openJobDetail(jobId: string): void;
  scaleTo(n: number): void;
  autoscale(min: number, max: number, warm: number): void;
  verify(): void;
  submit(file: string): void;
  help(): void;
  quit(): void;
  canChange(): boolean;
  jobIds(): readonly string[];
  say(text: string, level?: "info" | "error"): void;
}

export interface Command {
  name: string;
  args?: string;
  description: string;
  /** Changes the server: only offered when changes are allowed, and confirmed first. */
  dangerous?: boolean;
  run(host: CommandHost, args: string[]): void;
}

const whole = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : null);

/** Why the API would refuse this fleet setting (its own schema), or null: said before any confirmation. */
function fleetProblem(body: unknown): string | null {
  const res = FleetUpdateBody.safeParse(body);
  if (res.success) return null;
  const issue = res.error.issues[0];
  return issue ? `${issue.path.join(".")}: ${issue.message}` : "not a valid fleet setting";
}

export const COMMANDS: readonly Command[] = [
  { name: "overview", description: "counts, charts and recent events", run: (h) => h.show("overview") },
  { name: "agents", description: "every agent and its heartbeat", run: (h) => h.show("agents") },
  { name: "jobs", description: "the newest jobs", run: (h) => h.show("jobs") },
  { name: "fleet", description: "desired and actual workers, decisions", run: (h) => h.show("fleet") },
  { name: "audit", description: "the audit log", run: (h) => h.show("audit") },
  {
    name: "log",
    args: "<job id>",
    description: "a job's log, followed live",
    run: (h, [id]) => (id ? h.openJob(id) : h.say("usage: :log <job id>", "error")),
  },
  {
    name: "job",
    args: "<job id>",
    description: "a job in full: attempts, agent, times, steps",
    run: (h, [id]) => (id ? h.openJobDetail(id) : h.say("usage: :job <job id>", "error")),
  },
  {
    name: "scale",
    args: "<n>",
    description: "run exactly n workers",
    dangerous: true,
    run: (h, [n]) => {
      const v = whole(n);
      const problem = v === null ? null : fleetProblem({ mode: "manual", replicas: v });
      if (v === null) h.say("usage: :scale <n>, a whole number", "error");
      else if (problem) h.say(`cannot scale to ${v}: ${problem}`, "error");
      else h.scaleTo(v);
    },
  },
  {
    name: "autoscale",
    args: "<min> <max> [warm]",
    description: "size the fleet to the queue",
    dangerous: true,
    run: (h, [a, b, w]) => {
      const min = whole(a);
      const max = whole(b);
      const warm = w === undefined ? 0 : whole(w);
      const problem =
        min === null || max === null || warm === null ? null : fleetProblem({ mode: "auto", min, max, warm });
      if (min === null || max === null || warm === null || min > max)
        h.say("usage: :autoscale <min> <max> [warm], whole numbers with min ≤ max", "error");
      else if (problem) h.say(`cannot autoscale ${min}-${max}: ${problem}`, "error");
      else h.autoscale(min, max, warm);
    },
  },
  { name: "verify", description: "check the audit chain", run: (h) => h.verify() },
  {
    name: "submit",
    args: "<file>",
    description: "submit a job from a YAML or JSON file",
    dangerous: true,
    run: (h, [file]) => (file ? h.submit(file) : h.say("usage: :submit <file>", "error")),
  },
  { name: "help", description: "the keys", run: (h) => h.help() },
  { name: "quit", description: "leave the console", run: (h) => h.quit() },
];

/** The commands this session may run: the dangerous ones only when changes are allowed. */
export function available(host: Pick<CommandHost, "canChange">): Command[] {
  const change = host.canChange();
  return COMMANDS.filter((c) => change || !c.dangerous);
}

/** Completions for what is typed after `:`: command names, then job ids for `log` and `job`. */
export function completeCommand(host: Pick<CommandHost, "canChange" | "jobIds">, typed: string): string[] {
  const [word = "", ...rest] = typed.split(" ");
  if (rest.length === 0)
    return available(host)
      .map((c) => (c.args ? `${c.name} ` : c.name))
      .filter((n) => n.startsWith(word));
  if ((word === "log" || word === "job") && rest.length === 1) {
    const prefix = rest[0] ?? "";
    return host
      .jobIds()
      .filter((id) => id.startsWith(prefix))
      .slice(0, 20)
      .map((id) => `${word} ${id}`);
  }
  return [];
}

/** Runs a palette line; unknown or forbidden commands are explained, not ignored. */
export function runCommand(host: CommandHost, line: string): void {
  const [name = "", ...args] = line.trim().split(/\s+/);
  if (name === "") return;
  const cmd = COMMANDS.find((c) => c.name === name) ?? available(host).find((c) => c.name.startsWith(name));
  if (!cmd) {
    host.say(
      `no command "${name}"; try ${available(host)
        .map((c) => c.name)
        .join(", ")}`,
      "error",
    );
    return;
  }
  if (cmd.dangerous && !host.canChange()) {
    host.say(`:${cmd.name} changes the server, which this session may not (read-only or viewer)`, "error");
    return;
  }
  cmd.run(host, args);
}
