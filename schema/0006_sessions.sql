-- Logout revokes every token of the user: tokens carry the generation they were issued in.
ALTER TABLE users ADD COLUMN token_gen INTEGER NOT NULL DEFAULT 0;

-- Single-use tickets for opening one WebSocket, by the SHA-256 of the ticket.
CREATE TABLE ws_tickets (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ws_tickets_by_expiry ON ws_tickets (expires_at);
