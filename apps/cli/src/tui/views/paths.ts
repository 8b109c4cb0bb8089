import { readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";

/** `~` and `~/…` as the shell would read them: the operator's home. */
export function expandHome(typed: string): string {
  if (typed === "~") return homedir();
  return typed.startsWith("~/") ? join(homedir(), typed.slice(2)) : typed;
}

/**
 * Where a file named `name` goes when the operator typed `typed`: `~` expanded, relative paths from
 * the working directory, and into a directory (as `cp` does) when that is what was typed.
 */
export function fileTarget(typed: string, name: string): string {
  const path = resolve(expandHome(typed.trim()));
  try {
    if (statSync(path).isDirectory()) return join(path, name);
  } catch {
    // Not there yet: a new file.
  }
  return path;
}

/** Tab completion for a file path typed so far: the entries of its directory that start with it. */
export function completePath(typed: string): string[] {
  if (typed === "~" || typed.startsWith("~/")) {
    // Completed in the home directory, and shown with the `~` the operator typed.
    const home = homedir();
    return completePath(expandHome(typed === "~" ? "~/" : typed)).map((p) => `~${p.slice(home.length)}`);
  }
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
