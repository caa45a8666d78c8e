-- Live rooms (collaborative editing). A room's document is its snapshot plus the updates
-- logged after it, in order; an update is acknowledged only once its row is written. The
-- snapshot also keeps `base`, the document as of the file version it last wrote or read,
-- so a save made without the room merges into it as a concurrent edit. Replaces 0002's
-- `docs` placeholder, which nothing wrote.
DROP TABLE docs;
CREATE TABLE room_snapshots (
    file_id      TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    snapshot     BLOB NOT NULL,
    upto         INTEGER NOT NULL,
    base         BLOB NOT NULL,
    file_version INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE TABLE room_updates (
    file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    body    BLOB NOT NULL,
    PRIMARY KEY (file_id, seq)
);
