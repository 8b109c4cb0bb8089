import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Api, buildApi, hashToken, newTokenSecret } from "@skiff/api";
import { createBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import { describeWith, waitFor } from "@skiff/testkit";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Controller, createProcessScaler, mintWorkerToken, type Scaler } from "../src/index.ts";

function bwrapWorks() {
  try {
    execFileSync("bwrap", ["--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"], { stdio: "ignore" });
    return { available: true, missing: null };
  } catch {
    return { available: false, missing: "bubblewrap is missing: apt-get install bubblewrap" };
  }
}

describeWith(bwrapWorks(), "process scaler: autoscaling real skiff worker processes", () => {
  let store: Store;
  let api: Api;
  let url: string;
  let operator: string;
  let scaler: Scaler;
  let controller: Controller;
  let token = "";
  const workDir = mkdtempSync(join(tmpdir(), "skiff-ctl-work-"));
  const prefix = `ctl${process.pid}`;

  beforeAll(async () => {
    store = await openStore({});
    const bus = await createBus({});
    api = buildApi({
      config: { port: 0, heartbeatIntervalMs: 500, offlineAfterMs: 5_000, reaperIntervalMs: 200 },
      store,
      bus,
      logger: pino({ level: "silent" }),
    });
    url = await api.listen();
    operator = newTokenSecret();
    await store.createToken(
      { name: "olivia", role: "operator", hash: hashToken(operator) },
      { actor: "t", role: "system" },
    );
    await store.updateFleet({ mode: "auto", min: 1, max: 4, warm: 0 }, { actor: "olivia", role: "operator" });
    token = await mintWorkerToken(store, "scaler-test", "test");
    scaler = createProcessScaler({
      apiUrl: url,
      token,
      namePrefix: prefix,
      extraArgs: ["--slots", "2", "--work-dir", workDir, "--sandbox", "bwrap"],
    });
    controller = new Controller(store, scaler, {
      holder: "ctl-test",
      tickMs: 250,
      slotsPerWorker: 2,
      decide: { upCooldownMs: 500, downCooldownMs: 1_000, downStableMs: 2_000 },
      log: () => {},
    });
    controller.start();
  });
  afterAll(async () => {
    await controller?.stop();
    await scaler?.close();
    await api?.shutdown();
    await store?.close();
    rmSync(workDir, { recursive: true, force: true });
    const left = execFileSync("sh", ["-c", `pgrep -f "[-]-name ${prefix}-" || true`])
      .toString()
      .trim();
    expect(left, "worker processes left behind").toBe("");
  });

  const online = async () =>
    (await store.listAgents({ includeOffline: false })).filter((a) => a.name.startsWith(prefix));

  it("starts the minimum, scales up as jobs queue, never stops a busy worker, and scales back down when idle", async () => {
    await waitFor("one worker at the minimum", async () => (await online()).length === 1, 30_000, 100);
    // The agent token is in the worker's environment, not on its command line, which any user of
    // the host can read.
    const pids = execFileSync("sh", ["-c", `pgrep -f "[-]-name ${prefix}-" || true`])
      .toString()
      .trim()
      .split("\n")
      .filter(Boolean);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).not.toContain(token);
      expect(readFileSync(`/proc/${pid}/environ`, "utf8")).toContain(`SKIFF_TOKEN=${token}`);
    }
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `burst-${i}`, steps: [{ name: "work", run: "sleep 6" }] }),
      });
      ids.push(((await res.json()) as { id: string }).id);
    }
    // Four worker processes for the burst (they come up while the first ones already work).
    await waitFor("four workers for the burst", () => scaler.list().length === 4, 40_000, 100);
    const jobs = await waitFor(
      "every job to finish",
      async () => {
        const all = await Promise.all(ids.map((id) => store.getJob(id)));
        return all.every((j) => j && ["succeeded", "failed", "canceled", "timed_out"].includes(j.state))
          ? all
          : undefined;
      },
      90_000,
      200,
    );
    // A busy worker stopped mid-job would show up as a failed job or a second attempt.
    expect(jobs.map((j) => [j?.state, j?.attempt])).toEqual(ids.map(() => ["succeeded", 1]));
    await waitFor("back to one worker", () => scaler.list().length === 1, 60_000, 200);
    const decisions = await store.recentDecisions(50);
    expect(decisions.map((d) => d.desired)).toEqual(expect.arrayContaining([1, 4]));
    const drains = await store.listAudit({ action: "agent.drain", limit: 50 });
    expect(drains.length).toBeGreaterThanOrEqual(3);
    expect(drains.every((d) => d.actor === "ctl-test" && d.details.reason === "scale down")).toBe(true);
  });

  it("replaces a worker that crashes", async () => {
    const [name] = scaler.list();
    expect(name).toBeDefined();
    const before = (await online()).find((a) => a.name === name);
    const pid = Number(
      execFileSync("sh", ["-c", `pgrep -f "[-]-name ${name} "`])
        .toString()
        .trim()
        .split("\n")[0],
    );
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
    const replacement = await waitFor(
      "a new agent under the same name",
      async () => (await online()).find((a) => a.name === name && a.id !== before?.id),
      30_000,
      200,
    );
    expect(replacement.status).toBe("online");
    expect(scaler.list()).toEqual([name]);
  });
});
