import type { LogLevel } from "fastify";

const LEVELS: LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/**
 * The level for chatty routes (probes, agent traffic): `warn`, unless the logger is already quieter.
 * A route level more verbose than the logger's would switch logs back on.
 */
export function quietLevel(current: string): LogLevel {
  const at = LEVELS.indexOf(current as LogLevel);
  return at > LEVELS.indexOf("warn") ? (current as LogLevel) : "warn";
}

export function levelOf(current: string): LogLevel {
  return LEVELS.includes(current as LogLevel) ? (current as LogLevel) : "info";
}
