-- The per-client limit of the auth routes, shared by every instance: one row
-- per client key holding its theoretical arrival time (GCRA). A row whose tat
-- has passed is a full allowance again, so such rows are pruned.
CREATE TABLE auth_throttle (
    client_key TEXT PRIMARY KEY,
    tat TIMESTAMPTZ NOT NULL
);

CREATE INDEX auth_throttle_tat_idx ON auth_throttle (tat);
