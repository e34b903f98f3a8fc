-- `password_set`: an admin (or the CLI) set a user's password;
-- `session_revoked`: an admin ended one session of a user.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check CHECK (kind IN (
    'signup', 'login_succeeded', 'login_failed', 'login_locked',
    'token_refreshed', 'refresh_reuse_detected', 'logout', 'logout_all',
    'password_changed', 'user_created', 'user_updated', 'user_deleted',
    'sessions_revoked', 'password_reset_requested', 'password_reset',
    'password_set', 'session_revoked'
));
