// `cloudos db serve` as seen by the official TypeScript client, @libsql/client (HTTP, Hrana v3).
// Run by tests/tests/hrana.rs with HRANA_URL and HRANA_TOKEN; exits non-zero on the first
// failed assertion.
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";

const url = process.env.HRANA_URL;
const authToken = process.env.HRANA_TOKEN;
const db = createClient({ url, authToken });

// Statements, positional and named arguments, column names, changes and rowids.
await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE, body BLOB, score REAL)");
const ins = await db.execute({ sql: "INSERT INTO notes (title, body, score) VALUES (?, ?, ?)", args: ["first", new Uint8Array([0, 1, 255]), 1.5] });
assert.equal(ins.rowsAffected, 1);
assert.equal(ins.lastInsertRowid, 1n);
await db.execute({ sql: "INSERT INTO notes (title, score) VALUES (:title, $score)", args: { title: "second", score: 2 } });
const rs = await db.execute("SELECT id, title, body, score FROM notes ORDER BY id");
assert.deepEqual(rs.columns, ["id", "title", "body", "score"]);
assert.equal(rs.rows.length, 2);
assert.equal(rs.rows[0].title, "first");
assert.deepEqual([...new Uint8Array(rs.rows[0].body)], [0, 1, 255]);
assert.equal(rs.rows[1].score, 2);
assert.equal(rs.rows[1].body, null);
assert.equal((await db.execute("SELECT count(*) AS n FROM notes")).rowsAffected, 0, "a read changes nothing");

// A constraint violation is a LibsqlError with SQLite's code, and the table is unchanged.
await assert.rejects(
  db.execute({ sql: "INSERT INTO notes (title) VALUES (?)", args: ["first"] }),
  (e) => e.code === "SQLITE_CONSTRAINT" && /UNIQUE/.test(e.message),
);

// A batch (the v3 cursor) runs in one transaction: all or nothing.
const results = await db.batch([
  { sql: "INSERT INTO notes (title) VALUES (?)", args: ["third"] },
  "SELECT title FROM notes ORDER BY id",
], "write");
assert.equal(results.length, 2);
assert.deepEqual(results[1].rows.map((r) => r.title), ["first", "second", "third"]);
await assert.rejects(db.batch([
  { sql: "INSERT INTO notes (title) VALUES (?)", args: ["fourth"] },
  { sql: "INSERT INTO notes (title) VALUES (?)", args: ["first"] },
], "write"));
const count = async () => Number((await db.execute("SELECT count(*) AS n FROM notes")).rows[0].n);
assert.equal(await count(), 3, "the failed batch left nothing behind");

// An interactive transaction keeps its stream (baton) across requests.
const tx = await db.transaction("write");
await tx.execute({ sql: "INSERT INTO notes (title) VALUES (?)", args: ["in tx"] });
assert.equal(Number((await tx.execute("SELECT count(*) AS n FROM notes")).rows[0].n), 4);
await tx.rollback();
assert.equal(await count(), 3, "a rolled-back transaction leaves nothing");
const tx2 = await db.transaction("write");
await tx2.execute({ sql: "INSERT INTO notes (title) VALUES (?)", args: ["kept"] });
await tx2.commit();
assert.equal(await count(), 4);

// Several statements in one go (a Hrana sequence).
await db.executeMultiple("CREATE TABLE tags (name TEXT); INSERT INTO tags VALUES ('a'); INSERT INTO tags VALUES ('b');");
assert.equal(Number((await db.execute("SELECT count(*) AS n FROM tags")).rows[0].n), 2);
db.close();

// A wrong token is refused.
const intruder = createClient({ url, authToken: "not-the-token" });
await assert.rejects(intruder.execute("SELECT 1"));
intruder.close();
console.log("official client: all assertions passed");
