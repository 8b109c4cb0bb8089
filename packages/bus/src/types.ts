import type { SkiffEvent } from "@skiff/protocol";

/**
 * Fan-out of typed events between API replicas (and the long-poll wake-ups of job claimers).
 * Delivery is at most once: a replica that is disconnected when an event is published misses it,
 * so consumers must treat events as hints and read the truth from the database.
 */
export interface Bus {
  /** Validates the event and delivers it to every subscriber on every replica, this one included. */
  publish(event: SkiffEvent): Promise<void>;
  /** Returns the unsubscribe function; after it returns the listener is never called again. */
  subscribe(listener: (event: SkiffEvent) => void): () => void;
  /** Tells long-polling claimers on any replica that a job is queued on this queue. */
  wake(queue: string): Promise<void>;
  onWake(listener: (queue: string) => void): () => void;
  /** Throws when the bus is unreachable; used by `/readyz`. */
  ping(): Promise<void>;
  readonly kind: "memory" | "redis";
  close(): Promise<void>;
}

/** The subset of a pino-style logger the bus needs: structured fields first, then the message. */
export interface BusLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export class BusClosedError extends Error {
  readonly code = "bus_closed";
  constructor() {
    super("the bus is closed");
    this.name = "BusClosedError";
  }
}

export const consoleLogger: BusLogger = {
  info: (fields, message) => console.info(`bus: ${message}`, fields),
  warn: (fields, message) => console.warn(`bus: ${message}`, fields),
  error: (fields, message) => console.error(`bus: ${message}`, fields),
};
