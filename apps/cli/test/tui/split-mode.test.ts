import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  allOf,
  createTestDatabase,
  describeWith,
  pgGate,
  redisGate,
  TEST_REDIS_URL,
  type TestDatabase,
  waitFor,
} from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  freePort,
  killLeftovers,
  type Proc,
  startApi,
  startSkiff,
  stopProc,
  whileRunning,
} from "../../../worker/test/procs.ts";
import { bwrapGate } from "../../../worker/test/support.ts";
import { ApiClient } from "../../src/client.ts";
import { HttpBackend } from "../../src/tui/data/api.ts";
import { runCli } from "../cli.ts";
import { startConsole, type TestConsole } from "./console.ts";

const gate = allOf(await pgGate(), await redisGate(), bwrapGate());

/**
 * Production's shape on one machine: two `skiff api` replicas on PostgreSQL and Redis, a
 * `skiff controller --scaler process` starting real `skiff worker` processes, and the console
 * attached to the second replica while the operator scales through the first. Whatever the
 * controller changes (a process the console's replica never hears from directly) must reach the
 * console from the event log.
 */
describeWith(
  gate,
  "split mode: the console on one replica sees what the controller and the other replica change [pg, redis, bwrap, processes]",
  () => {
    let db: TestDatabase;
    const root = mkdtempSync(join(tmpdir(), "skiff-split-"));
    const procs: Proc[] = [];
    const apis: string[] = [];
    let admin = "";
    let c: TestConsole;

    beforeAll(async () => {
      db = await createTestDatabase();
      const prefix = `split-${process.pid}-${Date.now()}`;
      for (const name of ["api-1", "api-2"]) {
        const { proc, url } = await startApi(name, {
          port: await freePort(),
          home: join(root, name),
          databaseUrl: db.url,
          redisUrl: TEST_REDIS_URL,
          busPrefix: prefix,
          env: { SKIFF_HEARTBEAT_INTERVAL_MS: "500" },
        });
        procs.push(proc);
        apis.push(url);
      }
      admin = readFileSync(join(root, "api-1", "admin.token"), "utf8").trim();
      const controller = startSkiff(
        "controller",
        [
          "controller",
          "--scaler",
          "process",
          "--api-url",
          apis[0] ?? "",
          "--port",
          String(await freePort()),
          "--slots",
          "1",
        ],
        { DATABASE_URL: db.url, SKIFF_HOME: join(root, "controller") },
      );
      procs.push(controller);
      await whileRunning(controller, "the controller to start", () =>
        controller.output().includes("status on"),
      );
      c = startConsole(new HttpBackend(new ApiClient(apis[1] ?? "", { token: admin, source: "test" })), {
        cols: 200,
        rows: 50,
      });
      await c.waitForText("Overview");
    }, 120_000);

    afterAll(async () => {
      c?.close();
      // The controller first: it stops the workers it started.
      for (const p of procs.reverse()) await stopProc(p, "SIGTERM", 30_000).catch(() => {});
      const leaked = await killLeftovers();
      await db?.drop();
      rmSync(root, { recursive: true, force: true });
      expect(leaked, "child processes still running after the suite").toEqual([]);
    }, 120_000);

    const skiff = (...args: string[]) => runCli(args, { SKIFF_URL: apis[0], SKIFF_TOKEN: admin });
    const online = () => c.app.stores.agents.list().filter((a) => a.status === "online");
    /** The console's audit model against the API's own listing: same entries, no seq missing. */
    const auditMatches = async () => {
      const listed = (await (
        await fetch(`${apis[0]}/v1/audit?limit=500`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as { items: { seq: number; action: string }[] };
      const shown = c.app.stores.audit.list().map((e) => e.seq);
      const want = listed.items.map((e) => e.seq);
      return shown.length === want.length && shown.every((s, i) => s === want[i]) ? want : false;
    };

    it("scale 3 through the first replica: the console on the second shows the decision, the new agents and the audit entries, with no seq missing", async () => {
      const res = await skiff("fleet", "scale", "3");
      expect(res.code, res.stderr).toBe(0);
      await waitFor("three online agents in the console", () => online().length === 3, 60_000, 100);
      await waitFor(
        "the controller's decision in the console",
        () => c.app.stores.fleet.view?.desired === 3,
        30_000,
        100,
      );
      const seqs = await waitFor("the console's audit view to equal the API's", auditMatches, 30_000, 200);
      // One chain with no hole: from the first entry to the newest, every seq is there.
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 0) - i));
      const actions = c.app.stores.audit.list().map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(["fleet.update", "controller.leader", "fleet.scale"]));
      expect(actions.filter((a) => a === "agent.register")).toHaveLength(3);
      // And on the screen: the Audit view lists the newest entry by its seq.
      await c.press(":audit\r");
      await c.waitForText(String(seqs[0]));
      await c.press("\x1b");
    }, 120_000);

    it("scale down to 1: the console shows the drains, and its audit view still equals the API's", async () => {
      const res = await skiff("fleet", "scale", "1");
      expect(res.code, res.stderr).toBe(0);
      await waitFor(
        "two agents drained or gone in the console",
        () =>
          c.app.stores.agents.list().filter((a) => a.activity === "draining" || a.status === "offline")
            .length >= 2,
        60_000,
        100,
      );
      await waitFor(
        "one online agent left",
        () => online().filter((a) => a.activity !== "draining").length === 1,
        60_000,
        100,
      );
      const seqs = await waitFor("the console's audit view to equal the API's", auditMatches, 30_000, 200);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 0) - i));
      const actions = c.app.stores.audit.list().map((e) => e.action);
      expect(actions.filter((a) => a === "agent.drain")).toHaveLength(2);
      expect(c.app.stores.fleet.view?.desired).toBe(1);
    }, 120_000);
  },
);
