import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hello, registerAgent, startTestApi, type TestApi } from "../../api/test/harness.ts";
import { emptyHome, freePort, killLeftovers, runCli } from "./cli.ts";

let t: TestApi;
let admin: Record<string, string>;

beforeAll(async () => {
  t = await startTestApi({ adapter: "pglite", config: { offlineAfterMs: 300_000 } });
  admin = { SKIFF_URL: t.url, SKIFF_TOKEN: t.tokens.admin, SKIFF_HOME: emptyHome() };
});

afterEach(() => {
  expect(killLeftovers(), "CLI processes left running").toBe(0);
});

afterAll(async () => {
  await t?.close();
});

describe("skiff tokens", { timeout: 120_000 }, () => {
  it("creates a token shown once, lists it without the secret, and revokes it", async () => {
    const created = await runCli(["tokens", "create", "--role", "viewer", "--name", "ci-reader"], admin);
    expect(created.code).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^skf_\S+$/);
    expect(created.stderr).toMatch(
      /created viewer token "ci-reader" \(id (\S+)\)\. This is the only time the token is shown/,
    );
    const id = /\(id (\S+)\)/.exec(created.stderr)?.[1] ?? "";

    const viewer = { ...admin, SKIFF_TOKEN: secret };
    const [ls, lsJson, asViewer] = await Promise.all([
      runCli(["tokens", "ls"], admin),
      runCli(["tokens", "ls", "--json"], admin),
      runCli(["tokens", "ls"], viewer),
    ]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^ID\s+NAME\s+ROLE\s+CREATED\s+BY\s+LAST USED\s+STATUS\s+SCOPE\n/);
    expect(ls.stdout).toMatch(
      new RegExp(`${id}\\s+ci-reader\\s+viewer\\s+(just now|\\d+s ago)\\s+root\\s+-\\s+active`),
    );
    expect(ls.stdout).not.toContain(secret);
    const listed = JSON.parse(lsJson.stdout);
    expect(listed).toContainEqual(
      expect.objectContaining({ id, name: "ci-reader", role: "viewer", revokedAt: null }),
    );
    expect(lsJson.stdout).not.toContain(secret);

    // A viewer may not manage tokens: exit 3 with the server's message and a hint.
    expect(asViewer.code).toBe(3);
    expect(asViewer.stderr).toContain(
      'skiff: this needs the admin role; your token "ci-reader" has viewer (forbidden)',
    );
    expect(asViewer.stderr).toContain("hint: the token from SKIFF_TOKEN is valid but its role is too low");

    const revoke = await runCli(["tokens", "revoke", id], admin);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toBe(`revoked viewer token "ci-reader" (${id})\n`);

    const refused = await runCli(["jobs", "ls"], viewer);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("skiff: the token is unknown or revoked (unauthorized)");
    expect(refused.stderr).toContain("hint: the token from SKIFF_TOKEN was refused");
  });

  it("says where it looked when there is no token, and reads $SKIFF_HOME/admin.token", async () => {
    const home = emptyHome();
    const none = await runCli(["jobs", "ls"], { SKIFF_URL: t.url, SKIFF_HOME: home });
    expect(none.code).toBe(3);
    expect(none.stderr).toContain(
      `skiff: no API token: --token was not given, SKIFF_TOKEN is not set, and ${join(home, "admin.token")} does not exist`,
    );
    expect(none.stderr).toContain("pnpm start");
    expect(none.stderr).toContain("skiff tokens create");

    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, "admin.token"), `${t.tokens.admin}\n`, { mode: 0o600 });
    const fromFile = await runCli(["tokens", "ls", "--json"], { SKIFF_URL: t.url, SKIFF_HOME: home });
    expect(fromFile.code).toBe(0);
    expect(JSON.parse(fromFile.stdout).length).toBeGreaterThan(0);
  });

  it("explains an unreachable API and rejects a bad role locally", async () => {
    const port = await freePort();
    const [down, badRole] = await Promise.all([
      runCli(["agents", "ls", "--base-url", `http://127.0.0.1:${port}`], admin),
      runCli(["tokens", "create", "--role", "root", "--name", "x"], admin),
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(
      `skiff: cannot reach the API at http://127.0.0.1:${port}: connection refused`,
    );
    expect(down.stderr).toContain("pnpm start");
    expect(down.stderr).toContain("--api-url");
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toContain('--role must be one of admin, operator, viewer, agent, got "root"');
  });
});

