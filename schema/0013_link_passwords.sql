-- A link may ask for a password before it opens anything (argon2id, as account passwords).
ALTER TABLE shares ADD COLUMN password_hash TEXT;
