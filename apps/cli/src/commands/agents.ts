import { Agent } from "@skiff/protocol";
import type { Command } from "commander";
import { action } from "../action.ts";
import { type ConnectionOptions, connect, expectPage, expectShape, withConnection } from "../client.ts";
import { UsageError } from "../env.ts";
import { err, formatDuration, out, paint, printJson, printTable, stateCell } from "../output.ts";

export function registerAgents(program: Command): void {
  const agents = program.command("agents").description("list and drain agents (workers)");

  withConnection(
    agents
      .command("ls")
      .description("list every agent with status, heartbeat age, jobs, slots, sandbox and resources")
      .option("--json", "print the agents as a JSON array of API objects"),
  ).action(
    action(async (opts: ConnectionOptions & { json?: boolean }) => {
      const page = expectPage(Agent, await connect(opts).get("/v1/agents"), "agent");
      if (opts.json) return printJson(page.raw);
      const s = process.stdout;
      printTable(
        [
          "NAME",
          "ID",
          "STATUS",
          "ACTIVITY",
          "SANDBOX",
          "HEARTBEAT",
          "JOBS",
          "QUEUES",
          "CPU",
          "MEMORY",
          "VERSION",
        ],
        page.items.map((a) => [
          a.name,
          a.id,
          stateCell(s, a.status),
          stateCell(s, a.drainRequested && a.activity !== "draining" ? "draining" : a.activity),
          isUnsafe(a) ? paint(s, "red", paint(s, "bold", "none UNSAFE")) : a.sandbox,
          `${formatDuration(a.heartbeatAgeMs)} ago`,
          `${a.runningJobs.length}/${a.slots}`,
          a.queues.join(","),
          a.resources.cpuPercent === undefined ? "-" : `${Math.round(a.resources.cpuPercent)}%`,
          memory(a),
          a.version,
        ]),
        "no agents have registered",
      );
      const unsafe = page.items.filter((a) => isUnsafe(a) && a.status === "online");
      if (unsafe.length > 0) {
        err(
          paint(
            process.stderr,
            "red",
            `WARNING: ${unsafe.length} online agent(s) run job steps WITHOUT ANY SANDBOX (--unsafe-no-sandbox): ${unsafe.map((a) => a.name).join(", ")}`,
          ),
        );
      }
    }),
  );

  withConnection(
    agents
      .command("drain")
      .description("stop giving an agent work; it finishes its jobs and exits when idle")
      .argument("<id>", "the agent's id")
      .requiredOption("--reason <reason>", "why (recorded in the audit log)")
      .option("--json", "print the updated agent"),
  ).action(
    action(async (id: string, opts: ConnectionOptions & { reason: string; json?: boolean }) => {
      if (opts.reason.trim() === "") throw new UsageError("--reason must not be empty");
      const raw = await connect(opts).post(`/v1/agents/${encodeURIComponent(id)}/drain`, {
        reason: opts.reason,
      });
      if (opts.json) return printJson(raw);
      const agent = expectShape(Agent, raw, "agent");
      const busy = agent.runningJobs.length;
      out(
        `draining agent ${agent.name} (${agent.id}): ${busy === 0 ? "idle, it exits shortly" : `it exits after its ${busy} running job(s)`}`,
      );
    }),
  );
}

function isUnsafe(a: Agent): boolean {
  return a.unsafe || a.sandbox === "none";
}

function memory(a: Agent): string {
  const { memoryUsedMb: used, memoryTotalMb: total } = a.resources;
  if (used === undefined) return "-";
  return total === undefined ? `${Math.round(used)}M` : `${Math.round(used)}/${Math.round(total)}M`;
}