describe("skiff audit", { timeout: 120_000 }, () => {
  it("lists, verifies, and exports every entry as JSON lines in seq order", async () => {
    await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("audited") });
    const [verify, verifyJson, ls, lsJson, exported] = await Promise.all([
      runCli(["audit", "verify"], admin),
      runCli(["audit", "verify", "--json"], admin),
      runCli(["audit", "ls", "--actor", "olivia", "--since", "1h"], admin),
      runCli(["audit", "ls", "--limit", "2", "--json"], admin),
      runCli(["audit", "export"], admin),
    ]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^audit chain intact: \d+ entries checked\n$/);
    expect(JSON.parse(verifyJson.stdout)).toMatchObject({ ok: true });

    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^SEQ\s+WHEN\s+ACTOR\s+ROLE\s+ACTION\s+TARGET\s+OUTCOME\n/);
    expect(ls.stdout).toMatch(/olivia\s+operator\s+job\.submit\s+job_\S+\s+ok/);
    const two = JSON.parse(lsJson.stdout);
    expect(two).toHaveLength(2);
    expect(two[0].seq).toBeGreaterThan(two[1].seq);

    expect(exported.code).toBe(0);
    const entries = exported.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const seqs = entries.map((e) => e.seq);
    expect(seqs[0]).toBe(1);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(entries.some((e) => e.actor === "olivia" && e.action === "job.submit")).toBe(true);
    expect(entries.at(-1).seq).toBeGreaterThanOrEqual(two[0].seq);
  });

  it("rejects a bad --since as a usage error", async () => {
    const res = await runCli(["audit", "ls", "--since", "yesterday-ish"], admin);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("--since must be an ISO 8601 time or an age such as 30m");
  });
});

