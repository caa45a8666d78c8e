-- The sandbox sync: a file's executable bit is part of it (a script made executable in the
-- terminal stays so after a round trip through the drive). Not versioned: like a name, it
-- belongs to the file, not to one content.
ALTER TABLE files ADD COLUMN executable INTEGER NOT NULL DEFAULT 0;
