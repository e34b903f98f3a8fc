-- The id of the request that wrote the event (the caller's X-Request-Id or
-- one made up), to find its log lines; null for the command line's events.
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
