import { readFileSync } from "node:fs";
import { JobSpec } from "@skiff/protocol";
import { parseDocument } from "yaml";
import { UsageError } from "./env.ts";
import { describeIssues } from "./problems.ts";

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
    const why: Record<string, string> = {
      ENOENT: "no such file",
      EISDIR: "it is a directory; -f takes one job file (YAML or JSON), e.g. -f jobs/hello.yaml",
      EACCES: "permission denied",
    };
    throw new UsageError(`cannot read job file ${label}: ${(code && why[code]) ?? (err as Error).message}`);
  }
  let data: unknown;
  if (file.endsWith(".json")) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`job file ${label} is not valid JSON: ${(err as Error).message}`);
    }
  } else {
    const doc = parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      const messages = doc.errors.map((e) => e.message.trimEnd().replace(/\n/g, "\n    "));
      throw new UsageError(`job file ${label} is not valid YAML:\n  ${messages.join("\n  ")}`);
    }
    data = doc.toJS();
  }
  const result = JobSpec.safeParse(data);
  if (!result.success) {
    const issues = describeIssues(JobSpec, result.error).map((i) => `  ${i.path}: ${i.message}`);
    throw new UsageError(`invalid job file ${label} (nothing was submitted):\n${issues.join("\n")}`);
  }
  return data;
}
