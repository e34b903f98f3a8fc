// @generated automatically by Diesel CLI.

diesel::table! {
    audit_events (id) {
        id -> Int8,
        kind -> Text,
        actor_id -> Nullable<Int8>,
        subject_id -> Nullable<Int8>,
        ip -> Nullable<Text>,
        detail -> Jsonb,
        at -> Timestamptz,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    auth_throttle (client_key) {
        client_key -> Text,
        tat -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Int8,
        key -> Text,
        fingerprint -> Text,
        task -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mfa_recovery_codes (user_id, code_hash) {
        user_id -> Int8,
        code_hash -> Bytea,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        recipient -> Text,
        subject -> Text,
        body -> Nullable<Text>,
        created_at -> Timestamptz,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        claimed_until -> Nullable<Timestamptz>,
        sent_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        reset_for -> Nullable<Int8>,
    }
}

diesel::table! {
    password_resets (user_id) {
        user_id -> Int8,
        token_hash -> Nullable<Bytea>,
        password_fingerprint -> Bytea,
        requested_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Int8,
        refresh_jti -> Uuid,
        refresh_iat -> Timestamptz,
        refresh_exp -> Timestamptz,
        previous_refresh_jti -> Nullable<Uuid>,
        previous_retired_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    tasks (id) {
        id -> Int8,
        owner_id -> Int8,
        title -> Text,
        description -> Nullable<Text>,
        completed -> Bool,
        due_date -> Nullable<Date>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        full_name -> Nullable<Text>,
        role -> Text,
        disabled -> Bool,
        failed_logins -> Int4,
        failed_window_start -> Nullable<Timestamptz>,
        locked_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        lock_reported -> Bool,
        task_count -> Int4,
        totp_secret -> Nullable<Bytea>,
        totp_enabled_at -> Nullable<Timestamptz>,
        totp_last_step -> Nullable<Int8>,
    }
}

diesel::joinable!(idempotency_keys -> users (user_id));
diesel::joinable!(mfa_recovery_codes -> users (user_id));
diesel::joinable!(outbox -> users (reset_for));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(tasks -> users (owner_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    auth_throttle,
    idempotency_keys,
    mfa_recovery_codes,
    outbox,
    password_resets,
    sessions,
    tasks,
    users,
);
