-- Links that let someone else in: today view links to a sandbox's terminals; links to files
-- and folders (the editor issue) use the same table. A link is stored by the SHA-256 of its
-- token only, and revoking it keeps the row (revoked_at), so a revoked link is told apart
-- from an unknown one and the owner's list keeps its history. It replaces 0002's
-- placeholder, which nothing wrote (it kept tokens in the clear and files only).
DROP INDEX shares_by_file;
DROP TABLE shares;
CREATE TABLE shares (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('sandbox', 'file')),
    target_id TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('view', 'edit')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    access_count INTEGER NOT NULL DEFAULT 0,
    last_access_at INTEGER
);
CREATE INDEX shares_by_target ON shares (kind, target_id);
CREATE INDEX shares_by_owner ON shares (owner_id);

-- Who opened a link: when they sign out, what they watch through it ends too.
CREATE TABLE share_visits (
    share_id   TEXT NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
    visitor_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (share_id, visitor_id)
);
CREATE INDEX share_visits_by_visitor ON share_visits (visitor_id);

-- A ticket opens a socket for the session it was asked in: the token generation (a logout
-- in between voids it) and the session's expiry (the socket ends then).
ALTER TABLE ws_tickets ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ws_tickets ADD COLUMN session_expires_at INTEGER NOT NULL DEFAULT 0;
