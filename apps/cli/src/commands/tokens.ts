import { ROLES, type Role, TokenInfo, type TokenScope } from "@skiff/protocol";
import type { Command } from "commander";
import { action } from "../action.ts";
import { type ConnectionOptions, connect, expectPage, expectShape, withConnection } from "../client.ts";
import { UsageError } from "../env.ts";
import { ago, err, out, paint, printJson, printTable } from "../output.ts";
import { parseLabels } from "./worker.ts";

const Created = TokenInfo.pick({ id: true, name: true, role: true, scope: true }).extend({
  token: TokenInfo.shape.name,
});

interface CreateOptions extends ConnectionOptions {
  role: string;
  name: string;
  queues?: string;
  labels?: string;
  json?: boolean;
}

/** The scope `--queues` and `--labels` ask for, or undefined for none. */
function scopeOf(opts: CreateOptions): TokenScope | undefined {
  if (opts.queues === undefined) {
    if (opts.labels !== undefined) throw new UsageError("--labels needs --queues: a scope names its queues");
    return undefined;
  }
  if (opts.role !== "agent")
    throw new UsageError("--queues and --labels are for agent tokens (--role agent)");
  const queues = opts.queues
    .split(",")
    .map((q) => q.trim())
    .filter((q) => q !== "");
  if (queues.length === 0) throw new UsageError("--queues takes queue names separated by commas, e.g. a,b");
  return opts.labels === undefined ? { queues } : { queues, labels: parseLabels(opts.labels) };
}

/** `queue=a,b pool=x`: what an agent registered with the token must serve and carry. */
export function describeScope(t: Pick<TokenInfo, "role" | "scope">): string {
  if (t.role !== "agent") return "-";
  if (!t.scope) return "any";
  const labels = Object.entries(t.scope.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  return [`queue=${t.scope.queues.join(",")}`, ...labels].join(" ");
}

export function registerTokens(program: Command): void {
  const tokens = program.command("tokens").description("create, list and revoke API tokens (admin)");

  withConnection(
    tokens
      .command("create")
      .description("create a token; the secret is printed once, on stdout")
      .requiredOption("--role <role>", `what it may do: ${ROLES.join(", ")}`)
      .requiredOption("--name <name>", "who or what uses it (shown in the audit log)")
      .option("--queues <a,b>", "agent tokens: the only queues its agents may serve")
      .option("--labels <k=v,...>", "agent tokens, with --queues: labels its agents must carry")
      .option("--json", "print {id, name, role, scope, token} as JSON"),
  ).action(
    action(async (opts: CreateOptions) => {
      if (!ROLES.includes(opts.role as Role))
        throw new UsageError(`--role must be one of ${ROLES.join(", ")}, got "${opts.role}"`);
      const scope = scopeOf(opts);
      const raw = await connect(opts).post("/v1/tokens", {
        name: opts.name,
        role: opts.role,
        ...(scope ? { scope } : {}),
      });
      const made = expectShape(Created, raw, "token");
      if (opts.json) printJson(raw);
      else out(made.token);
      if (made.role === "agent" && !made.scope) {
        err(
          paint(
            process.stderr,
            "yellow",
            "this agent token may serve every queue; bind the next one with --queues a,b [--labels k=v]",
          ),
        );
      }
      err(
        paint(
          process.stderr,
          "yellow",
          `created ${made.role} token "${made.name}" (id ${made.id}). This is the only time the token is shown: store it now. Revoke it with: skiff tokens revoke ${made.id}`,
        ),
      );
    }),
  );

  withConnection(
    tokens
      .command("ls")
      .description("list tokens (never their secrets)")
      .option("--json", "print the tokens as a JSON array of API objects"),
  ).action(
    action(async (opts: ConnectionOptions & { json?: boolean }) => {
      const page = expectPage(TokenInfo, await connect(opts).get("/v1/tokens"), "token");
      if (opts.json) return printJson(page.raw);
      const s = process.stdout;
      printTable(
        ["ID", "NAME", "ROLE", "CREATED", "BY", "LAST USED", "STATUS", "SCOPE"],
        page.items.map((t) => [
          t.id,
          t.name,
          t.role,
          ago(t.createdAt),
          t.createdBy,
          ago(t.lastUsedAt),
          t.revokedAt ? paint(s, "red", `revoked ${ago(t.revokedAt)}`) : paint(s, "green", "active"),
          describeScope(t),
        ]),
        "no tokens",
      );
    }),
  );

  withConnection(
    tokens
      .command("revoke")
      .description("revoke a token at once; requests with it are refused from now on")
      .argument("<id>", "the token's id (from `skiff tokens ls`)")
      .option("--json", "print the revoked token"),
  ).action(
    action(async (id: string, opts: ConnectionOptions & { json?: boolean }) => {
      const raw = await connect(opts).delete(`/v1/tokens/${encodeURIComponent(id)}`);
      if (opts.json) return printJson(raw);
      const t = expectShape(TokenInfo, raw, "token");
      out(`revoked ${t.role} token "${t.name}" (${t.id})`);
    }),
  );
}
