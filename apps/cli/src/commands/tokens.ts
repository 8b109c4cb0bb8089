import { ROLES, type Role, TokenInfo } from "@skiff/protocol";
import type { Command } from "commander";
import { action } from "../action.ts";
import { type ConnectionOptions, connect, expectPage, expectShape, withConnection } from "../client.ts";
import { UsageError } from "../env.ts";
import { ago, err, out, paint, printJson, printTable } from "../output.ts";

const Created = TokenInfo.pick({ id: true, name: true, role: true }).extend({ token: TokenInfo.shape.name });

export function registerTokens(program: Command): void {
  const tokens = program.command("tokens").description("create, list and revoke API tokens (admin)");

  withConnection(
    tokens
      .command("create")
      .description("create a token; the secret is printed once, on stdout")
      .requiredOption("--role <role>", `what it may do: ${ROLES.join(", ")}`)
      .requiredOption("--name <name>", "who or what uses it (shown in the audit log)")
      .option("--json", "print {id, name, role, token} as JSON"),
  ).action(
    action(async (opts: ConnectionOptions & { role: string; name: string; json?: boolean }) => {
      if (!ROLES.includes(opts.role as Role))
        throw new UsageError(`--role must be one of ${ROLES.join(", ")}, got "${opts.role}"`);
      const raw = await connect(opts).post("/v1/tokens", { name: opts.name, role: opts.role });
      const made = expectShape(Created, raw, "token");
      if (opts.json) printJson(raw);
      else out(made.token);
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
        ["ID", "NAME", "ROLE", "CREATED", "BY", "LAST USED", "STATUS"],
        page.items.map((t) => [
          t.id,
          t.name,
          t.role,
          ago(t.createdAt),
          t.createdBy,
          ago(t.lastUsedAt),
          t.revokedAt ? paint(s, "red", `revoked ${ago(t.revokedAt)}`) : paint(s, "green", "active"),
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
