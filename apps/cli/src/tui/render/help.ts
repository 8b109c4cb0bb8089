import { type KeyBinding, type KeyGroup, keysOf } from "../model/keys.ts";
import type { Line } from "./style.ts";
import { displayWidth } from "./text.ts";

const NAMES: Record<string, string> = {
  enter: "Enter",
  escape: "Esc",
  up: "↑",
  down: "↓",
  left: "←",
  right: "→",
  pageup: "PgUp",
  pagedown: "PgDn",
  home: "Home",
  end: "End",
  tab: "Tab",
  space: "Space",
};

/** How a key is written for people: `Ctrl-L`, `Esc`, `↓`, `G`. */
export function keyLabel(key: string): string {
  const named = NAMES[key];
  if (named) return named;
  if (key.startsWith("C-")) return `Ctrl-${key.slice(2).toUpperCase()}`;
  return key;
}

export function bindingKeys(b: KeyBinding): string {
  return keysOf(b).map(keyLabel).join(" ");
}

/** The `?` screen: every bound key by group, dangerous ones marked as asking for confirmation. */
export function helpLines(groups: readonly KeyGroup[]): Line[] {
  const width = Math.max(8, ...groups.flatMap((g) => g.bindings.map((b) => displayWidth(bindingKeys(b)))));
  const lines: Line[] = [];
  for (const g of groups) {
    if (lines.length > 0) lines.push([]);
    lines.push([{ text: g.title, bold: true }]);
    for (const b of g.bindings) {
      const keys = bindingKeys(b);
      const line: Line = [
        { text: `  ${keys}${" ".repeat(width - displayWidth(keys))}  `, color: "cyan" },
        { text: b.description },
      ];
      if (b.dangerous) line.push({ text: "  (asks to confirm)", color: "yellow" });
      lines.push(line);
    }
  }
  return lines;
}

/** The footer: the hinted bindings as `key description` pairs, as many as fit. */
export function footerLine(groups: readonly KeyGroup[], width: number): Line {
  const line: Line = [];
  let used = 0;
  for (const b of groups.flatMap((g) => g.bindings).filter((x) => x.hint)) {
    const key = keyLabel(b.key);
    const w = displayWidth(key) + 1 + displayWidth(b.description) + 2;
    if (used + w > width) break;
    line.push({ text: key, color: "cyan", bold: true }, { text: ` ${b.description}  ` });
    used += w;
  }
  return line;
}

/** The palette's commands, after the keys on the help screen. */
/** How the `/` filter reads what is typed (see model/filter.ts). */
export const FILTER_HELP: Line[] = [
  [{ text: "Filter (/ then words; Enter keeps it, Esc clears it)", bold: true }],
  [{ text: "  Every word must match, ignoring case, anywhere in the row's columns." }],
  [{ text: "  field:value matches one column only, for example:" }],
  [
    { text: "    Jobs    ", color: "cyan" },
    { text: "state:running queue:gpu   agent:w-1   by:alice   id:job_0mx" },
  ],
  [
    { text: "    Agents  ", color: "cyan" },
    { text: "status:offline   sandbox:unsafe   labels:arch=arm64   version:0.1" },
  ],
  [
    { text: "    Audit   ", color: "cyan" },
    { text: "actor:alice action:fleet   outcome:denied   target:job_0mx" },
  ],
  [{ text: "  since: and until: bound the time (Audit: the entry's, Jobs: when it was submitted):" }],
  [
    { text: "    ", color: "cyan" },
    { text: "since:1h   since:30m until:5m   since:2026-12-01   until:2026-12-01T09:30" },
  ],
];

export function commandLines(commands: readonly { name: string; description: string }[]): Line[] {
  const width = Math.max(8, ...commands.map((c) => displayWidth(c.name)));
  return [
    [{ text: "Commands (type : and a name; Tab completes)", bold: true }],
    ...commands.map(
      (c): Line => [
        { text: `  ${c.name}${" ".repeat(width - displayWidth(c.name))}  `, color: "cyan" },
        { text: c.description },
      ],
    ),
  ];
}
