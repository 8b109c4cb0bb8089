/**
 * Wake-ups between API replicas: long-polling job claimers, log followers and token revocations
 * (the key says which). Events do not travel here: every replica reads them from the event log in
 * the database. Delivery is at most once: a replica that is disconnected when a wake-up is sent
 * misses it, so a wake-up is a hint to read the database again, never the truth itself.
 */
export interface Bus {
  /**
   * Tells listeners on every replica, this one included, that something changed for this key: a job
   * queued on this queue, new log lines, a revoked token.
   */
  wake(queue: string): Promise<void>;
  /** Returns the unsubscribe function; after it returns the listener is never called again. */
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
