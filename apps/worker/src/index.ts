export { Agent, type AgentLogger } from "./agent.ts";
export { AgentClient, ApiError, ApiUnreachable } from "./client.ts";
export { WorkerConfig, type WorkerConfigInput } from "./config.ts";
export { bwrapArgs, createBwrapDriver } from "./sandbox/bwrap.ts";
export { createDockerDriver } from "./sandbox/docker.ts";
export { createUnsafeDriver } from "./sandbox/none.ts";
export type { SandboxDriver, StepEnd, StepRun } from "./sandbox/types.ts";
export { chooseDriver, type RunningWorker, startWorker } from "./worker.ts";
