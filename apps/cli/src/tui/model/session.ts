import type { Role } from "@skiff/protocol";
import { Emitter } from "./emitter.ts";
import type { FeedState } from "./types.ts";

export interface Flash {
  text: string;
  level: "info" | "error";
  until: number;
}

/** Who we are to the server, whether we may change anything, the connection, and the last message. */
export class SessionStore extends Emitter {
  who: { name: string; role: Role } | null = null;
  connection: FeedState = { kind: "connecting" };
  flash: Flash | null = null;

  constructor(
    readonly baseUrl: string,
    readonly readOnlyFlag: boolean,
  ) {
    super();
  }

  /** Changes are offered only to a known operator or admin, and never with `--read-only`. */
  canChange(): boolean {
    if (this.readOnlyFlag || !this.who) return false;
    return this.who.role === "operator" || this.who.role === "admin";
  }

  /** Read-only as the status bar says it: by flag, by role, or until the role is known. */
  get readOnly(): boolean {
    return !this.canChange();
  }

  setWho(who: { name: string; role: Role }): void {
    if (this.who?.name === who.name && this.who.role === who.role) return;
    this.who = who;
    this.changed();
  }

  setConnection(state: FeedState): void {
    this.connection = state;
    this.changed();
  }

  say(text: string, level: Flash["level"] = "info", ms = 6_000, now = Date.now()): void {
    this.flash = { text, level, until: now + ms };
    this.changed();
  }

  /** Clears an expired message; true when it did. */
  expireFlash(now = Date.now()): boolean {
    if (!this.flash || this.flash.until > now) return false;
    this.flash = null;
    this.changed();
    return true;
  }
}
