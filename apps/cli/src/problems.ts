import { formatPath } from "@skiff/protocol";
import { z } from "zod";

/** The number of single-character edits (insert, delete, replace) between two words. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const replace = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, replace));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** The allowed word nearest to `word`, when it is at most two edits away (a typo, not another word). */
export function nearest(word: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** The field names an object schema allows at `path` inside `schema` (empty when it is not an object). */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: z.ZodType | undefined = schema;
  const rest = [...path];
  for (;;) {
    if (node instanceof z.ZodOptional || node instanceof z.ZodNullable || node instanceof z.ZodDefault) {
      node = node.unwrap() as z.ZodType;
    } else if (node instanceof z.ZodPipe) {
      node = node.in as z.ZodType;
    } else if (rest.length === 0) {
      return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
    } else {
      const part = rest.shift();
      if (node instanceof z.ZodObject) node = node.shape[String(part)] as z.ZodType | undefined;
      else if (node instanceof z.ZodArray) node = node.element as z.ZodType;
      else if (node instanceof z.ZodRecord) node = node.valueType as z.ZodType;
      else return [];
      if (!node) return [];
    }
  }
}

/**
 * One `path: message` line per problem zod found, every one of them; an unknown field names the
 * allowed one it is closest to (`steps[0].runn: unknown field; did you mean \`run\`?`).
 */
export function describeIssues(schema: z.ZodType, error: z.ZodError): { path: string; message: string }[] {
  const lines: { path: string; message: string }[] = [];
  for (const issue of error.issues) {
    if (issue.code !== "unrecognized_keys") {
      lines.push({ path: formatPath(issue.path), message: issue.message });
      continue;
    }
    const allowed = keysAt(schema, issue.path);
    for (const key of issue.keys) {
      const guess = nearest(key, allowed);
      lines.push({
        path: formatPath([...issue.path, key]),
        message: `unknown field${guess ? `; did you mean \`${guess}\`?` : ""}`,
      });
    }
  }
  return lines;
}
