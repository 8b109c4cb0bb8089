import type { FleetSettings } from "@skiff/protocol";

/** What the controller sees on each tick. */
export interface FleetSnapshot {
  queued: number;
  /** Workers (online agents managed by this scaler) and how many of them run jobs. */
  workers: number;
  busy: number;
  slotsPerWorker: number;
}

export interface Decision {
  desired: number;
  /** What the rules ask for before hysteresis holds it back. */
  target: number;
  reason: string;
  inputs: Record<string, number | string>;
}

export interface DecideState {
  /** The desired size last applied, and when it last went up or down. */
  current: number;
  lastUpAt: number;
  lastDownAt: number;
  /** Since when auto mode has wanted fewer workers than it has (hysteresis). */
  wantLessSince: number | null;
}

export interface DecideOptions {
  upCooldownMs: number;
  downCooldownMs: number;
  /** How long a lower target must persist before scaling down. */
  downStableMs: number;
}

/**
 * The desired fleet size. Manual: the replicas asked for. Auto: busy workers, plus enough for the
 * queued jobs given the slots per worker, plus the warm idle ones, clamped to [min, max]. Going up
 * is quick; going down waits until the lower target has held for a while, so a burst does not flap.
 */
export function decide(
  settings: FleetSettings,
  snap: FleetSnapshot,
  state: DecideState,
  opts: DecideOptions,
  now: number,
): Decision {
  const inputs = {
    mode: settings.mode,
    queued: snap.queued,
    workers: snap.workers,
    busy: snap.busy,
    slots: snap.slotsPerWorker,
  };
  if (settings.mode === "manual") {
    return {
      desired: settings.replicas,
      target: settings.replicas,
      reason: `manual: ${settings.replicas} replicas`,
      inputs,
    };
  }
  const forQueue = Math.ceil(snap.queued / Math.max(1, snap.slotsPerWorker));
  const raw = snap.busy + forQueue + settings.warm;
  const target = Math.min(settings.max, Math.max(settings.min, raw));
  const why = `auto: ${snap.busy} busy + ${forQueue} for ${snap.queued} queued + ${settings.warm} warm = ${raw}, clamped to [${settings.min}, ${settings.max}]`;
  if (target > state.current) {
    if (now - state.lastUpAt < opts.upCooldownMs && state.current >= settings.min) {
      return { desired: state.current, target, reason: `${why}; waiting out the scale-up cooldown`, inputs };
    }
    return { desired: target, target, reason: why, inputs };
  }
  if (target < state.current) {
    const since = state.wantLessSince ?? now;
    if (now - since < opts.downStableMs || now - state.lastDownAt < opts.downCooldownMs) {
      return {
        desired: state.current,
        target,
        reason: `${why}; holding ${state.current} until the lower target is stable`,
        inputs,
      };
    }
    return { desired: target, target, reason: why, inputs };
  }
  return { desired: target, target, reason: why, inputs };
}

/** Advances the hysteresis state after a decision. */
export function nextState(state: DecideState, wanted: number, applied: number, now: number): DecideState {
  return {
    current: applied,
    lastUpAt: applied > state.current ? now : state.lastUpAt,
    lastDownAt: applied < state.current ? now : state.lastDownAt,
    wantLessSince: wanted < applied ? (state.wantLessSince ?? now) : null,
  };
}
