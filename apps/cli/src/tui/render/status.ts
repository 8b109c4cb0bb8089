import type { FeedState } from "../model/types.ts";
import { type Line, plain, type Seg } from "./style.ts";
import { displayWidth, truncate } from "./text.ts";

export function connectionCell(state: FeedState, now: number): Seg {
  switch (state.kind) {
    case "live":
      return { text: "● live", color: "green" };
    case "connecting":
      return { text: "◌ connecting", color: "yellow" };
    case "reconnecting": {
      const s = Math.ceil((state.retryAt - now) / 1000);
      return { text: s > 0 ? `◌ reconnecting in ${s}s` : "◌ reconnecting…", color: "yellow" };
    }
    case "unauthorised":
      return { text: "✗ unauthorised", color: "red", bold: true };
    case "ended":
    case "closed":
      return { text: "○ closed", color: "gray" };
  }
}

export interface StatusInput {
  baseUrl: string;
  who: { name: string; role: string } | null;
  readOnly: boolean;
  connection: FeedState;
  flash: { text: string; level: "info" | "error" } | null;
  now: number;
}

/**
 * The bottom line: who we are, whether changes are possible, the connection and the last message on
 * the left, the server on the right; a message too long for both pushes the server out, not itself.
 */
export function statusLine(s: StatusInput, width = 200): Line {
  const left: Line = [
    { text: " skiff ", bold: true },
    connectionCell(s.connection, s.now),
    { text: `  ${s.who ? `${s.who.name} (${s.who.role})` : "role unknown"}` },
  ];
  if (s.readOnly) left.push({ text: "  read-only", color: "yellow" });
  if (s.flash) {
    left.push({ text: "  │ ", color: "gray" });
    left.push(
      s.flash.level === "error"
        ? { text: `✗ ${s.flash.text}`, color: "red" }
        : { text: s.flash.text, color: "cyan" },
    );
  }
  const used = displayWidth(plain(left));
  const server = `${s.baseUrl} `;
  if (used + 2 + displayWidth(server) <= width)
    return [...left, { text: " ".repeat(width - used - displayWidth(server)) }, { text: server }];
  const last = left.at(-1);
  if (last && used > width)
    last.text = truncate(last.text, Math.max(1, displayWidth(last.text) - (used - width)));
  return left;
}
