CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    full_name TEXT,
    role TEXT NOT NULL DEFAULT 'user',
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    -- Brute-force lockout: consecutive failures since failed_window_start.
    failed_logins INTEGER NOT NULL DEFAULT 0,
    failed_window_start TIMESTAMPTZ,
    locked_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email)) AND email <> ''),
    CONSTRAINT users_role_check CHECK (role IN ('user', 'manager', 'admin')),
    CONSTRAINT users_failed_logins_check CHECK (failed_logins >= 0)
);

CREATE INDEX users_role_idx ON users (role);
