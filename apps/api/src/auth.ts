import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Role, TokenScope } from "@skiff/protocol";
import type { Store } from "@skiff/store";

export const TOKEN_PREFIX = "skf_";
/** An agent's own credential, told apart from tokens at a glance (and by secret scanners). */
export const AGENT_CREDENTIAL_PREFIX = "skfa_";

export function newTokenSecret(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
}

export function newAgentCredential(): string {
  return `${AGENT_CREDENTIAL_PREFIX}${randomBytes(32).toString("base64url")}`;
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

const recentHashes = new Map<string, string>();

/**
 * `hashToken` for the headers this process keeps seeing: a fleet presents a handful of tokens
 * thousands of times a second, and the hash was a visible share of each agent call's CPU. Bounded;
 * made-up tokens only churn it.
 */
export function hashTokenCached(token: string): string {
  let hash = recentHashes.get(token);
  if (hash === undefined) {
    hash = hashToken(token);
    if (recentHashes.size >= 1_000) recentHashes.clear();
    recentHashes.set(token, hash);
  }
  return hash;
}

/** Who is calling, after the token checked out. */
export interface Principal {
  /** The token, or for an agent's own credential the token that registered the agent. */
  tokenId: string;
  name: string;
  role: Role;
  /** An agent token's scope; null when it may serve any queue and label. */
  scope: TokenScope | null;
  /** Set when the caller presented an agent's own credential: the one agent it may act as. */
  agentId: string | null;
}

/**
 * Looks a bearer token up by its SHA-256. Only hashes are stored and compared: the time a lookup
 * takes depends on the hash, which an attacker cannot steer towards a real token byte by byte, so
 * no secret-dependent comparison happens anywhere (the same argument as for hashed API keys).
 */
export async function authenticate(store: Store, header: string | undefined): Promise<Principal | null> {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const token = match?.[1];
  if (!token || token.length > 200) return null;
  const found = await store.findCredential(hashToken(token));
  if (!found) return null;
  const { token: info, agentId } = found;
  return { tokenId: info.id, name: info.name, role: info.role, scope: info.scope, agentId };
}

/**
 * Makes sure an admin can get in: when the store has no live admin token, creates one and writes it
 * to `$SKIFF_HOME/admin.token` with mode 0600. Returns the file's path when it wrote one.
 */
export async function bootstrapAdmin(store: Store, skiffHome: string): Promise<string | null> {
  if (await store.hasLiveAdmin()) return null;
  const token = newTokenSecret();
  await store.createToken(
    { name: "admin", role: "admin", hash: hashToken(token) },
    { actor: "bootstrap", role: "system" },
  );
  mkdirSync(skiffHome, { recursive: true, mode: 0o700 });
  const file = join(skiffHome, "admin.token");
  // Stryker disable next-line ObjectLiteral: the chmod below leaves the same mode; this closes the moment between the two, which no test can observe
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}
