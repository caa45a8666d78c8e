-- Explicit locks: a lease on a file, held by one signed-in person, that makes the file
-- read-only for everyone else until it is released, its holder leaves the file's live
-- room, or it expires. A row past `until_ms` is no lock (taking it overwrites it).
CREATE TABLE file_locks (
    file_id   TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    holder_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until_ms  INTEGER NOT NULL,
    taken_at  INTEGER NOT NULL
);
