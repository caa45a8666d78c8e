-- Tables the later capabilities fill: shares, sandboxes, deploys, apps, notifications, rooms.
CREATE TABLE shares (
    token      TEXT PRIMARY KEY,
    file_id    TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    mode       TEXT NOT NULL CHECK (mode IN ('view', 'edit')),
    expires_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX shares_by_file ON shares (file_id);

CREATE TABLE sandboxes (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider     TEXT NOT NULL CHECK (provider IN ('local', 'fly')),
    machine_id   TEXT,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX sandboxes_by_user ON sandboxes (user_id);

CREATE TABLE deployments (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    folder_id  TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    file_count INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE apps (
    id       TEXT PRIMARY KEY,
    manifest TEXT NOT NULL
);

CREATE TABLE installs (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, app_id)
);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    read_at    INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at);

CREATE TABLE docs (
    file_id    TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    state      BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
