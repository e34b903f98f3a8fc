-- A TOTP second factor (RFC 6238). `totp_secret` is set by an enrolment and
-- is pending until `totp_enabled_at` is set by its confirmation;
-- `totp_last_step` is the newest time step accepted, so that a code is
-- accepted once (a conditional UPDATE claims the step).
ALTER TABLE users
    ADD COLUMN totp_secret bytea,
    ADD COLUMN totp_enabled_at timestamptz,
    ADD COLUMN totp_last_step bigint,
    ADD CONSTRAINT users_totp_enabled_has_secret
        CHECK (totp_enabled_at IS NULL OR totp_secret IS NOT NULL);

-- Recovery codes, stored as SHA-256 digests (each code carries 80 random
-- bits, so a fast digest is enough); a login deletes the one it uses.
CREATE TABLE mfa_recovery_codes (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check CHECK (kind IN (
    'signup', 'login_succeeded', 'login_failed', 'login_locked',
    'token_refreshed', 'refresh_reuse_detected', 'logout', 'logout_all',
    'password_changed', 'user_created', 'user_updated', 'user_deleted',
    'sessions_revoked', 'password_reset_requested', 'password_reset',
    'password_set', 'session_revoked',
    'mfa_enabled', 'mfa_disabled', 'mfa_failed', 'mfa_reset',
    'mfa_recovery_code_used'
));
