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
  apiCaller,
  freePort,
  killLeftovers,
  type Proc,
  startApi,
  stopProc,
} from "../../../worker/test/procs.ts";
import { ApiClient } from "../../src/client.ts";
import { HttpBackend } from "../../src/tui/data/api.ts";
import { startConsole, type TestConsole } from "./console.ts";
import { type Call, converged, rng } from "./truth.ts";

const gate = allOf(await pgGate(), await redisGate());

describeWith(
  gate,
  "the API is killed during a burst and restarted: the console resumes where it was [pg, redis, processes]",
  () => {
    let db: TestDatabase;
    const home = mkdtempSync(join(tmpdir(), "skiff-resume-"));
    let api: Proc | null = null;
    let url = "";
    let port = 0;
    let admin = "";
    let c: TestConsole;
    const loads = { jobs: 0, agents: 0, audit: 0 };

    const start = async () => {
      const started = await startApi("api", {
        port,
        home,
        databaseUrl: db.url,
        redisUrl: TEST_REDIS_URL,
        busPrefix: `resume-${process.pid}`,
      });
      api = started.proc;
      url = started.url;
    };
    const caller = apiCaller(
      () => url,
      () => admin,
    );
    const call: Call = (method, path, o = {}) => caller(method, path, o.body, o.token ?? admin);

    beforeAll(async () => {
      db = await createTestDatabase();
      port = await freePort();
      await start();
      admin = readFileSync(join(home, "admin.token"), "utf8").trim();
      // The console's backend, counting the full loads: a resume must not need one.
      const backend = new HttpBackend(new ApiClient(url, { token: admin, source: "test" }));
      const count = <K extends "listJobs" | "listAgents" | "listAudit">(k: K, field: keyof typeof loads) => {
        const orig = backend[k].bind(backend) as (...a: unknown[]) => Promise<unknown>;
        (backend as any)[k] = (...a: unknown[]) => {
          loads[field]++;
          return orig(...a);
        };
      };
      count("listJobs", "jobs");
      count("listAgents", "agents");
      count("listAudit", "audit");
      c = startConsole(backend, { cols: 200, rows: 50 });
      await c.waitForText("Overview");
      // The console loads the lists twice on attach: at once, and again when its event stream is
      // ready (so nothing falls between the load and the stream). After that, only a reset reloads.
      await waitFor("the console's first loads", () => loads.audit === 2 && loads.agents === 2);
      await c.waitForText("live");
    }, 60_000);

    afterAll(async () => {
      c?.close();
      if (api) await stopProc(api, "SIGTERM", 30_000).catch(() => {});
      const leaked = await killLeftovers();
      await db?.drop();
      rmSync(home, { recursive: true, force: true });
      expect(leaked, "child processes still running after the suite").toEqual([]);
    }, 60_000);

    it("400 submits and cancels, the API SIGKILLed at 150 and started again: the console ends equal to the API without reloading", async () => {
      const before = { ...loads };
      const r = rng(7);
      const ids: string[] = [];
      let ok = 0;
      let refused = 0;
      let killed: Promise<void> | null = null;
      const submitter = async () => {
        while (ok < 400) {
          const res = await call("POST", "/v1/jobs", {
            body: { name: "burst", queue: "default", steps: [{ name: "s", run: "true" }] },
          }).catch(() => null);
          if (res?.status === 201) {
            ok++;
            ids.push(res.body.id);
            if (r.int(5) === 0)
              await call("POST", `/v1/jobs/${r.pick(ids)}/cancel`, { body: { reason: "burst" } }).catch(
                () => null,
              );
          } else {
            refused++;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          if (ok >= 150 && !killed) {
            killed = (async () => {
              const p = api;
              if (p) await stopProc(p, "SIGKILL");
              await start();
            })();
          }
        }
      };
      await Promise.all(Array.from({ length: 10 }, submitter));
      await killed;
      expect(refused, "some submits met the dead API").toBeGreaterThan(0);
      await waitFor(
        "the console to reconnect",
        () => c.app.stores.session.connection.kind === "live",
        30_000,
        100,
      );
      await converged(call, c.app, "the console to equal the API after the restart", 60_000);
      // Caught up from Last-Event-ID alone: no list was loaded again.
      expect(loads).toEqual(before);
    }, 180_000);
  },
);
