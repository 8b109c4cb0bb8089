import type { FleetSettings } from "@skiff/protocol";
import { describe, expect, it } from "vitest";
import { decide, nextState } from "../src/index.ts";

const base: FleetSettings = {
  mode: "auto",
  replicas: 2,
  min: 1,
  max: 4,
  warm: 0,
  leaderEpoch: 1,
  updatedAt: "",
  updatedBy: "t",
};
const opts = { upCooldownMs: 1_000, downCooldownMs: 5_000, downStableMs: 5_000 };
const fresh = { current: 1, lastUpAt: 0, lastDownAt: 0, wantLessSince: null };

describe("decide", () => {
  it("manual mode wants exactly the replicas asked for", () => {
    const d = decide(
      { ...base, mode: "manual", replicas: 3 },
      { queued: 50, workers: 1, busy: 1, slotsPerWorker: 2 },
      fresh,
      opts,
      10_000,
    );
    expect(d).toMatchObject({ desired: 3, target: 3 });
  });

  it("auto mode: busy + enough for the queue + warm, clamped to [min, max]", () => {
    const snap = { queued: 3, workers: 1, busy: 1, slotsPerWorker: 2 };
    expect(decide({ ...base, warm: 1 }, snap, fresh, opts, 10_000)).toMatchObject({ desired: 4, target: 4 });
    expect(decide(base, { ...snap, queued: 100 }, fresh, opts, 10_000).desired).toBe(4);
    expect(
      decide(
        base,
        { queued: 0, workers: 0, busy: 0, slotsPerWorker: 2 },
        { ...fresh, current: 0 },
        opts,
        10_000,
      ).desired,
    ).toBe(1);
    expect(decide(base, snap, fresh, opts, 10_000).reason).toMatch(/1 busy \+ 2 for 3 queued \+ 0 warm = 3/);
  });

  it("scales down only after the lower target held for the stable period, so a burst does not flap", () => {
    const idle = { queued: 0, workers: 4, busy: 0, slotsPerWorker: 2 };
    let state = { current: 4, lastUpAt: 0, lastDownAt: 0, wantLessSince: null as number | null };
    const first = decide(base, idle, state, opts, 10_000);
    expect(first).toMatchObject({ desired: 4, target: 1 });
    state = nextState(state, first.target, first.desired, 10_000);
    expect(decide(base, idle, state, opts, 12_000).desired).toBe(4);
    const later = decide(base, idle, state, opts, 15_001);
    expect(later.desired).toBe(1);
    // A queue that comes back resets the clock.
    const busyAgain = decide(base, { ...idle, queued: 8 }, state, opts, 15_001);
    expect(busyAgain.desired).toBe(4);
    expect(nextState(state, busyAgain.target, busyAgain.desired, 15_001).wantLessSince).toBeNull();
  });

  it("waits out the scale-up cooldown once above the minimum", () => {
    const state = { current: 2, lastUpAt: 9_500, lastDownAt: 0, wantLessSince: null };
    expect(
      decide(base, { queued: 10, workers: 2, busy: 2, slotsPerWorker: 2 }, state, opts, 10_000).desired,
    ).toBe(2);
    expect(
      decide(base, { queued: 10, workers: 2, busy: 2, slotsPerWorker: 2 }, state, opts, 10_600).desired,
    ).toBe(4);
  });
});
