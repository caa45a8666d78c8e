-- Every version of every file, and a Trash.
--
-- A file row says who made its current version and how (`origin`, `author_ids`: user ids
-- separated by spaces); triggers copy each version into `file_versions` in the statement that
-- makes it, so no path that writes content can forget its history. The current version is
-- there too, and quota counts the sizes of all versions, old and current, trashed or not.
ALTER TABLE files ADD COLUMN origin TEXT NOT NULL DEFAULT 'upload';
ALTER TABLE files ADD COLUMN author_ids TEXT;
-- A deleted item and everything under it carry the time it was deleted and the id of the
-- item the user deleted (`trash_root`); the deleted item keeps its parent, to go back there.
ALTER TABLE files ADD COLUMN trashed_at INTEGER;
ALTER TABLE files ADD COLUMN trash_root TEXT;

CREATE TABLE file_versions (
    file_id    TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    size       INTEGER NOT NULL,
    mime       TEXT,
    blob_key   TEXT,
    checksum   TEXT,
    origin     TEXT NOT NULL,
    author_ids TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (file_id, version)
);
CREATE INDEX file_versions_by_user ON file_versions (user_id);
CREATE INDEX file_versions_by_blob ON file_versions (blob_key);

INSERT INTO file_versions (file_id, version, user_id, size, mime, blob_key, checksum, origin,
                           author_ids, created_at)
    SELECT id, version, user_id, size, mime, blob_key, checksum, 'upload', user_id, updated_at
    FROM files WHERE kind = 'file';

CREATE TRIGGER files_first_version AFTER INSERT ON files WHEN NEW.kind = 'file'
BEGIN
    INSERT INTO file_versions (file_id, version, user_id, size, mime, blob_key, checksum,
                               origin, author_ids, created_at)
    VALUES (NEW.id, NEW.version, NEW.user_id, NEW.size, NEW.mime, NEW.blob_key, NEW.checksum,
            NEW.origin, COALESCE(NEW.author_ids, NEW.user_id), NEW.updated_at);
END;

CREATE TRIGGER files_next_version AFTER UPDATE OF version ON files
WHEN NEW.kind = 'file' AND NEW.version <> OLD.version
BEGIN
    INSERT OR REPLACE INTO file_versions (file_id, version, user_id, size, mime, blob_key,
                                          checksum, origin, author_ids, created_at)
    VALUES (NEW.id, NEW.version, NEW.user_id, NEW.size, NEW.mime, NEW.blob_key, NEW.checksum,
            NEW.origin, COALESCE(NEW.author_ids, NEW.user_id), NEW.updated_at);
END;

-- Names are unique among what is not in the Trash: a deleted "a.txt" leaves room for a new one.
DROP INDEX files_unique_name;
CREATE UNIQUE INDEX files_unique_name ON files (user_id, COALESCE(parent_id, ''), name)
    WHERE trashed_at IS NULL;
CREATE INDEX files_in_trash ON files (user_id, trash_root) WHERE trash_root IS NOT NULL;
-- The old unique index was also the one on `user_id` alone (counts, sums, cascades).
CREATE INDEX files_by_user ON files (user_id);
-- For the sweep: Trash entries by age, versions by age.
CREATE INDEX files_trash_roots ON files (trashed_at) WHERE trash_root = id;
CREATE INDEX file_versions_by_time ON file_versions (created_at);
