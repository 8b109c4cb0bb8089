import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const AUDIT_KEY_ENV = "SKIFF_AUDIT_KEY";
const MIN_LENGTH = 32;

export interface AuditKey {
  key: Buffer;
  /** Where it came from, for the startup lines: the variable, or the file (and whether it was made now). */
  source: string;
}

/**
 * The audit key: `SKIFF_AUDIT_KEY` when set, else `$SKIFF_HOME/audit.key`, which `create` makes
 * (mode 0600) when missing. Every process that writes audit entries (API replicas, the
 * controller) must use the same key; the database never holds it. Null when there is none and
 * none may be made: entries then go unsealed, and `skiff audit verify` names them.
 */
export function loadAuditKey(home: string, env: NodeJS.ProcessEnv, create: boolean): AuditKey | null {
  const given = env[AUDIT_KEY_ENV];
  if (given !== undefined && given !== "") {
    if (/CHANGE-ME/i.test(given))
      throw new Error(
        `${AUDIT_KEY_ENV} is still the example's placeholder: set it to the output of \`openssl rand -hex 32\` (the same for every API replica and the controller)`,
      );
    if (given.length < MIN_LENGTH)
      throw new Error(
        `${AUDIT_KEY_ENV} must be at least ${MIN_LENGTH} characters (e.g. \`openssl rand -hex 32\`), got ${given.length}`,
      );
    return { key: Buffer.from(given, "utf8"), source: AUDIT_KEY_ENV };
  }
  const file = join(home, "audit.key");
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8").trim();
    if (text.length < MIN_LENGTH)
      throw new Error(
        `${file} holds fewer than ${MIN_LENGTH} characters; remove it to make a new key, or fix it`,
      );
    return { key: Buffer.from(text, "utf8"), source: file };
  }
  if (!create) return null;
  const text = randomBytes(32).toString("hex");
  writeFileSync(file, `${text}\n`, { mode: 0o600, flag: "wx" });
  return { key: Buffer.from(text, "utf8"), source: `${file} (created now, mode 0600)` };
}
