-- The desktop: each user's window layout, and typed notifications.
CREATE TABLE desktop_layouts (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    layout     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

ALTER TABLE notifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'info';
ALTER TABLE notifications ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN file_id TEXT;
