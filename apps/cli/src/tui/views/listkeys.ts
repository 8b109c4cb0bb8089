import type { Cursor } from "../model/cursor.ts";
import type { KeyBinding } from "../model/keys.ts";

/** j/k/g/G, arrows and paging over a list, for every view that shows one. */
export function listKeys(
  cursor: Cursor,
  count: () => number,
  pageSize: () => number,
  moved: () => void,
): KeyBinding[] {
  const go = (fn: () => void) => () => {
    fn();
    moved();
  };
  return [
    { key: "j", aliases: ["down"], description: "down", handler: go(() => cursor.move(1, count())) },
    { key: "k", aliases: ["up"], description: "up", handler: go(() => cursor.move(-1, count())) },
    { key: "g", aliases: ["home"], description: "first row", handler: go(() => cursor.top()) },
    { key: "G", aliases: ["end"], description: "last row", handler: go(() => cursor.bottom(count())) },
    {
      key: "C-f",
      aliases: ["pagedown"],
      description: "page down",
      handler: go(() => cursor.move(pageSize(), count())),
    },
    {
      key: "C-b",
      aliases: ["pageup"],
      description: "page up",
      handler: go(() => cursor.move(-pageSize(), count())),
    },
  ];
}
