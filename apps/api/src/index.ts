export { type Api, type ApiDeps, buildApi } from "./app.ts";
export { authenticate, bootstrapAdmin, hashToken, newTokenSecret, type Principal } from "./auth.ts";
export { ApiConfig, type ApiConfigInput } from "./config.ts";
export type { RouteDef } from "./context.ts";
export { type RunningApi, startApiServer } from "./server.ts";
