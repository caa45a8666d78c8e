-- Users, their private file tree, and the login throttle.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    avatar_url    TEXT,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    quota_bytes   INTEGER NOT NULL
);

CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    parent_id  TEXT REFERENCES files(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('file', 'folder')),
    size       INTEGER NOT NULL DEFAULT 0,
    mime       TEXT,
    version    INTEGER NOT NULL DEFAULT 1,
    blob_key   TEXT,
    checksum   TEXT,
    shared     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- SQLite treats NULLs as distinct in UNIQUE constraints, so root entries (parent_id NULL)
-- need the expression form to stay unique per user.
CREATE UNIQUE INDEX files_unique_name ON files (user_id, COALESCE(parent_id, ''), name);
CREATE INDEX files_by_parent ON files (parent_id);
CREATE INDEX files_by_blob ON files (blob_key);

CREATE TABLE login_failures (
    email        TEXT PRIMARY KEY COLLATE NOCASE,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL
);
