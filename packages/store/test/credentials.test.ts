import { createHash } from "node:crypto";
import { expect, it } from "vitest";
import { describeEachAdapter } from "./harness.ts";

const system = { actor: "test", role: "system" };
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describeEachAdapter("agent token scope and agent credentials", (store) => {
  let n = 0;
  async function agentToken(scope?: { queues: string[]; labels?: Record<string, string> }) {
    const secret = `tok-${++n}`;
    const { value } = await store().createToken(
      { name: `pool-${n}`, role: "agent", hash: sha(secret), scope },
      system,
    );
    return value;
  }
  async function agentWithCredential(tokenId: string) {
    const credential = `cred-${++n}`;
    const { value } = await store().registerAgent(
      {
        name: `w-${n}`,
        version: "1",
        slots: 1,
        labels: { queue: "a" },
        queues: ["a"],
        sandbox: "bwrap",
        resources: {},
        tokenId,
        credentialHash: sha(credential),
      },
      system,
    );
    return { agent: value, hash: sha(credential) };
  }
  const storedHash = async (agentId: string) =>
    (
      await store().db.query<{ h: string | null }>("select credential_hash as h from agents where id = $1", [
        agentId,
      ])
    ).rows[0]?.h;

  it("keeps an agent token's scope, reads it back validated, and audits it", async () => {
    const { value, audit } = await store().createToken(
      {
        name: "scoped",
        role: "agent",
        hash: sha("scoped"),
        scope: { queues: ["a", "b"], labels: { pool: "x" } },
      },
      system,
    );
    expect(value.scope).toEqual({ queues: ["a", "b"], labels: { pool: "x" } });
    expect(audit[0]?.details).toMatchObject({ scope: { queues: ["a", "b"] } });
    const listed = (await store().listTokens()).find((t) => t.id === value.id);
    expect(listed?.scope).toEqual({ queues: ["a", "b"], labels: { pool: "x" } });
    expect((await agentToken()).scope).toBeNull();
  });

  it("the schema refuses a scope on a token that is not an agent's, and a hand-edited scope fails to read", async () => {
    await expect(
      store().createToken(
        { name: "op", role: "operator", hash: sha("op"), scope: { queues: ["a"] } },
        system,
      ),
    ).rejects.toThrow(/tokens_scope_agent_only/);
    const token = await agentToken({ queues: ["a"] });
    await store().db.query(`update tokens set scope = '{"queues":[]}' where id = $1`, [token.id]);
    await expect(store().listTokens()).rejects.toThrow(/queue/);
    await store().db.query("update tokens set scope = null where id = $1", [token.id]);
  });

  it("finds a token by its hash and an online agent's credential by its own, naming the agent", async () => {
    const token = await agentToken({ queues: ["a"] });
    const { agent, hash } = await agentWithCredential(token.id);
    expect(await store().findCredential(sha(`tok-${n - 1}`))).toMatchObject({
      token: { id: token.id },
      agentId: null,
    });
    expect(await store().findCredential(hash)).toMatchObject({
      token: { id: token.id, scope: { queues: ["a"] } },
      agentId: agent.id,
    });
    expect(await store().findCredential(sha("never-issued"))).toBeNull();
    // The agent's credential is not a token: the token lookup alone does not find it.
    expect(await store().findTokenByHash(hash)).toBeNull();
  });

  it("deregistering erases the credential", async () => {
    const token = await agentToken();
    const { agent, hash } = await agentWithCredential(token.id);
    await store().deregisterAgent(agent.id, system);
    expect(await storedHash(agent.id)).toBeNull();
    expect(await store().findCredential(hash)).toBeNull();
  });

  it("the reaper erases the credentials of the agents it marks offline", async () => {
    const token = await agentToken();
    const { agent, hash } = await agentWithCredential(token.id);
    await store().db.query("update agents set last_heartbeat_at = now() - interval '1 hour' where id = $1", [
      agent.id,
    ]);
    const reaped = await store().reap({
      offlineAfterMs: 60_000,
      timeoutGraceSeconds: 60,
      logRetentionSeconds: 3600,
    });
    expect(reaped.value.offline).toContain(agent.id);
    expect(await storedHash(agent.id)).toBeNull();
    expect(await store().findCredential(hash)).toBeNull();
  });

  it("an offline agent's credential, or one whose token is revoked, unlocks nothing", async () => {
    const token = await agentToken();
    const offline = await agentWithCredential(token.id);
    // Offline with the hash still in place (a hand edit): the status alone refuses it.
    await store().db.query("update agents set status = 'offline' where id = $1", [offline.agent.id]);
    expect(await storedHash(offline.agent.id)).toBe(offline.hash);
    expect(await store().findCredential(offline.hash)).toBeNull();

    const live = await agentWithCredential(token.id);
    await store().revokeToken(token.id, system);
    expect(await store().findCredential(live.hash)).toBeNull();
  });
});
