-- The host uid a user's sandbox processes run as (when the server runs as root) is
-- allocated, one per user, not hashed: no two users ever share one. The uid is the base
-- (cloudos_proto::terminal::SANDBOX_UID_BASE) plus the slot.
CREATE TABLE sandbox_uids (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    slot    INTEGER NOT NULL UNIQUE
);
