import { FleetSettings } from "@skiff/protocol";
import type { Command } from "commander";
import { action, wholeNumber } from "../action.ts";
import { type ApiClient, type ConnectionOptions, connect, expectShape, withConnection } from "../client.ts";
import { UsageError } from "../env.ts";
import { ago, out, printFields, printJson, printTable } from "../output.ts";

// `GET /v1/fleet` has no schema of its own in @skiff/protocol: built here from its parts.
const Count = FleetSettings.shape.replicas;
const Text = FleetSettings.shape.updatedBy;
const Epoch = FleetSettings.shape.leaderEpoch;
const Leader = FleetSettings.pick({}).extend({ holder: Text, epoch: Epoch, since: Text });
const Decision = FleetSettings.pick({ leaderEpoch: true }).extend({
  at: Text,
  desired: Count,
  actual: Count,
  reason: Text,
});
const FleetView = FleetSettings.omit({ leaderEpoch: true }).extend({
  desired: Count,
  actual: Count,
  scaler: Text.nullable(),
  leader: Leader.nullable(),
  decisions: Decision.array(),
});
type FleetView = ReturnType<typeof FleetView.parse>;

export function registerFleet(program: Command): void {
  const fleet = program.command("fleet").description("show and scale the worker fleet");

  withConnection(
    fleet
      .command("status")
      .description("desired vs actual workers, mode, scaler, leader and the controller's last decisions")
      .option("--json", "print the API object"),
  ).action(
    action(async (opts: ConnectionOptions & { json?: boolean }) => {
      const raw = await connect(opts).get("/v1/fleet");
      if (opts.json) return printJson(raw);
      printFleet(expectShape(FleetView, raw, "fleet"));
    }),
  );

  withConnection(
    fleet
      .command("scale")
      .description("run exactly N workers (manual mode)")
      .argument("<n>", "the number of workers")
      .option("--json", "print the updated fleet"),
  ).action(
    action(async (n: string, opts: ConnectionOptions & { json?: boolean }) => {
      const replicas = wholeNumber(n, "N");
      await update(connect(opts), { mode: "manual", replicas }, opts.json);
    }),
  );

  withConnection(
    fleet
      .command("autoscale")
      .description("let the controller size the fleet to the queue, between --min and --max")
      .requiredOption("--min <a>", "never fewer workers than this")
      .requiredOption("--max <b>", "never more workers than this")
      .option("--warm <w>", "idle workers kept ready beyond the queue's needs", "0")
      .option("--json", "print the updated fleet"),
  ).action(
    action(async (opts: ConnectionOptions & { min: string; max: string; warm: string; json?: boolean }) => {
      const min = wholeNumber(opts.min, "--min");
      const max = wholeNumber(opts.max, "--max");
      const warm = wholeNumber(opts.warm, "--warm");
      if (min > max) throw new UsageError(`--min (${min}) must not exceed --max (${max})`);
      await update(connect(opts), { mode: "auto", min, max, warm }, opts.json);
    }),
  );
}

async function update(client: ApiClient, body: Record<string, unknown>, json?: boolean): Promise<void> {
  const raw = await client.put("/v1/fleet", body);
  if (json) return printJson(raw);
  const view = expectShape(FleetView, raw, "fleet");
  out(
    view.mode === "manual"
      ? `fleet set to ${view.replicas} worker(s) (manual); ${view.actual} running now`
      : `fleet autoscaling between ${view.min} and ${view.max} with ${view.warm} warm; ${view.actual} running now`,
  );
}

function printFleet(f: FleetView): void {
  printFields([
    [
      "mode",
      f.mode === "manual"
        ? `manual (${f.replicas} ${f.replicas === 1 ? "replica" : "replicas"})`
        : `auto (min ${f.min}, max ${f.max}, warm ${f.warm})`,
    ],
    ["workers", `${f.actual} running, ${f.desired} desired`],
    ["scaler", f.scaler ?? "- (no controller decision yet)"],
    [
      "leader",
      f.leader ? `${f.leader.holder} (epoch ${f.leader.epoch}, since ${ago(f.leader.since)})` : "none",
    ],
    ["updated", `${ago(f.updatedAt)} by ${f.updatedBy}`],
  ]);
  out();
  printTable(
    ["WHEN", "DESIRED", "ACTUAL", "REASON"],
    f.decisions.map((d) => [ago(d.at), String(d.desired), String(d.actual), d.reason]),
    "(no controller decisions yet)",
  );
}
