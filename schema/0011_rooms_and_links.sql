-- Which files' live rooms a link was used to join: when the link is revoked, the sockets
-- opened through it in those rooms are closed (a folder's link reaches rooms of the files
-- below it, which the revocation could not otherwise name).
CREATE TABLE share_rooms (
    share_id TEXT NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
    file_id  TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    PRIMARY KEY (share_id, file_id)
);

-- Files whose live room is open on some host, so a save made without the room (the API,
-- later the copilot or a sandbox) reaches the room at once instead of at its next
-- checkpoint. A host that dies leaves its rows; a notice to a room that is not open does
-- nothing.
CREATE TABLE live_rooms (
    file_id TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    since   INTEGER NOT NULL
);
