import { type Api, buildApi, hashToken, newTokenSecret } from "@skiff/api";
import { type Bus, createBus } from "@skiff/bus";
import { type AgentEventsBody, JobSpec } from "@skiff/protocol";
import { openStore, type Store } from "@skiff/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../src/client.ts";
import { JobReporter } from "../src/reporter.ts";
import { silent } from "./stack.ts";

/** The real client, remembering what it sent: the API repairs text too, so it is checked on the way out. */
class RecordingClient extends AgentClient {
  readonly sent: AgentEventsBody[] = [];
  override events(jobId: string, body: AgentEventsBody) {
    this.sent.push(structuredClone(body));
    return super.events(jobId, body);
  }
}

/** Fails instead of waiting for ever: an upload retried without end is exactly the bug. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still not done after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const BODY_LIMIT = 64 * 1024;

describe("job reporter against a real API [pglite]", () => {
  let store: Store;
  let bus: Bus;
  let api: Api;
  let client: RecordingClient;
  let agentId: string;
  const logs: string[] = [];

  beforeAll(async () => {
    store = await openStore({});
    bus = await createBus({});
    api = buildApi({ config: { port: 0, bodyLimitBytes: BODY_LIMIT }, store, bus, logger: silent });
    const url = await api.listen();
    const token = newTokenSecret();
    await store.createToken(
      { name: "pool", role: "agent", hash: hashToken(token) },
      { actor: "t", role: "system" },
    );
    client = new RecordingClient(url, token);
    ({ agentId } = await client.register({
      name: "reporter-test",
      version: "0.1.0",
      slots: 8,
      labels: {},
      sandbox: "none",
      resources: {},
    }));
  });
  afterAll(async () => {
    await client?.close();
    await api?.shutdown();
    await bus?.close();
    await store?.close();
  });

  /** A job claimed by the test agent, and a reporter for it. */
  async function reporter(): Promise<{ jobId: string; r: JobReporter }> {
    const spec = JobSpec.parse({ name: "r", steps: [{ name: "s", run: "true" }] });
    const { value: job } = await store.submitJob(spec, { actor: "t", role: "system" });
    const { jobs } = await client.claim({ agentId, max: 8, waitMs: 0 });
    const claimed = jobs.find((j) => j.job.id === job.id);
    if (!claimed) throw new Error("job not claimed");
    const r = new JobReporter(client, agentId, job.id, claimed.epoch, {
      batchMs: 5,
      batchBytes: 16 * 1024 * 1024,
      capBytes: 16 * 1024 * 1024,
      maxPendingBytes: 16 * 1024 * 1024,
      secrets: [],
      onCancel: () => {},
      onLeaseLost: (why) => {
        throw new Error(`lease lost: ${why}`);
      },
      log: (msg) => logs.push(msg),
    });
    return { jobId: job.id, r };
  }

  const stored = async (jobId: string) =>
    (await store.listLogs(jobId, 0, 10_000)).map((l) => ({
      seq: l.seq,
      step: l.step,
      stream: l.stream,
      text: l.text,
    }));

  it("sends NUL and lone surrogates as U+FFFD", async () => {
    const { jobId, r } = await reporter();
    client.sent.length = 0;
    r.line(0, "stdout", "a\0b");
    r.line(0, "system", "half \ud83d and \ude00 alone, 😀 whole");
    await within(5_000, "drain", r.drain());
    const sent = client.sent.flatMap((b) => b.events).map((e) => (e.type === "log" ? e.text : e.type));
    expect(sent).toEqual(["a\uFFFDb", "half \uFFFD and \uFFFD alone, 😀 whole"]);
    expect((await stored(jobId)).map((l) => l.text)).toEqual(sent);
  });

  it("a batch larger than the API's body limit is split until it passes, not retried as it was", async () => {
    const { jobId, r } = await reporter();
    const lines = Array.from({ length: 100 }, (_, i) => `${i} ${"x".repeat(2048)}`);
    for (const line of lines) r.line(0, "stdout", line);
    await within(10_000, "drain", r.drain());
    expect((await stored(jobId)).map((l) => l.text)).toEqual(lines);
  });

  it("one line the API will never take becomes a marker in its place; the lines around it arrive", async () => {
    const { jobId, r } = await reporter();
    r.line(0, "stdout", "before");
    r.line(0, "stdout", "y".repeat(BODY_LIMIT * 2)); // 413 however it is batched
    r.line(-1, "stdout", "a step index the API refuses"); // 400 invalid_input
    r.line(0, "stdout", "after");
    await within(10_000, "drain", r.drain());
    const got = await stored(jobId);
    expect(got.map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    expect(got[0]).toMatchObject({ stream: "stdout", text: "before" });
    expect(got[1]).toMatchObject({ stream: "system", step: null });
    expect(got[1]?.text).toMatch(/^\[line dropped: the API refused it \(413 payload_too_large: /);
    expect(got[2]?.text).toMatch(/^\[line dropped: the API refused it \(400 invalid_input: /);
    expect(got[3]).toMatchObject({ stream: "stdout", text: "after" });
    expect(logs).toContain("events upload refused; dropping it");
  });

  it("a refusal that does not depend on the body (a revoked token) drops the batch instead of retrying it", async () => {
    const { jobId, r } = await reporter();
    const token = newTokenSecret();
    const other = await store.createToken(
      { name: "gone", role: "agent", hash: hashToken(token) },
      { actor: "t", role: "system" },
    );
    await store.revokeToken(other.value.id, { actor: "t", role: "system" });
    const revokedClient = new AgentClient(client.baseUrl, token);
    const revoked = new JobReporter(revokedClient, agentId, jobId, 1, {
      batchMs: 5,
      batchBytes: 1 << 20,
      capBytes: 1 << 20,
      maxPendingBytes: 1 << 20,
      secrets: [],
      onCancel: () => {},
      onLeaseLost: () => {},
    });
    for (let i = 0; i < 10; i++) revoked.line(0, "stdout", `line ${i}`);
    await within(5_000, "drain", revoked.drain());
    await revokedClient.close();
    expect(await stored(jobId)).toEqual([]);
    r.line(0, "stdout", "the job's own reporter still works");
    await within(5_000, "drain", r.drain());
    expect((await stored(jobId)).map((l) => l.text)).toEqual(["the job's own reporter still works"]);
  });
});
