import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashableOf, hashEntry, openStore } from "@skiff/store";
import {
  allOf,
  describeWith,
  freePort,
  type PostgresServer,
  privatePostgresGate,
  type RedisServer,
  redisServerGate,
  startPostgresServer,
  startRedisServer,
  waitFor,
} from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  apiCaller,
  exitOf,
  isRunning,
  killLeftovers,
  type Proc,
  startApi,
  startSkiff,
  startWorkerProc,
  stopProc,
} from "./procs.ts";
import { bwrapGate } from "./support.ts";

/**
 * The chaos suite: two API replicas and two bwrap workers on a PostgreSQL and a Redis of the
 * suite's own, so they can be restarted, cut off and frozen without touching anything else. After
 * each fault every job ends in exactly one final state, the successful attempt's numbered lines are
 * stored exactly once, no worker ever runs more sandboxes than it has slots, and the audit chain
 * verifies against the checkpoints kept outside the database. Then a database owner's tampering is
 * named by `skiff audit verify`.
 */
const gate = allOf(privatePostgresGate(), redisServerGate(), bwrapGate());

const MIB = 1024 * 1024;
const SLOTS = 2;
const FINAL = ["succeeded", "failed", "canceled", "timed_out"];
// Short agent timing so a frozen worker is declared lost in seconds.
const TIMING = {
  SKIFF_HEARTBEAT_INTERVAL_MS: "500",
  SKIFF_OFFLINE_AFTER_MS: "6000",
  SKIFF_REAPER_INTERVAL_MS: "250",
};

interface Line {
  seq: number;
  stream: string;
  text: string;
}

/** A job that prints `begin`, then `line 1` … `line n`, one every `pause` seconds. */
const counter = (n: number, pause: number) =>
  `echo begin; for i in $(seq 1 ${n}); do echo "line $i"; sleep ${pause}; done`;
const numbered = (n: number, suffix = "") => Array.from({ length: n }, (_, i) => `line ${i + 1}${suffix}`);

/** `actual` equals `want`, and if not, where they first part (a diff of 500,000 lines helps nobody). */
function expectLines(actual: string[], want: string[], what: string): void {
  let i = 0;
  while (i < actual.length && i < want.length && actual[i] === want[i]) i++;
  const first = i === actual.length && i === want.length ? null : { at: i, got: actual[i], want: want[i] };
  expect({ lines: actual.length, firstDifference: first }, what).toEqual({
    lines: want.length,
    firstDifference: null,
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client of `/v1/events`: waits for an event matching `match`, failing after `timeoutMs`. */
async function openEvents(base: string, token: string) {
  const abort = new AbortController();
  const res = await fetch(`${base}/v1/events?topics=jobs`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  if (!res.ok || !res.body) throw new Error(`events stream on ${base}: ${res.status}`);
  const seen: { event: string; data: string }[] = [];
  let buffer = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let i = buffer.indexOf("\n\n"); i >= 0; i = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
        seen.push({ event, data: /^data: (.*)$/m.exec(block)?.[1] ?? "" });
      }
    }
  })().catch(() => {});
  return {
    until: (what: string, match: (e: { event: string; data: string }) => boolean, timeoutMs = 30_000) =>
      waitFor(what, () => seen.some(match) || undefined, timeoutMs, 50),
    close: () => {
      abort.abort();
      return reading;
    },
  };
}

/** The bwrap sandboxes a process has started and that still run: its `bwrap` children, from /proc. */
function sandboxesOf(pid: number): number {
  let n = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (comm === "bwrap" && ppid === pid) n++;
    } catch {
      // gone while we looked
    }
  }
  return n;
}

