import { describeWith } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startWorker } from "../src/index.ts";
import { type Stack, silent, startStack } from "./stack.ts";
import { bwrapGate } from "./support.ts";

/**
 * A job that tries to read what the worker holds. The worker serves only SKIFF_SECRET_<NAME>
 * variables; its token, database URL and every other variable are as absent as a made-up name.
 */
const SECRET = "npm_Secret+Value/42=xyz";
const saved: Record<string, string | undefined> = {};
const setEnv = (vars: Record<string, string>) => {
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
};

describeWith(bwrapGate(), "hostile job: secrets [bwrap, pglite]", () => {
  let stack: Stack;
  beforeAll(async () => {
    setEnv({
      SKIFF_SECRET_NPM_TOKEN: SECRET,
      SKIFF_TOKEN: "skf_the-workers-own-agent-token",
      DATABASE_URL: "postgres://skiff:hunter22@db.internal/skiff",
    });
    stack = await startStack({ queue: "secrets" });
  });
  afterAll(async () => {
    await stack?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("a secret the worker was given is in the step's environment and masked in every common encoding", async () => {
    const job = await stack.submit({
      name: "leak-it",
      secrets: ["NPM_TOKEN"],
      steps: [
        {
          name: "leak",
          run: [
            'echo "raw $NPM_TOKEN"',
            'printf %s "$NPM_TOKEN" | base64 -w0; echo',
            'printf "x%s" "$NPM_TOKEN" | base64 -w0; echo',
            'printf "xy%s" "$NPM_TOKEN" | base64 -w0; echo',
            "printf %s \"$NPM_TOKEN\" | base64 -w0 | tr '+/' '-_'; echo",
            "printf %s \"$NPM_TOKEN\" | od -An -tx1 | tr -d ' \\n'; echo",
            "node -e 'console.log(encodeURIComponent(process.env.NPM_TOKEN))'",
            'printf %s "$NPM_TOKEN" | cut -c1-9; printf %s "$NPM_TOKEN" | cut -c10-',
            'echo "length $(printf %s "$NPM_TOKEN" | wc -c)"',
          ].join("; "),
        },
      ],
    });
    const done = await stack.final(job.id);
    const text = (await stack.logs(job.id)).map((l: any) => l.text).join("\n");
    expect(done.state, text).toBe("succeeded");
    expect(text).toContain(`length ${SECRET.length}`);
    const bytes = Buffer.from(SECRET);
    for (const leak of [
      SECRET,
      bytes.toString("base64").slice(0, 28),
      bytes.toString("base64url").slice(0, 28),
      bytes.toString("hex"),
      encodeURIComponent(SECRET),
      SECRET.slice(0, 9),
      SECRET.slice(9),
    ]) {
      expect(text).not.toContain(leak);
    }
    expect(text.match(/\*\*\*/g)?.length ?? 0).toBeGreaterThanOrEqual(9);
  });

  it("asking for the worker's token, its DATABASE_URL or its PATH is refused exactly as a name that does not exist", async () => {
    const refusals: string[] = [];
    for (const name of ["SKIFF_TOKEN", "DATABASE_URL", "PATH", "SKIFF_SECRET_NPM_TOKEN", "NO_SUCH_THING"]) {
      const job = await stack.submit({
        name: `want-${name}`,
        secrets: [name],
        steps: [{ name: "print", run: `printf %s "$${name}" | base64` }],
      });
      const done = await stack.final(job.id);
      expect(done.state).toBe("failed");
      expect(done.steps[0].state).toBe("skipped");
      const text = (await stack.logs(job.id)).map((l: any) => l.text).join("\n");
      expect(text).not.toContain("hunter22");
      expect(text).not.toContain(
        Buffer.from("skf_the-workers-own-agent-token").toString("base64").slice(0, 20),
      );
      refusals.push(done.error.replace(name, "NAME"));
    }
    expect(new Set(refusals).size).toBe(1);
    expect(refusals[0]).toContain("not held by worker");
    expect(refusals[0]).not.toContain("NPM_TOKEN");
  });

  it("a worker refuses to start with a secret too short to mask, naming it", async () => {
    await expect(
      startWorker(
        {
          apiUrl: stack.url,
          token: "unused",
          name: "short-secret",
          sandbox: "bwrap",
          healthPort: null,
          secrets: { PIN: "123" },
        },
        silent,
      ),
    ).rejects.toThrow(/PIN.*shorter than 4 characters/);
  });
});
