// `cloudos db serve` through @libsql/hrana-client, the official TypeScript Hrana client, with
// protocol v3 forced: version discovery, the cursor, conditional batches, stored SQL,
// describe, sequences and autocommit. (@libsql/client itself speaks v2 over HTTP.)
// Run by tests/tests/hrana.rs with HRANA_URL and HRANA_TOKEN.
import assert from "node:assert/strict";
import * as hrana from "@libsql/hrana-client";

const client = hrana.openHttp(process.env.HRANA_URL, process.env.HRANA_TOKEN, undefined, undefined, 3);
assert.equal(await client.getVersion(), 3, "the server offers v3 (JSON)");
const stream = client.openStream();

await stream.run("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)");
const put = await stream.run(new hrana.Stmt("INSERT INTO kv VALUES (?, ?)").bindIndexes(["a", 1]));
assert.equal(put.affectedRowCount, 1);
assert.equal(put.lastInsertRowid, 1n);

// A batch over the cursor: a step runs only if its condition holds.
const batch = stream.batch(true);
const [s0, s1, s2, s3] = [batch.step(), batch.step(), batch.step(), batch.step()];
const ok = s0.run(new hrana.Stmt("INSERT INTO kv VALUES (?, ?)").bindIndexes(["b", 2]));
const dup = s1.condition(hrana.BatchCond.ok(s0)).run(new hrana.Stmt("INSERT INTO kv VALUES ('a', 9)"));
const onError = s2.condition(hrana.BatchCond.error(s1)).query("SELECT k, v FROM kv ORDER BY k");
const skipped = s3.condition(hrana.BatchCond.not(hrana.BatchCond.error(s1))).run("DELETE FROM kv");
const dupSeen = dup.catch((e) => e);
await batch.execute();
assert.equal((await ok).affectedRowCount, 1);
assert.equal((await ok).lastInsertRowid, 2n);
assert.match(String((await dupSeen).message), /UNIQUE/);
assert.deepEqual((await onError).rows.map((r) => [r.k, r.v]), [["a", 1], ["b", 2]]);
assert.equal(await skipped, undefined, "a step whose condition fails does not run");

// SQL stored once on the stream, used by id.
const stored = stream.storeSql("SELECT v FROM kv WHERE k = ?");
assert.equal((await stream.queryValue(new hrana.Stmt(stored).bindIndexes(["b"]))).value, 2);
stored.close();

// Describe: parameters and columns without running.
const d = await stream.describe("SELECT k, v FROM kv WHERE v > :min");
assert.deepEqual(d.paramNames, [":min"]);
assert.deepEqual(d.columns.map((c) => c.name), ["k", "v"]);
assert.equal(d.isReadonly, true);

// A sequence, and autocommit seen from inside a transaction on the same stream (batons).
await stream.sequence("BEGIN; INSERT INTO kv VALUES ('c', 3);");
assert.equal(await stream.getAutocommit(), false);
await stream.run("ROLLBACK");
assert.equal(await stream.getAutocommit(), true);
assert.equal((await stream.queryValue("SELECT count(*) FROM kv")).value, 2);

stream.close();
client.close();
console.log("protocol v3: all assertions passed");