describeWith(
  gate,
  "chaos: PostgreSQL restart, Redis outage, a replica killed, a worker frozen, floods [private pg, redis, bwrap]",
  () => {
    const tag = randomBytes(3).toString("hex");
    const root = mkdtempSync(join(tmpdir(), "skiff-chaos-"));
    const queue = `chaos-${tag}`;
    const auditKey = randomBytes(32).toString("hex");
    let database: PostgresServer;
    let redis: RedisServer;
    const apis: { name: string; proc: Proc; url: string; home: string }[] = [];
    const workers: { name: string; proc: Proc }[] = [];
    let admin = "";
    let agentToken = "";
    /** Every job the suite submitted, with what its successful attempt must have printed. */
    const jobs = new Map<
      string,
      { lines: number; suffix: string; settled?: { state: string; finishedAt: string } }
    >();
    const peak = new Map<string, number>();
    let sampler: NodeJS.Timeout | undefined;

    const home = (name: string, yaml: string) => {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "skiff.yaml"), yaml);
      return dir;
    };
    const startReplica = async (name: string, port: number) => {
      const dir = home(name, `api:\n  auditCheckpointSeconds: 1\n  logCapBytes: ${64 * MIB}\n`);
      const api = await startApi(name, {
        port,
        home: dir,
        databaseUrl: database.url,
        redisUrl: redis.url,
        busPrefix: `chaos-${tag}`,
        env: { ...TIMING, SKIFF_AUDIT_KEY: auditKey },
      });
      return { name, ...api, home: dir };
    };
    const live = () => {
      const api = apis.find((a) => isRunning(a.proc));
      if (!api) throw new Error("no API replica is running");
      return api.url;
    };
    const call = apiCaller(live, () => admin);
    const submit = async (name: string, run: string, lines: number, suffix = "") => {
      const res = await call("POST", "/v1/jobs", { name, queue, steps: [{ name: "s", run }] });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      jobs.set(res.body.id, { lines, suffix });
      return res.body.id as string;
    };
    const allLines = async (id: string): Promise<Line[]> => {
      const out: Line[] = [];
      for (let after = 0; ; ) {
        const page = (await call("GET", `/v1/jobs/${id}/logs?after=${after}&limit=10000`)).body;
        if (page.lines.length === 0) return out;
        out.push(...page.lines);
        after = page.nextAfter;
      }
    };
    const verify = () => {
      const file = join(root, "checkpoints.jsonl");
      writeFileSync(
        file,
        apis.map((a) => readFileSync(join(a.home, "audit-checkpoints.jsonl"), "utf8")).join(""),
      );
      const p = startSkiff("skiff audit verify", ["audit", "verify", "--checkpoint", file], {
        SKIFF_URL: live(),
        SKIFF_TOKEN: admin,
        SKIFF_HOME: join(root, "cli"),
      });
      return exitOf(p, 60_000).then((r) => ({ code: r.code, output: p.output() }));
    };

    /** The invariants every fault must leave standing. */
    const settle = async (ids: string[]) => {
      for (const id of ids) {
        const job = await waitFor(
          `job ${id} to reach a final state`,
          async () => {
            const j = (await call("GET", `/v1/jobs/${id}`)).body;
            return FINAL.includes(j.state) ? j : undefined;
          },
          300_000,
          200,
        );
        const { lines: want, suffix } = jobs.get(id) ?? { lines: 0, suffix: "" };
        expect(job, `job ${id}`).toMatchObject({ state: "succeeded", exitCode: 0, logTruncated: false });
        jobs.set(id, { lines: want, suffix, settled: { state: job.state, finishedAt: job.finishedAt } });
        const lines = await allLines(id);
        for (let i = 1; i < lines.length; i++)
          if ((lines[i]?.seq ?? 0) <= (lines[i - 1]?.seq ?? 0))
            expect(lines[i]?.seq, `job ${id}: seq after ${lines[i - 1]?.seq}`).toBeGreaterThan(
              lines[i - 1]?.seq ?? 0,
            );
        const out = lines.filter((l) => l.stream === "stdout").map((l) => l.text);
        const begins = out.flatMap((t, i) => (t === "begin" ? [i] : []));
        expect(begins.length, `job ${id}: attempts that began`).toBeGreaterThan(0);
        const last = begins.at(-1) ?? -1;
        expectLines(
          out.slice(last + 1),
          numbered(want, suffix),
          `job ${id}: the successful attempt's lines, each once`,
        );
        // An earlier attempt, cut short, left a prefix of the same lines and nothing twice.
        for (let b = 0; b + 1 < begins.length; b++) {
          const part = out.slice((begins[b] ?? 0) + 1, begins[b + 1]);
          expectLines(part, numbered(part.length, suffix), `job ${id}: attempt ${b + 1}`);
        }
      }
      const running = (await call("GET", "/v1/jobs?state=running")).body;
      expect(running.items ?? running.jobs ?? running).toEqual([]);
      for (const w of workers)
        expect(peak.get(w.name) ?? 0, `${w.name}'s sandboxes at once`).toBeLessThanOrEqual(SLOTS);
      const audit = await verify();
      expect(audit.code, audit.output).toBe(0);
      expect(audit.output).toMatch(/audit chain intact: .*checkpoints matched/);
    };
    const running = (id: string, lines = 1) =>
      waitFor(
        `job ${id} to be running with ${lines} lines out`,
        async () => {
          const out = (await allLines(id)).filter((l) => l.text.startsWith("line "));
          return out.length >= lines ? true : undefined;
        },
        60_000,
        100,
      );

    beforeAll(async () => {
      database = await startPostgresServer();
      redis = await startRedisServer();
      const [portA, portB] = [await freePort(), await freePort()];
      apis.push(await startReplica("api-a", portA));
      apis.push(await startReplica("api-b", portB));
      admin = readFileSync(join(apis[0]?.home ?? "", "admin.token"), "utf8").trim();
      const token = await call("POST", "/v1/tokens", { name: "pool", role: "agent" });
      expect(token.status).toBe(201);
      agentToken = token.body.token;
      const workDir = join(root, "work");
      mkdirSync(workDir);
      for (const name of [`w1-${tag}`, `w2-${tag}`]) {
        const w = await startWorkerProc(name, {
          apiUrl: apis.map((a) => a.url).join(","),
          token: agentToken,
          workDir,
          queue,
          slots: SLOTS,
          env: { SKIFF_HOME: home(name, `worker:\n  logCapBytes: ${64 * MIB}\n`) },
        });
        workers.push({ name, proc: w.proc });
      }
      sampler = setInterval(() => {
        for (const w of workers) {
          const pid = w.proc.child.pid;
          if (pid === undefined) continue;
          peak.set(w.name, Math.max(peak.get(w.name) ?? 0, sandboxesOf(pid)));
        }
      }, 50);
    }, 120_000);

    afterAll(async () => {
      if (sampler) clearInterval(sampler);
      for (const w of workers) if (isRunning(w.proc)) w.proc.child.kill("SIGCONT");
      for (const p of [...workers, ...apis])
        if (isRunning(p.proc)) await stopProc(p.proc, "SIGTERM", 30_000).catch(() => {});
      const leaked = await killLeftovers();
      await database?.destroy();
      await redis?.stop();
      rmSync(root, { recursive: true, force: true });
      expect(leaked, "child processes still running after the suite").toEqual([]);
    }, 120_000);

    it("PostgreSQL restarts while four jobs run", { timeout: 300_000 }, async () => {
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push(await submit(`pg-restart-${i}`, counter(150, 0.03), 150));
      for (const id of ids) await running(id);
      await database.stop();
      await sleep(3_000);
      await database.start();
      await settle(ids);
    });

    it("Redis is down for 60 s: submits do not wait for it, jobs still run, all is whole once it is back", {
      timeout: 300_000,
    }, async () => {
      const before = await submit("redis-before", counter(100, 0.02), 100);
      await running(before);
      await redis.stop();
      const ids = [before];
      const waited: number[] = [];
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        const t = performance.now();
        ids.push(await submit(`redis-down-${ids.length}`, counter(20, 0.01), 20));
        waited.push(performance.now() - t);
        await sleep(4_000);
      }
      redis = await startRedisServer(redis.port, redis.password);
      waited.sort((a, b) => a - b);
      console.log(
        `chaos: ${waited.length} submits during the Redis outage, p50 ${waited[Math.floor(waited.length / 2)]?.toFixed(1)} ms, max ${waited.at(-1)?.toFixed(1)} ms`,
      );
      // Not a speed target: a write that waited for the missing Redis took its 5 s publish timeout.
      expect(waited.at(-1), "the slowest submit while Redis was down").toBeLessThan(2_500);
      await settle(ids);
      // Events cross replicas again: a client of B's event stream hears a job submitted on A.
      const stream = await openEvents(apis[1]?.url ?? "", admin);
      try {
        await stream.until("ready", (e) => e.event === "ready");
        const after = await submit("redis-after", counter(5, 0.01), 5);
        expect(live(), "the job is submitted on A").toBe(apis[0]?.url);
        await stream.until(
          `job.created of ${after} on B`,
          (e) => e.event === "job.created" && e.data.includes(after),
        );
        await settle([after]);
      } finally {
        stream.close();
      }
    });

    it("kill -9 of the replica the workers use: they fail over to the other, nothing is lost", {
      timeout: 300_000,
    }, async () => {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await submit(`kill-api-${i}`, counter(200, 0.02), 200));
      for (const id of ids) await running(id);
      const a = apis[0];
      if (!a) throw new Error("no replica A");
      await stopProc(a.proc, "SIGKILL");
      ids.push(await submit("after-kill", counter(50, 0.01), 50));
      await settle(ids);
    });

    it("a worker frozen (SIGSTOP) past the offline window: its jobs move to the other worker, and once thawed it never runs more sandboxes than its slots", {
      timeout: 300_000,
    }, async () => {
      const [w1, w2] = workers;
      // Counted afresh for this test: "never more than its slots" must be put to the test here.
      peak.clear();
      if (!w1 || !w2) throw new Error("two workers");
      // Fill both workers, then freeze the first while its jobs run.
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push(await submit(`frozen-${i}`, counter(300, 0.05), 300));
      for (const id of ids) await running(id);
      const agents = (await call("GET", "/v1/agents")).body;
      const list: any[] = Array.isArray(agents) ? agents : (agents.items ?? agents.agents);
      const w1Id = list.find((a) => a.name === w1.name && a.status !== "offline")?.id;
      const onW1: string[] = [];
      for (const id of ids) if ((await call("GET", `/v1/jobs/${id}`)).body.agentId === w1Id) onW1.push(id);
      expect(onW1.length).toBeGreaterThan(0);
      w1.proc.child.kill("SIGSTOP");
      try {
        await waitFor(
          "the frozen worker's jobs to be requeued",
          async () => {
            for (const id of onW1)
              if ((await call("GET", `/v1/jobs/${id}`)).body.attempt < 2) return undefined;
            return true;
          },
          60_000,
          200,
        );
        // More work queued while w1 is still frozen: once it thaws it may claim, but only into free slots.
        for (let i = 0; i < 3; i++) ids.push(await submit(`after-freeze-${i}`, counter(40, 0.02), 40));
      } finally {
        w1.proc.child.kill("SIGCONT");
      }
      await settle(ids);
      // The sampler saw both workers full, so "never more than its slots" was put to the test.
      for (const w of workers) expect(peak.get(w.name), `${w.name}'s peak`).toBe(SLOTS);
      for (const id of onW1)
        expect((await call("GET", `/v1/jobs/${id}`)).body.attempt).toBeGreaterThanOrEqual(2);
    });

    it("a 50 MB writer and a NUL writer: every line stored once, the odd bytes replaced, both succeed", {
      timeout: 400_000,
    }, async () => {
      const total = 500_000; // 100-byte lines
      const pad = "x".repeat(84);
      const flood = await submit(
        "flood",
        `echo begin; seq -f 'line %.0f ${pad}' 1 ${total}`,
        total,
        ` ${pad}`,
      );
      const nul = await submit("nul", `printf 'a\\000b\\n'; printf '\\377\\376\\n'; ${counter(10, 0)}`, 10);
      await settle([nul, flood]);
      const odd = (await allLines(nul)).filter((l) => l.stream === "stdout").map((l) => l.text);
      expect(odd.slice(0, 2)).toEqual(["a\uFFFDb", "\uFFFD\uFFFD"]);
    });

    it("every job kept its one final state; a database owner's tampering is named by verify", {
      timeout: 120_000,
    }, async () => {
      for (const [id, j] of jobs) {
        if (!j.settled) continue;
        const now = (await call("GET", `/v1/jobs/${id}`)).body;
        expect({ state: now.state, finishedAt: now.finishedAt }, `job ${id}`).toEqual(j.settled);
      }
      // The database owner's own connection, as someone with the server's superuser password has.
      const store = await openStore({ databaseUrl: database.url, poolSize: 1 });
      const owner = store.db;
      const asOwner = (sql: string, params: unknown[] = []) =>
        owner.tx(async (q) => {
          await q.query("alter table audit_log disable trigger audit_log_no_update");
          await q.query(sql, params);
          await q.query("alter table audit_log enable trigger audit_log_no_update");
        });
      try {
        // A checkpoint of the head must exist before rows are cut from the end.
        const head = Number((await owner.query<any>("select max(seq) as s from audit_log")).rows[0].s);
        await waitFor("a checkpoint of the head", () =>
          apis.some((a) =>
            readFileSync(join(a.home, "audit-checkpoints.jsonl"), "utf8").includes(`"seq":${head},`),
          ),
        );
        await owner.query<any>("create table audit_backup as select * from audit_log");
        const restore = async () => {
          await asOwner("delete from audit_log; insert into audit_log select * from audit_backup");
          const r = await verify();
          expect(r.code, `after the restore: ${r.output}`).toBe(0);
        };

        // Rows deleted from the end.
        await asOwner("delete from audit_log where seq > $1", [head - 2]);
        let res = await verify();
        expect(res.code).toBe(1);
        expect(res.output).toContain(`the log ends at row ${head - 2} but the checkpoint`);
        await restore();

        // A correctly chained row inserted without the key.
        const last = (await owner.query<any>("select seq, hash from audit_log order by seq desc limit 1"))
          .rows[0];
        const row = {
          seq: Number(last.seq) + 1,
          at: new Date().toISOString(),
          actor: "mallory",
          role: "admin",
          action: "token.create",
          target: "tok_forged",
          outcome: "ok" as const,
          requestId: null,
          sourceIp: null,
          details: {},
        };
        await owner.query<any>(
          `insert into audit_log (seq, at, actor, role, action, target, outcome, details, prev_hash, hash)
         values ($1, $2, $3, $4, $5, $6, $7, '{}', $8, $9)`,
          [
            row.seq,
            row.at,
            row.actor,
            row.role,
            row.action,
            row.target,
            row.outcome,
            last.hash,
            hashEntry(last.hash, row),
          ],
        );
        res = await verify();
        expect(res.code).toBe(1);
        expect(res.output).toContain(`audit chain BROKEN at seq ${row.seq} (row ${row.seq} has no seal`);
        await restore();

        // History rewritten from a middle row on, every hash recomputed and every seal stripped, so
        // that only the checkpoints kept outside the database can tell.
        await asOwner("update audit_log set seal = null");
        const from = Math.floor(head / 2);
        const rows = (
          await owner.query<any>("select * from audit_log where seq >= $1 order by seq", [from - 1])
        ).rows;
        let prev = rows[0].hash as string;
        await owner.tx(async (q) => {
          await q.query("alter table audit_log disable trigger audit_log_no_update");
          for (const r of rows.slice(1)) {
            // The row as stored, with one field changed in the first row rewritten.
            const entry = { ...hashableOf(r), ...(Number(r.seq) === from ? { actor: "someone-else" } : {}) };
            const hash = hashEntry(prev, entry);
            await q.query(
              "update audit_log set actor = $2, prev_hash = $3, hash = $4, seal = null where seq = $1",
              [r.seq, entry.actor, prev, hash],
            );
            prev = hash;
          }
          await q.query("alter table audit_log enable trigger audit_log_no_update");
        });
        res = await verify();
        expect(res.code).toBe(1);
        expect(res.output).toMatch(
          /audit chain BROKEN at seq \d+ \(row \d+ differs from the checkpoint of .*history was rewritten/,
        );
        await restore();
      } finally {
        await store.close();
      }
    });
  },
);
