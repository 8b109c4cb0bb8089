export * from "./bodies.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./jobspec.ts";
export * from "./model.ts";
export * from "./openapi.ts";
export * from "./responses.ts";
export * from "./validate.ts";
