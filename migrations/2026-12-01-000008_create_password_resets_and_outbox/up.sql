-- Account recovery. One live reset per user: a new request replaces the
-- token, at most once per recovery.min_interval_seconds (one conditional
-- upsert decides). Only the token's SHA-256 is kept; the fingerprint of the
-- password hash it was issued for kills it when the password changes.
CREATE TABLE password_resets (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    password_fingerprint BYTEA NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT password_resets_token_hash_key UNIQUE (token_hash)
);

-- Mail written in the same transaction as what it tells about, delivered by
-- a sender in every instance: rows are claimed with FOR UPDATE SKIP LOCKED
-- and a lease, so two instances never send one twice. The body (it carries
-- a reset link) is erased once sent.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_until TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    failed_at TIMESTAMPTZ,
    last_error TEXT
);

CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check CHECK (kind IN (
    'signup', 'login_succeeded', 'login_failed', 'login_locked',
    'token_refreshed', 'refresh_reuse_detected', 'logout', 'logout_all',
    'password_changed', 'user_created', 'user_updated', 'user_deleted',
    'sessions_revoked', 'password_reset_requested', 'password_reset'
));
