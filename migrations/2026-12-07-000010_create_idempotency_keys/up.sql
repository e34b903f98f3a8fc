-- What POST /tasks answered to an Idempotency-Key, so that a client whose
-- answer was lost can send the same request again and get the same task.
-- A key is the user's for 24 hours; then it may be used again (and the row is
-- pruned). `fingerprint` is a digest of the request as parsed: the same key
-- with a different request is refused. `task` is the task as first answered.
CREATE TABLE idempotency_keys (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    fingerprint text NOT NULL,
    task jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
