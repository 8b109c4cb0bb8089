import { readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Tab completion for a file path typed so far: the entries of its directory that start with it. */
export function completePath(typed: string): string[] {
  const dir = typed.endsWith("/") ? typed : dirname(typed);
  const prefix = typed.endsWith("/") ? "" : basename(typed);
  const base = typed === "" ? "." : dir;
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => n.startsWith(prefix) && !n.startsWith("."));
  } catch {
    return [];
  }
  return names.slice(0, 50).map((n) => {
    const path = typed === "" || (dir === "." && !typed.startsWith("./")) ? n : join(dir, n);
    try {
      return statSync(path).isDirectory() ? `${path}/` : path;
    } catch {
      return path;
    }
  });
}
