import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AgentDeregisterBody,
  AgentDrainBody,
  AgentEventsBody,
  AgentFinishBody,
  AgentHeartbeatBody,
  AgentRegisterBody,
  issuesOf,
  JobCancelBody,
  JobSpec,
  repairText,
  TokenCreateBody,
  textFault,
} from "../src/index.ts";

/** The issues a schema reports, as `path: message`. */
function issues(schema: { safeParse(v: unknown): { success: boolean; error?: unknown } }, value: unknown) {
  const res = schema.safeParse(value);
  if (res.success) return [];
  return issuesOf(res.error as never).map((i) => `${i.path}: ${i.message}`);
}

const NUL = "must not contain NUL (U+0000)";
const LONE = "must not contain a lone UTF-16 surrogate (U+D800 to U+DFFF without its pair)";

describe("text PostgreSQL can store", () => {
  it("finds NUL and lone surrogates, and only them", () => {
    expect(textFault("a\0b")).toBe(NUL);
    expect(textFault("\ud800")).toBe(LONE);
    expect(textFault("x\udc00")).toBe(LONE);
    expect(textFault("\ude00\ud83d")).toBe(LONE); // a pair in the wrong order is two lone halves
    for (const ok of ["", "plain", "😀", "e\u0301", "\uFFFD", "\u0001\u001b[0m\t\r\u2028", "\uFEFF"])
      expect(textFault(ok), JSON.stringify(ok)).toBeNull();
  });

  it("repairs to U+FFFD, one per bad code unit, and leaves everything else as it was", () => {
    expect(repairText("x\0y\0")).toBe("x\uFFFDy\uFFFD");
    expect(repairText("a\ud800b\udfffc😀")).toBe("a\uFFFDb\uFFFDc😀");
    fc.assert(
      fc.property(
        fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
        (s) => {
          const r = repairText(s);
          expect(textFault(r)).toBeNull();
          expect(r.length).toBe(s.length);
          if (textFault(s) === null) expect(r).toBe(s);
          // What PostgreSQL stores: the UTF-8 of the repaired string is the repaired string.
          expect(Buffer.from(r, "utf8").toString("utf8")).toBe(r);
        },
      ),
    );
  });
});

describe("every request body refuses unstorable text, naming the field", () => {
  const step = { name: "s", run: "true" };
  it("job specs: name, run, env values and keys, image", () => {
    expect(issues(JobSpec, { name: "a\0", steps: [step] })).toEqual([`name: ${NUL}`]);
    expect(issues(JobSpec, { name: "n", steps: [step, { name: "t", run: "echo \ud800" }] })).toEqual([
      `steps[1].run: ${LONE}`,
    ]);
    expect(issues(JobSpec, { name: "n", env: { A: "x\0" }, steps: [step] })).toEqual([`env.A: ${NUL}`]);
    expect(issues(JobSpec, { name: "n", image: "\udfff", steps: [step] })).toEqual([`image: ${LONE}`]);
    expect(issues(JobSpec, { name: "n", steps: [{ ...step, env: { B: "\0" } }] })).toEqual([
      `steps[0].env.B: ${NUL}`,
    ]);
    expect(issues(JobSpec, { name: "fine 😀", steps: [step] })).toEqual([]);
  });

  it("reasons, agent names, versions, labels, ids and errors", () => {
    expect(issues(JobCancelBody, { reason: "\0" })).toEqual([`reason: ${NUL}`]);
    expect(issues(AgentDrainBody, { reason: "\ud83d" })).toEqual([`reason: ${LONE}`]);
    const register = { name: "w", version: "1", slots: 1, sandbox: "bwrap" };
    expect(issues(AgentRegisterBody, { ...register, name: "w\ud800" })).toEqual([`name: ${LONE}`]);
    expect(issues(AgentRegisterBody, { ...register, version: "\0" })).toEqual([`version: ${NUL}`]);
    expect(issues(AgentRegisterBody, { ...register, labels: { zone: "a\0" } })).toEqual([
      `labels.zone: ${NUL}`,
    ]);
    expect(issues(AgentHeartbeatBody, { agentId: "\0", status: "idle" })).toEqual([`agentId: ${NUL}`]);
    expect(issues(AgentDeregisterBody, { agentId: "\udc00" })).toEqual([`agentId: ${LONE}`]);
    const finish = { agentId: "a", epoch: 1, outcome: "failed", exitCode: 1 };
    expect(issues(AgentFinishBody, { ...finish, error: "boom\0" })).toEqual([`error: ${NUL}`]);
    expect(issues(TokenCreateBody, { name: "ok", role: "viewer" })).toEqual([]);
  });

  it("integers stored in PostgreSQL integer columns stay within int4", () => {
    const finish = { agentId: "a", epoch: 1, outcome: "failed" };
    expect(issues(AgentFinishBody, { ...finish, exitCode: 2 ** 31 - 1 })).toEqual([]);
    expect(issues(AgentFinishBody, { ...finish, exitCode: -(2 ** 31) })).toEqual([]);
    expect(issues(AgentFinishBody, { ...finish, exitCode: 2147483648 })).toHaveLength(1);
    expect(issues(AgentFinishBody, { ...finish, exitCode: -(2 ** 31) - 1 })).toHaveLength(1);
    expect(issues(AgentFinishBody, { ...finish, epoch: 2 ** 31, exitCode: 0 })[0]).toMatch(/^epoch: /);
    const events = (e: object) => ({ agentId: "a", epoch: 1, events: [e] });
    expect(issues(AgentEventsBody, events({ type: "step.started", step: 2 ** 31 }))[0]).toMatch(
      /^events\[0\]\.step: /,
    );
    expect(
      issues(
        AgentEventsBody,
        events({ type: "step.finished", step: 0, outcome: "failed", exitCode: 2 ** 40 }),
      )[0],
    ).toMatch(/^events\[0\]\.exitCode: /);
    expect(
      issues(AgentEventsBody, events({ type: "log", seq: 1, step: 2 ** 31, stream: "stdout", text: "" }))[0],
    ).toMatch(/^events\[0\]\.step: /);
    expect(
      issues(AgentHeartbeatBody, {
        agentId: "a",
        status: "idle",
        running: [{ jobId: "j", epoch: 2 ** 31 }],
      })[0],
    ).toMatch(/^running\[0\]\.epoch: /);
  });

  it("event times are ISO 8601 within what timestamptz takes; log text is repaired, not refused", () => {
    const log = (ts: string, text = "x") => ({
      agentId: "a",
      epoch: 1,
      events: [{ type: "log", seq: 1, step: 0, stream: "stdout", ts, text }],
    });
    expect(issues(AgentEventsBody, log(new Date().toISOString()))).toEqual([]);
    expect(issues(AgentEventsBody, log("2026-01-02T03:04:05+02:00"))).toEqual([]);
    for (const bad of [
      "2026",
      "yesterday",
      "0000-01-01T00:00:00Z",
      "0001-01-01T00:00:00+01:00",
      "9999-12-31T23:00:00-02:00",
    ])
      expect(issues(AgentEventsBody, log(bad)), bad).toHaveLength(1);
    const parsed = AgentEventsBody.parse(log(new Date().toISOString(), "a\0b\ud800"));
    expect(parsed.events[0]).toMatchObject({ text: "a\uFFFDb\uFFFD" });
  });
});
