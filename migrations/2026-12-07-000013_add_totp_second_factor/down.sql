DELETE FROM audit_events WHERE kind LIKE 'mfa\_%';
ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check CHECK (kind IN (
    'signup', 'login_succeeded', 'login_failed', 'login_locked',
    'token_refreshed', 'refresh_reuse_detected', 'logout', 'logout_all',
    'password_changed', 'user_created', 'user_updated', 'user_deleted',
    'sessions_revoked', 'password_reset_requested', 'password_reset',
    'password_set', 'session_revoked'
));
DROP TABLE mfa_recovery_codes;
ALTER TABLE users
    DROP CONSTRAINT users_totp_enabled_has_secret,
    DROP COLUMN totp_last_step,
    DROP COLUMN totp_enabled_at,
    DROP COLUMN totp_secret;
