/** How the controller changes the number of workers. Scale-down is drain-first: see `Controller`. */
export interface Scaler {
  readonly kind: "embedded" | "process" | "compose" | "kubernetes";
  /** Names of the workers this scaler runs now (as they register with the API). */
  list(): string[];
  /** Starts `n` more workers. */
  add(n: number): Promise<void>;
  close(): Promise<void>;
}
