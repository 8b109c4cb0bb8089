import type { Cursor } from "../model/cursor.ts";
import type { KeyBinding } from "../model/keys.ts";
import type { ViewContext } from "./view.ts";

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

/**
 * `M`: the next page of older rows from the server, for a view that holds only the newest. Says
 * what happened in the status line: still loading, nothing older, how many came, or why not.
 */
export function loadOlderKey(
  ctx: ViewContext,
  what: { one: string; plural: string; page: number },
  source: { ready: () => boolean; more: () => boolean; load: () => Promise<number | null> },
): KeyBinding {
  let busy = false;
  const say = (text: string, tone?: "error") => ctx.stores.session.say(text, tone);
  return {
    key: "M",
    description: `load the next ${what.page} older ${what.plural} from the server`,
    handler: () => {
      if (busy) return;
      if (!source.ready()) {
        say(`the ${what.plural} are still loading; M pages older ones once they are in`, "error");
        return;
      }
      if (!source.more()) {
        say(`every ${what.one} is loaded: there are no older ones`);
        return;
      }
      busy = true;
      say(`loading older ${what.plural}…`);
      source
        .load()
        .then(
          (n) =>
            say(
              n === null || n === 0
                ? `every ${what.one} is loaded: there are no older ones`
                : `loaded ${n} older ${what.plural}`,
            ),
          (err) => say(`could not load older ${what.plural}: ${(err as Error).message}`, "error"),
        )
        .finally(() => {
          busy = false;
          ctx.requestRender();
        });
    },
  };
}
