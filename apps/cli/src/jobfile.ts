import { readFileSync } from "node:fs";
import { issuesOf, JobSpec } from "@skiff/protocol";
import { parse as parseYaml } from "yaml";
import { UsageError } from "./env.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Reads a JobSpec from a YAML or JSON file (`-` for stdin) and checks it with the same schema the
 * API uses, so a mistake is reported with the field's path before anything is sent. Returns the
 * spec as written: the server fills in the defaults.
 */
export async function readJobFile(file: string): Promise<unknown> {
  const label = file === "-" ? "stdin" : file;
  let text: string;
  try {
    text = file === "-" ? await readStdin() : readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read job file ${label}: ${code === "ENOENT" ? "no such file" : (err as Error).message}`,
    );
  }
  let data: unknown;
  try {
    data = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const kind = file.endsWith(".json") ? "JSON" : "YAML";
    throw new UsageError(`job file ${label} is not valid ${kind}: ${(err as Error).message.split("\n")[0]}`);
  }
  const result = JobSpec.safeParse(data);
  if (!result.success) {
    const issues = issuesOf(result.error).map((i) => `  ${i.path}: ${i.message}`);
    throw new UsageError(`invalid job file ${label} (nothing was submitted):\n${issues.join("\n")}`);
  }
  return data;
}
