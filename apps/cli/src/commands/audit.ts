import { readFileSync } from "node:fs";
import { AuditCheckpoint, AuditCheckpointList, AuditEntry, AuditVerifyResult } from "@skiff/protocol";
import type { Command } from "commander";
import { action, EXIT, wholeNumber } from "../action.ts";
import {
  type ApiClient,
  type ConnectionOptions,
  connect,
  expectPage,
  expectShape,
  withConnection,
} from "../client.ts";
import { UsageError } from "../env.ts";
import { ago, err, out, paint, printJson, printTable, stateCell } from "../output.ts";

const PAGE_MAX = 1000;

interface Filters {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  until?: string;
}

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("list, verify and export the audit log");

  withConnection(
    audit
      .command("ls")
      .description("list audit entries, newest first")
      .option("--actor <name>", "only entries by this actor (token name)")
      .option("--action <action>", "only this action, e.g. job.submit or token.revoke")
      .option("--target <target>", "only entries about this target")
      .option("--since <time>", "from this time: ISO 8601 or an age such as 30m, 2h, 7d")
      .option("--until <time>", "before this time: ISO 8601 or an age such as 30m, 2h, 7d")
      .option("--limit <n>", "at most this many entries", "50")
      .option("--json", "print the entries as a JSON array of API objects"),
  ).action(
    action(async (opts: ConnectionOptions & Filters & { limit: string; json?: boolean }) => {
      const limit = wholeNumber(opts.limit, "--limit", 1);
      const query = filterQuery(opts);
      const { items, raw } = await fetchAudit(connect(opts), query, limit);
      if (opts.json) return printJson(raw);
      const s = process.stdout;
      printTable(
        ["SEQ", "WHEN", "ACTOR", "ROLE", "ACTION", "TARGET", "OUTCOME"],
        items.map((e) => [
          String(e.seq),
          ago(e.at),
          e.actor,
          e.role,
          e.action,
          e.target,
          stateCell(s, e.outcome),
        ]),
        "no audit entries match",
      );
    }),
  );

  withConnection(
    audit
      .command("verify")
      .description(
        "recompute the hash chain and every row's seal; exits 1 and names the first broken entry if it was tampered with",
      )
      .option(
        "--checkpoint <file>",
        "also check the log against checkpoints kept outside the database (JSON lines, as `skiff audit checkpoints --json` or the API's audit-checkpoints.jsonl write them): names rows deleted from the end and rewritten history",
      )
      .option("--json", "print the API object"),
  ).action(
    action(async (opts: ConnectionOptions & { json?: boolean; checkpoint?: string }) => {
      const client = connect(opts);
      const raw =
        opts.checkpoint === undefined
          ? await client.get("/v1/audit/verify")
          : await client.post("/v1/audit/verify", { checkpoints: readCheckpoints(opts.checkpoint) });
      const res = expectShape(AuditVerifyResult, raw, "verification result");
      if (opts.json) printJson(raw);
      else if (res.ok) {
        const parts = [`${res.checked} entries checked`];
        if (res.sealed) parts.push("seals checked");
        if (res.checkpoints) parts.push(`${res.checkpoints} checkpoints matched`);
        out(paint(process.stdout, "green", `audit chain intact: ${parts.join(", ")}`));
        if (res.sealed === false)
          err(
            paint(
              process.stderr,
              "yellow",
              "the API holds no audit key, so seals were not checked: someone who can write the database could have rewritten the log unseen (docs/security.md)",
            ),
          );
        if (res.unsealed)
          err(`rows 1-${res.unsealed} were written before sealing was on: they are only hash-chained`);
      } else
        err(
          paint(
            process.stderr,
            "red",
            `audit chain BROKEN at seq ${res.firstBrokenSeq ?? "?"}${res.reason ? ` (${res.reason})` : ""}; ${res.checked} entries checked. Entries from there on cannot be trusted; restore them from a backup or an export.`,
          ),
        );
      if (!res.ok) process.exitCode = EXIT.failed;
    }),
  );

  withConnection(
    audit
      .command("checkpoints")
      .description(
        "list the signed checkpoints of the audit chain's head this API replica made; keep them outside the database",
      )
      .option("--json", "print them as JSON lines, oldest first (the format `verify --checkpoint` reads)"),
  ).action(
    action(async (opts: ConnectionOptions & { json?: boolean }) => {
      const raw = expectShape(
        AuditCheckpointList,
        await connect(opts).get("/v1/audit/checkpoints"),
        "checkpoints",
      );
      const items = [...raw.items].reverse();
      if (opts.json) {
        for (const cp of items) process.stdout.write(`${JSON.stringify(cp)}\n`);
        return;
      }
      if (!raw.sealed)
        err("this API replica holds no audit key, so it makes no checkpoints (set SKIFF_AUDIT_KEY)");
      printTable(
        ["SEQ", "WHEN", "HASH"],
        raw.items.map((cp) => [String(cp.seq), ago(cp.at), `${cp.hash.slice(0, 16)}…`]),
        "no checkpoints yet: one is made every auditCheckpointSeconds while the log grows",
      );
    }),
  );

  withConnection(
    audit
      .command("export")
      .description("print every audit entry as JSON lines, oldest first (for archiving or a SIEM)"),
  ).action(
    action(async (opts: ConnectionOptions) => {
      const { raw } = await fetchAudit(connect(opts), {}, Number.POSITIVE_INFINITY);
      for (let i = raw.length - 1; i >= 0; i--) process.stdout.write(`${JSON.stringify(raw[i])}\n`);
    }),
  );
}

