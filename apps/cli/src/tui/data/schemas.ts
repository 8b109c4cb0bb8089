import { Agent, FleetSettings, Job, Role } from "@skiff/protocol";

// Shapes the API returns that @skiff/protocol has no schema for, built from its parts so they stay in
// step with it (the TUI has no zod of its own).
const Count = FleetSettings.shape.replicas;
const Text = FleetSettings.shape.updatedBy;
const Epoch = FleetSettings.shape.leaderEpoch;

export const FleetLeader = FleetSettings.pick({}).extend({ holder: Text, epoch: Epoch, since: Text });

export const FleetDecision = FleetSettings.pick({ leaderEpoch: true }).extend({
  at: Text,
  desired: Count,
  actual: Count,
  reason: Text,
});
export type FleetDecision = ReturnType<typeof FleetDecision.parse>;

export const FleetView = FleetSettings.omit({ leaderEpoch: true }).extend({
  desired: Count,
  actual: Count,
  /** Absent from older APIs, whose `actual` was every online agent. */
  online: Count.optional(),
  scaler: Text.nullable(),
  leader: FleetLeader.nullable(),
  decisions: FleetDecision.array(),
});
export type FleetView = ReturnType<typeof FleetView.parse>;

export const Whoami = FleetSettings.pick({}).extend({ name: Text, role: Role });
export type Whoami = ReturnType<typeof Whoami.parse>;

export const AgentList = FleetSettings.pick({}).extend({ items: Agent.array() });
export const JobPage = FleetSettings.pick({}).extend({ items: Job.array(), nextCursor: Text.nullable() });

/** The `end` event of a job's log stream. */
export const LogEnd = FleetSettings.pick({}).extend({
  jobId: Text,
  state: Text,
  exitCode: Epoch.nullable(),
});
export type LogEnd = ReturnType<typeof LogEnd.parse>;
