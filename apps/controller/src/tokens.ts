import { createHash, randomBytes } from "node:crypto";
import type { Store } from "@skiff/store";

/**
 * Mints the agent token the workers this process starts will use, revoking the one an earlier run
 * of the same name minted (only the hash is stored, so an old secret cannot be handed out again).
 */
export async function mintWorkerToken(store: Store, name: string, actor: string): Promise<string> {
  const who = { actor, role: "system" };
  for (const t of await store.listTokens()) {
    if (t.name === name && !t.revokedAt) await store.revokeToken(t.id, who);
  }
  const token = `skf_${randomBytes(32).toString("base64url")}`;
  await store.createToken(
    { name, role: "agent", hash: createHash("sha256").update(token).digest("hex") },
    who,
  );
  return token;
}
