-- Failed logins per client (its address; a /64 for IPv6), so one client trying many
-- emails is slowed down as one trying many passwords is per email.
CREATE TABLE login_failures_by_client (
    client       TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL
);
CREATE INDEX login_failures_by_client_window ON login_failures_by_client (window_start);
