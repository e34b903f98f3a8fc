-- actor_id and subject_id carry no foreign key on purpose: the audit trail
-- must keep naming a user after that user is deleted.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    actor_id BIGINT,
    subject_id BIGINT,
    ip TEXT,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT audit_events_kind_check CHECK (kind IN (
        'signup', 'login_succeeded', 'login_failed', 'login_locked',
        'token_refreshed', 'refresh_reuse_detected', 'logout', 'logout_all',
        'password_changed', 'user_created', 'user_updated', 'user_deleted',
        'sessions_revoked'
    ))
);

CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_kind_idx ON audit_events (kind);
