import type { Agent } from "@skiff/protocol";

export type { FeedState } from "../data/backend.ts";

/** An agent as the console keeps it: the API's object plus what heartbeats told since. */
export interface AgentRecord extends Agent {
  /** Jobs running on it, from its last heartbeat (the list of ids comes only with a reload). */
  running: number;
}