describe("skiff fleet and agents", { timeout: 120_000 }, () => {
  it("scales the fleet and shows it", async () => {
    const scale = await runCli(["fleet", "scale", "3"], admin);
    expect(scale.code).toBe(0);
    expect(scale.stdout).toContain("fleet set to 3 worker(s) (manual)");
    const [json, text, bad] = await Promise.all([
      runCli(["fleet", "status", "--json"], admin),
      runCli(["fleet", "status"], admin),
      runCli(["fleet", "autoscale", "--min", "5", "--max", "2"], admin),
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({ mode: "manual", replicas: 3, desired: 3 });
    expect(text.stdout).toMatch(/mode:\s+manual \(3 replicas\)/);
    expect(text.stdout).toMatch(/workers:\s+\d+ running, 3 desired/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--min (5) must not exceed --max (2)");

    const auto = await runCli(
      ["fleet", "autoscale", "--min", "1", "--max", "4", "--warm", "1", "--json"],
      admin,
    );
    expect(JSON.parse(auto.stdout)).toMatchObject({ mode: "auto", min: 1, max: 4, warm: 1 });
  });

  it("lists agents, loudly marks an unsandboxed one, and drains one", async () => {
    const safeId = await registerAgent(t, "builder-1", { queue: "builds" });
    const reg = await t.call("POST", "/v1/agent/register", {
      token: t.tokens.agent,
      body: { name: "yolo-1", version: "0.1.0", slots: 1, labels: {}, sandbox: "none", resources: {} },
    });
    expect(reg.status).toBe(200);
    const [ls, lsJson] = await Promise.all([
      runCli(["agents", "ls"], admin),
      runCli(["agents", "ls", "--json"], admin),
    ]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+ID\s+STATUS\s+ACTIVITY\s+SANDBOX\s+HEARTBEAT\s+JOBS\s+QUEUES/);
    expect(ls.stdout).toMatch(
      new RegExp(`builder-1\\s+${safeId}\\s+online\\s+idle\\s+bwrap\\s+\\S+ ago\\s+0/2\\s+builds`),
    );
    expect(ls.stdout).toMatch(/yolo-1\s+\S+\s+online\s+idle\s+none UNSAFE/);
    expect(ls.stderr).toContain("WARNING: 1 online agent(s) run job steps WITHOUT ANY SANDBOX");
    expect(JSON.parse(lsJson.stdout)).toContainEqual(
      expect.objectContaining({ id: safeId, name: "builder-1" }),
    );

    const drain = await runCli(["agents", "drain", safeId, "--reason", "kernel upgrade"], admin);
    expect(drain.code).toBe(0);
    expect(drain.stdout).toContain(`draining agent builder-1 (${safeId})`);
    const after = (await t.call("GET", `/v1/agents/${safeId}`)).body;
    expect(after.drainRequested).toBe(true);
  });
});

describe("skiff doctor", { timeout: 120_000 }, () => {
  it("reports the live API and the token as OK and gives a next step for every failure", async () => {
    const res = await runCli(["doctor", "--json"], admin);
    const report = JSON.parse(res.stdout);
    const byName = Object.fromEntries(report.checks.map((c: { name: string }) => [c.name, c]));
    expect(Object.keys(byName)).toEqual([
      "api",
      "token",
      "database",
      "bus",
      "queues",
      "docker",
      "docker egress",
      "bubblewrap",
      "slirp4netns",
      "user namespaces",
      "cgroups",
    ]);
    expect(byName.api).toMatchObject({ ok: true, detail: `reachable at ${t.url} (ready)` });
    expect(byName.token).toMatchObject({
      ok: true,
      detail: 'valid: "root" with role admin (from SKIFF_TOKEN)',
    });
    expect(byName.database).toMatchObject({ ok: true, detail: "pglite: ok" });
    expect(byName.bus).toMatchObject({ ok: true, detail: "memory: ok" });
    for (const c of report.checks) if (!c.ok) expect(c.next, `${c.name} says what to do`).toMatch(/\S/);
    expect(report.ok).toBe(report.checks.every((c: { ok: boolean }) => c.ok));
    expect(res.code).toBe(report.ok ? 0 : 1);

    // Jobs on a queue no online agent serves are not backlog: doctor says so and what to do.
    // Every such queue is named, each with the command that would serve it.
    await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("nobody-serves-this") });
    for (let i = 0; i < 2; i++)
      await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("nor-this") });
    const stuck = JSON.parse((await runCli(["doctor", "--json"], admin)).stdout);
    const queues = stuck.checks.find((c: { name: string }) => c.name === "queues");
    expect(queues.ok).toBe(false);
    // (Other tests in this file may have left jobs on queues of their own: those are named too.)
    expect(queues.detail).toMatch(/^\d+ queued jobs wait on queues no online agent serves: .*nor-this \(2\)/);
    expect(queues.detail).toContain("nobody-serves-this (1)");
    // The busiest queue first.
    expect(queues.detail.indexOf("nor-this (2)")).toBeLessThan(
      queues.detail.indexOf("nobody-serves-this (1)"),
    );
    expect(queues.next).toContain("skiff worker --labels queue=nobody-serves-this");
    expect(queues.next).toContain("skiff worker --labels queue=nor-this");

    const down = await runCli(["doctor", "--base-url", `http://127.0.0.1:${await freePort()}`], {
      SKIFF_HOME: emptyHome(),
    });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(
      /^FAIL\s+api\s+cannot reach the API at .*: connection refused\n\s+next: .*pnpm start/m,
    );
    expect(down.stdout).toMatch(/^FAIL\s+token\s+no API token: .*\n\s+next: /m);
    // Not left out when the token fails: said that it could not be checked, and why.
    expect(down.stdout).toMatch(/^FAIL\s+queues\s+not checked: .*needs a working token/m);
  });
});
