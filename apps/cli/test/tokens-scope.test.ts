import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../api/test/harness.ts";
import { emptyHome, killLeftovers, runCli } from "./cli.ts";

let t: TestApi;
let admin: Record<string, string>;

beforeAll(async () => {
  t = await startTestApi({ adapter: "pglite" });
  admin = { SKIFF_URL: t.url, SKIFF_TOKEN: t.tokens.admin, SKIFF_HOME: emptyHome() };
});

afterEach(() => {
  expect(killLeftovers(), "CLI processes left running").toBe(0);
});

afterAll(async () => {
  await t?.close();
});

describe("skiff tokens with a scope", { timeout: 120_000 }, () => {
  it("creates an agent token bound to queues and labels, which ls and ls --json show, and the API enforces", async () => {
    const created = await runCli(
      [
        "tokens",
        "create",
        "--role",
        "agent",
        "--name",
        "ci-pool",
        "--queues",
        "ci,nightly",
        "--labels",
        "pool=ci",
      ],
      admin,
    );
    expect(created.code, created.stderr).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^skf_\S+$/);
    expect(created.stderr).not.toContain("may serve every queue");

    const [ls, lsJson] = await Promise.all([
      runCli(["tokens", "ls"], admin),
      runCli(["tokens", "ls", "--json"], admin),
    ]);
    expect(ls.stdout).toMatch(/ci-pool\s+agent\s+.*active\s+queue=ci,nightly pool=ci\n/);
    // The harness's unscoped agent token and the admin token.
    expect(ls.stdout).toMatch(/agent-pool\s+agent\s+.*active\s+any\n/);
    expect(ls.stdout).toMatch(/root\s+admin\s+.*active\s+-\n/);
    expect(JSON.parse(lsJson.stdout)).toContainEqual(
      expect.objectContaining({
        name: "ci-pool",
        scope: { queues: ["ci", "nightly"], labels: { pool: "ci" } },
      }),
    );

    const outside = await t.call("POST", "/v1/agent/register", {
      token: secret,
      body: { name: "w", version: "1", slots: 1, labels: { queue: "deploy", pool: "ci" }, sandbox: "bwrap" },
    });
    expect(outside.body.error.code).toBe("out_of_scope");
  });

  it("warns about an unscoped agent token and refuses a scope where it makes no sense", async () => {
    const [unscoped, viewer, labelsAlone, empty, badQueue] = await Promise.all([
      runCli(["tokens", "create", "--role", "agent", "--name", "anything", "--json"], admin),
      runCli(["tokens", "create", "--role", "viewer", "--name", "v", "--queues", "a"], admin),
      runCli(["tokens", "create", "--role", "agent", "--name", "l", "--labels", "pool=x"], admin),
      runCli(["tokens", "create", "--role", "agent", "--name", "e", "--queues", ","], admin),
      runCli(["tokens", "create", "--role", "agent", "--name", "b", "--queues", "has space"], admin),
    ]);
    expect(unscoped.code).toBe(0);
    expect(JSON.parse(unscoped.stdout)).toMatchObject({ name: "anything", role: "agent", scope: null });
    expect(unscoped.stderr).toContain("this agent token may serve every queue");
    expect(viewer).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--queues and --labels are for agent tokens"),
    });
    expect(labelsAlone).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--labels needs --queues"),
    });
    expect(empty.code).toBe(2);
    // The server's validation names the field; invalid input is a usage error.
    expect(badQueue.code).toBe(2);
    expect(badQueue.stderr).toContain("scope.queues[0]");
  });
});
