export { Controller, type ControllerOptions, type ControllerSnapshot } from "./controller.ts";
export { type DecideOptions, type Decision, decide, nextState } from "./decide.ts";
export { LeaderElector, type LeaderState } from "./leader.ts";
export {
  ComposeError,
  type ComposeScalerOptions,
  composeWorkerName,
  createComposeScaler,
  detectComposeCommand,
} from "./scalers/compose.ts";
export { createEmbeddedScaler } from "./scalers/embedded.ts";
// The Kubernetes scaler is its own entry point, `@skiff/controller/kubernetes`: its client library
// takes about a second to load, which every other shape (`skiff up` above all) should not pay.
export { createProcessScaler } from "./scalers/process.ts";
export type { Scaler } from "./scalers/types.ts";
export { startControllerServer } from "./server.ts";
export { mintWorkerToken } from "./tokens.ts";
