-- The host uid a user's sandbox processes run as (when the server runs as root) is
-- allocated, one per user, not hashed: no two users ever share one. The uid is the base
-- (cloudos_proto::terminal::SANDBOX_UID_BASE) plus the slot. A row outlives its user (no
-- foreign key), so a slot, and the files its uid owns, never pass to someone else.
CREATE TABLE sandbox_uids (
    user_id TEXT PRIMARY KEY,
    slot    INTEGER NOT NULL UNIQUE
);
