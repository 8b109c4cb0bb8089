/** How the controller changes the number of workers. Scale-down is drain-first: see `Controller`. */
export interface Scaler {
  readonly kind: "embedded" | "process" | "compose" | "kubernetes";
  /** Names of the workers this scaler runs now (as they register with the API). */
  list(): string[];
  /** Starts `n` more workers. */
  add(n: number): Promise<void>;
  /** Refreshes what `list()` returns from the outside world (containers, pods); called every tick. */
  sync?(): Promise<void>;
  /**
   * A drained worker has left (its agent deregistered): lower the count for scalers whose platform
   * would otherwise start it again (compose, Kubernetes). Process and embedded workers just exit.
   */
  release?(name: string): Promise<void>;
  close(): Promise<void>;
}