/** Pages newest first through the cursor until `limit` entries or the start of the log. */
async function fetchAudit(
  client: ApiClient,
  query: Record<string, string | undefined>,
  limit: number,
): Promise<{ items: AuditEntry[]; raw: unknown[] }> {
  const items: AuditEntry[] = [];
  const raw: unknown[] = [];
  let cursor: string | undefined;
  do {
    const page = expectPage(
      AuditEntry,
      await client.get("/v1/audit", { ...query, cursor, limit: Math.min(PAGE_MAX, limit - items.length) }),
      "audit entry",
    );
    items.push(...page.items);
    raw.push(...page.raw);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && items.length < limit);
  return { items, raw };
}

function filterQuery(f: Filters): Record<string, string | undefined> {
  return {
    actor: f.actor,
    action: f.action,
    target: f.target,
    since: f.since === undefined ? undefined : parseTime(f.since, "--since"),
    until: f.until === undefined ? undefined : parseTime(f.until, "--until"),
  };
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** An ISO 8601 time, or an age ("90s", "30m", "2h", "7d", "1w") counted back from now. */
export function parseTime(value: string, name: string): string {
  const rel = /^(\d+)([smhdw])$/.exec(value.trim());
  if (rel) return new Date(Date.now() - Number(rel[1]) * (UNIT_MS[rel[2] ?? "s"] ?? 1000)).toISOString();
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new UsageError(`${name} must be an ISO 8601 time or an age such as 30m, 2h, 7d, got "${value}"`);
  return new Date(t).toISOString();
}

/** Checkpoints from a file of JSON lines (or one JSON array); a bad line stops with its number. */
function readCheckpoints(file: string): AuditCheckpoint[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`--checkpoint: cannot read ${file}: ${(e as Error).message}`);
  }
  const trimmed = text.trim();
  const values: { line: number; value: unknown }[] = [];
  const parse = (raw: string, line: number) => {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new UsageError(`--checkpoint: ${file} line ${line} is not JSON`);
    }
  };
  if (trimmed.startsWith("[")) {
    const all = parse(trimmed, 1);
    if (Array.isArray(all)) for (const [i, value] of all.entries()) values.push({ line: i + 1, value });
  } else {
    trimmed.split("\n").forEach((raw, i) => {
      if (raw.trim() !== "") values.push({ line: i + 1, value: parse(raw, i + 1) });
    });
  }
  if (values.length === 0) throw new UsageError(`--checkpoint: ${file} holds no checkpoints`);
  return values.map(({ line, value }) => {
    const res = AuditCheckpoint.safeParse(value);
    if (!res.success)
      throw new UsageError(
        `--checkpoint: ${file} line ${line} is not a checkpoint (${res.error.issues[0]?.path.join(".") || "value"}: ${res.error.issues[0]?.message})`,
      );
    return res.data;
  });
}
