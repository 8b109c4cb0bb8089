-- An HMAC of each audit row's hash under a key the database does not hold (the API's and the
-- controller's SKIFF_AUDIT_KEY): someone who can write the table but lacks the key cannot forge a
-- row or rewrite history with recomputed hashes without `skiff audit verify` naming the row. Rows
-- written before this migration, or by a process without the key, have none.
alter table audit_log add column seal text;
