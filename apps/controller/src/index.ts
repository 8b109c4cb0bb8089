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
export {
  createKubernetesScaler,
  KUBERNETES_SCALER_RBAC,
  KubernetesScalerError,
  type KubernetesScalerOptions,
  POD_DELETION_COST,
} from "./scalers/kubernetes.ts";
export { createProcessScaler } from "./scalers/process.ts";
export type { Scaler } from "./scalers/types.ts";
export { startControllerServer } from "./server.ts";
export { mintWorkerToken } from "./tokens.ts";
