import type { FleetSettings } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { iso, toFleet } from "../rows.ts";

const FLEET_SELECT = `select f.*, l.epoch as leader_epoch from fleet_settings f cross join controller_leader l where f.id = 1`;

export async function getFleetSettings(q: Queryable): Promise<FleetSettings> {
  const res = await q.query(FLEET_SELECT);
  const row = res.rows[0];
  if (!row) throw new Error("fleet_settings row is missing: run `skiff migrate`");
  return toFleet(row);
}

export type FleetUpdate =
  | { mode: "manual"; replicas: number }
  | { mode: "auto"; min: number; max: number; warm: number };

export async function updateFleetSettings(
  q: Queryable,
  update: FleetUpdate,
  by: string,
): Promise<FleetSettings> {
  if (update.mode === "manual") {
    await q.query(
      "update fleet_settings set mode = 'manual', replicas = $1, updated_at = now(), updated_by = $2 where id = 1",
      [update.replicas, by],
    );
  } else {
    await q.query(
      `update fleet_settings set mode = 'auto', min = $1, max = $2, warm = $3, updated_at = now(), updated_by = $4
        where id = 1`,
      [update.min, update.max, update.warm, by],
    );
  }
  return getFleetSettings(q);
}

export interface Leadership {
  epoch: number;
  holder: string;
  acquiredAt: string;
  /** The workers the leader's scaler runs, as it last reported them; null until it has. */
  workers: number | null;
}

function toLeadership(row: {
  epoch: number;
  holder: string;
  acquired_at: Date;
  workers?: number | null;
}): Leadership {
  return {
    epoch: Number(row.epoch),
    holder: row.holder,
    acquiredAt: iso(row.acquired_at),
    workers: row.workers === null || row.workers === undefined ? null : Number(row.workers),
  };
}

/** Records a new leader: the epoch goes up by one, fencing every write of the previous leader. */
export async function takeLeadership(q: Queryable, holder: string): Promise<Leadership> {
  const res = await q.query<{ epoch: number; holder: string; acquired_at: Date }>(
    // A new leader has not counted its workers yet: the previous leader's count is not its own.
    "update controller_leader set epoch = epoch + 1, holder = $1, acquired_at = now(), workers = null where id = 1 returning *",
    [holder],
  );
  const row = res.rows[0];
  if (!row) throw new Error("controller_leader row is missing: run `skiff migrate`");
  return toLeadership(row);
}

export async function getLeadership(q: Queryable): Promise<Leadership> {
  const res = await q.query<{ epoch: number; holder: string; acquired_at: Date }>(
    "select * from controller_leader where id = 1",
  );
  const row = res.rows[0];
  if (!row) throw new Error("controller_leader row is missing: run `skiff migrate`");
  return toLeadership(row);
}

/**
 * The leader's count of its workers, stored only while `epoch` still leads: true when it changed
 * (the caller then tells the consoles), false when unchanged or fenced by a newer leader.
 */
export async function reportWorkers(q: Queryable, epoch: number, workers: number): Promise<boolean> {
  const res = await q.query(
    "update controller_leader set workers = $2 where id = 1 and epoch = $1 and workers is distinct from $2",
    [epoch, workers],
  );
  return res.rowCount > 0;
}

export interface FleetDecision {
  at: string;
  leaderEpoch: number;
  desired: number;
  actual: number;
  reason: string;
  inputs: Record<string, unknown>;
}

/**
 * Stores a controller decision only if `leaderEpoch` is still the current one; a deposed leader's
 * late write returns false and changes nothing.
 */
export async function recordDecision(q: Queryable, d: Omit<FleetDecision, "at">): Promise<boolean> {
  const res = await q.query(
    `insert into fleet_decisions (leader_epoch, desired, actual, reason, inputs)
     select $1, $2, $3, $4, $5 from controller_leader where id = 1 and epoch = $1`,
    [d.leaderEpoch, d.desired, d.actual, d.reason, JSON.stringify(d.inputs)],
  );
  return res.rowCount > 0;
}

export async function recentDecisions(q: Queryable, limit: number): Promise<FleetDecision[]> {
  const res = await q.query<Record<string, unknown>>(
    "select * from fleet_decisions order by id desc limit $1",
    [limit],
  );
  return res.rows.map((r) => ({
    at: iso(r.at),
    leaderEpoch: Number(r.leader_epoch),
    desired: Number(r.desired),
    actual: Number(r.actual),
    reason: String(r.reason),
    inputs: (r.inputs ?? {}) as Record<string, unknown>,
  }));
}
