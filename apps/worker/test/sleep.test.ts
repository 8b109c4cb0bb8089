import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { sleep } from "../src/agent.ts";

describe("the agent's sleep", () => {
  it("leaves no abort listener behind, however many times it runs (one a heartbeat)", async () => {
    const stopping = new AbortController();
    for (let i = 0; i < 50; i++) await sleep(1, stopping.signal);
    expect(getEventListeners(stopping.signal, "abort")).toHaveLength(0);
  });

  it("ends at once when the signal aborts, and when it already has", async () => {
    const stopping = new AbortController();
    const waiting = sleep(60_000, stopping.signal);
    stopping.abort();
    await waiting;
    await sleep(60_000, stopping.signal);
    // Neither wait lasts its minute: a sleep that ignored the signal would time this test out.
  });
});
