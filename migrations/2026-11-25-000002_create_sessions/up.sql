-- One row per login. The refresh token's claims are kept (never the token
-- string) so the grace window can hand back the very same token.
CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_jti UUID NOT NULL,
    refresh_iat TIMESTAMPTZ NOT NULL,
    refresh_exp TIMESTAMPTZ NOT NULL,
    previous_refresh_jti UUID,
    previous_retired_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    ip TEXT,
    user_agent TEXT,
    CONSTRAINT sessions_refresh_jti_key UNIQUE (refresh_jti)
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
