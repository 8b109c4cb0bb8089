-- Agent tokens bound to queues and labels, and a credential of its own for each registered agent.

-- {"queues": [...], "labels": {...}}; null is an unscoped token (any queue, any label).
alter table tokens add column scope jsonb;
alter table tokens add constraint tokens_scope_agent_only check (scope is null or role = 'agent');

-- SHA-256 of the agent's own credential, returned once by register; cleared when the agent
-- deregisters or is marked offline, which is what makes the credential die with the agent.
alter table agents add column credential_hash text;
create unique index agents_credential_idx on agents (credential_hash) where credential_hash is not null;
