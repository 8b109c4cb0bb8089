export { type Api, type ApiDeps, buildApi } from "./app.ts";
export { AUDIT_KEY_ENV, type AuditKey, loadAuditKey } from "./audit-key.ts";
export { authenticate, bootstrapAdmin, hashToken, newTokenSecret, type Principal } from "./auth.ts";
export { ApiConfig, type ApiConfigInput } from "./config.ts";
export type { RouteDef } from "./context.ts";
export { type RunningApi, startApiServer } from "./server.ts";
