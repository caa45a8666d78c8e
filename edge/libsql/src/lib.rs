//! The metadata port over embedded libSQL: a database file for the native server, or a
//! private in-memory database for tests of the core's rules.
#![forbid(unsafe_code)]

use std::ops::Deref;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use cloudos_core::ports::{DbError, MetaStore, Row, Stmt, Value};
use libsql::{Connection, Database, TransactionBehavior};

/// Embedded libSQL with a small pool of connections (SQLite connections are not shareable
/// across concurrent transactions).
pub struct LibsqlMeta {
    db: Database,
    connections: Connections,
    /// Writers take turns here rather than in SQLite: a second writer on another connection
    /// would wait in SQLite's busy handler, which sleeps (1 ms up to 100 ms at a time) on
    /// the async runtime's thread, so a burst of writes (200 live rooms logging edits)
    /// stalled unrelated requests for tens of milliseconds. A queue here wakes each writer
    /// the moment the previous one commits. Readers never wait for it (WAL).
    writing: tokio::sync::Mutex<()>,
}

enum Connections {
    /// A file: connections are opened on demand and up to 16 are kept.
    Pool(Mutex<Vec<Connection>>),
    /// `:memory:`: every connection would be a database of its own, so there is exactly one
    /// and statements take turns on it.
    Single(tokio::sync::Mutex<Connection>),
}

/// A connection borrowed for one statement or transaction.
enum Lease<'a> {
    Pooled(&'a Mutex<Vec<Connection>>, Option<Connection>),
    Single(tokio::sync::MutexGuard<'a, Connection>),
}

impl Deref for Lease<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Lease::Pooled(_, conn) => conn.as_ref().expect("held until dropped"),
            Lease::Single(guard) => guard,
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Lease::Pooled(pool, conn) = self {
            let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < 16 {
                pool.extend(conn.take());
            }
        }
    }
}

impl LibsqlMeta {
    /// Opens (or creates) the database file in WAL mode.
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let db = libsql::Builder::new_local(path)
            .build()
            .await
            .map_err(classify)?;
        let meta = LibsqlMeta {
            db,
            connections: Connections::Pool(Mutex::new(Vec::new())),
            writing: tokio::sync::Mutex::new(()),
        };
        // journal_mode answers with a row, so it is a query.
        meta.lease()
            .await?
            .query("PRAGMA journal_mode = WAL", ())
            .await
            .map_err(classify)?;
        Ok(meta)
    }

    /// A new, empty database that lives in memory and vanishes when dropped.
    pub async fn memory() -> Result<Self, DbError> {
        let db = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .map_err(classify)?;
        let conn = connect(&db).await?;
        Ok(LibsqlMeta {
            db,
            connections: Connections::Single(tokio::sync::Mutex::new(conn)),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    async fn lease(&self) -> Result<Lease<'_>, DbError> {
        match &self.connections {
            Connections::Single(conn) => Ok(Lease::Single(conn.lock().await)),
            Connections::Pool(pool) => {
                let idle = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let conn = match idle {
                    Some(c) => c,
                    None => connect(&self.db).await?,
                };
                Ok(Lease::Pooled(pool, Some(conn)))
            }
        }
    }
}

/// A new connection with the settings every statement relies on.
async fn connect(db: &Database) -> Result<Connection, DbError> {
    let conn = db.connect().map_err(classify)?;
    conn.query("PRAGMA busy_timeout = 10000", ())
        .await
        .map_err(classify)?;
    conn.execute("PRAGMA synchronous = NORMAL", ())
        .await
        .map_err(classify)?;
    // The schema's REFERENCES clauses are the last line of defence against rows that point
    // at nothing (a file whose folder was deleted a moment earlier); SQLite leaves them
    // unchecked unless told, whatever the build's default.
    conn.execute("PRAGMA foreign_keys = ON", ())
        .await
        .map_err(classify)?;
    Ok(conn)
}

/// Whether a statement only reads (a plain `SELECT`): anything else takes the writers' turn.
fn is_read(sql: &str) -> bool {
    let sql = sql.trim_start();
    sql.get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("select"))
        && !sql.to_ascii_lowercase().contains("returning")
}

fn classify(e: libsql::Error) -> DbError {
    let text = e.to_string();
    let constraint = match &e {
        libsql::Error::SqliteFailure(code, _) => code & 0xff == 19,
        _ => false,
    } || text.contains("constraint failed");
    if constraint {
        DbError::Constraint(text)
    } else {
        DbError::Other(text)
    }
}

fn to_libsql(v: Value) -> libsql::Value {
    match v {
        Value::Null => libsql::Value::Null,
        Value::Integer(i) => libsql::Value::Integer(i),
        Value::Real(f) => libsql::Value::Real(f),
        Value::Text(t) => libsql::Value::Text(t),
        Value::Blob(b) => libsql::Value::Blob(b),
    }
}

fn from_libsql(v: libsql::Value) -> Value {
    match v {
        libsql::Value::Null => Value::Null,
        libsql::Value::Integer(i) => Value::Integer(i),
        libsql::Value::Real(f) => Value::Real(f),
        libsql::Value::Text(t) => Value::Text(t),
        libsql::Value::Blob(b) => Value::Blob(b),
    }
}

fn params(stmt: Stmt) -> (String, libsql::params::Params) {
    let values: Vec<libsql::Value> = stmt.params.into_iter().map(to_libsql).collect();
    (stmt.sql, libsql::params::Params::Positional(values))
}

async fn run_query(conn: &Connection, stmt: Stmt) -> Result<Vec<Row>, DbError> {
    let (sql, params) = params(stmt);
    let mut rows = conn.query(&sql, params).await.map_err(classify)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(classify)? {
        let n = row.column_count();
        let mut values = Vec::with_capacity(n as usize);
        for i in 0..n {
            values.push(from_libsql(row.get_value(i).map_err(classify)?));
        }
        out.push(Row(values));
    }
    Ok(out)
}

#[async_trait]
impl MetaStore for LibsqlMeta {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        // `INSERT … RETURNING` and the like write through `query` too.
        let _turn = match is_read(&stmt.sql) {
            true => None,
            false => Some(self.writing.lock().await),
        };
        run_query(&*self.lease().await?, stmt).await
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, DbError> {
        let _turn = self.writing.lock().await;
        let conn = self.lease().await?;
        let (sql, params) = params(stmt);
        conn.execute(&sql, params).await.map_err(classify)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
        let _turn = self.writing.lock().await;
        let conn = self.lease().await?;
        async {
            // IMMEDIATE takes the write lock up front, so busy_timeout applies instead of
            // a deadlock error on lock upgrade.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .await
                .map_err(classify)?;
            let mut changed = Vec::with_capacity(stmts.len());
            for stmt in stmts {
                let (sql, params) = params(stmt);
                match tx.execute(&sql, params).await {
                    Ok(n) => changed.push(n),
                    Err(e) => {
                        let _ = tx.rollback().await;
                        return Err(classify(e));
                    }
                }
            }
            tx.commit().await.map_err(classify)?;
            Ok(changed)
        }
        .await
    }

    async fn run_script(&self, sql: &str) -> Result<(), DbError> {
        let _turn = self.writing.lock().await;
        let conn = self.lease().await?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .await
            .map_err(classify)?;
        // SQLite's own parser finds each statement's end (sqlite3_prepare's tail).
        if let Err(e) = tx.execute_batch(sql).await {
            let _ = tx.rollback().await;
            return Err(classify(e));
        }
        tx.commit().await.map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudos_core::stmt;

    #[tokio::test]
    async fn batch_is_all_or_nothing_and_constraints_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let meta = LibsqlMeta::open(&dir.path().join("t.db")).await.unwrap();
        meta.execute(stmt!("CREATE TABLE t (k TEXT PRIMARY KEY)"))
            .await
            .unwrap();
        meta.execute(stmt!("INSERT INTO t VALUES (?)", "a"))
            .await
            .unwrap();
        let err = meta
            .batch(vec![
                stmt!("INSERT INTO t VALUES (?)", "b"),
                stmt!("INSERT INTO t VALUES (?)", "a"),
            ])
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Constraint(_)), "{err:?}");
        let rows = meta
            .query(stmt!("SELECT k FROM t ORDER BY k"))
            .await
            .unwrap();
        assert_eq!(rows, vec![Row(vec![Value::Text("a".into())])]);
        let syntax = meta.execute(stmt!("NOT SQL")).await.unwrap_err();
        assert!(matches!(syntax, DbError::Other(_)));
    }

    #[test]
    fn only_plain_selects_skip_the_writers_turn() {
        assert!(is_read("  select id FROM files"));
        assert!(!is_read("INSERT INTO t VALUES (1)"));
        assert!(!is_read("UPDATE t SET a = 1 RETURNING a"));
        assert!(!is_read("WITH x AS (SELECT 1) DELETE FROM t"));
        assert!(!is_read("PRAGMA journal_mode = WAL"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_at_once_take_turns_and_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::sync::Arc::new(LibsqlMeta::open(&dir.path().join("t.db")).await.unwrap());
        meta.execute(stmt!("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
            .await
            .unwrap();
        let writers: Vec<_> = (0..32i64)
            .map(|i| {
                let meta = meta.clone();
                tokio::spawn(async move {
                    meta.batch(vec![
                        stmt!("INSERT INTO t VALUES (?)", 2 * i),
                        stmt!("INSERT INTO t VALUES (?)", 2 * i + 1),
                    ])
                    .await
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        let rows = meta.query(stmt!("SELECT count(*) FROM t")).await.unwrap();
        assert_eq!(rows[0].int(0), 64);
    }

    #[tokio::test]
    async fn a_memory_database_is_one_database_for_every_statement_and_enforces_foreign_keys() {
        let meta = LibsqlMeta::memory().await.unwrap();
        meta.execute(stmt!("CREATE TABLE p (id TEXT PRIMARY KEY)"))
            .await
            .unwrap();
        meta.execute(stmt!(
            "CREATE TABLE c (id TEXT PRIMARY KEY, p TEXT REFERENCES p(id))"
        ))
        .await
        .unwrap();
        // Statements at once take turns on the one connection; each sees the same tables.
        let (a, b) = tokio::join!(
            meta.execute(stmt!("INSERT INTO p VALUES ('a')")),
            meta.batch(vec![stmt!("INSERT INTO p VALUES ('b')")])
        );
        a.unwrap();
        b.unwrap();
        let err = meta
            .execute(stmt!("INSERT INTO c VALUES ('c1', 'missing')"))
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Constraint(_)), "{err:?}");
        assert_eq!(
            meta.query(stmt!("SELECT id FROM p")).await.unwrap().len(),
            2
        );
        let other = LibsqlMeta::memory().await.unwrap();
        assert!(
            other.query(stmt!("SELECT 1 FROM p")).await.is_err(),
            "private"
        );
    }

    #[tokio::test]
    async fn a_script_is_split_by_sqlite_and_applies_all_or_nothing() {
        let meta = LibsqlMeta::memory().await.unwrap();
        let script = "
            CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, edits INTEGER DEFAULT 0);
            -- a comment; with a semicolon
            CREATE TRIGGER count_edits AFTER UPDATE OF body ON notes BEGIN
                UPDATE notes SET edits = edits + 1 WHERE id = NEW.id;
            END;
            INSERT INTO notes (body) VALUES ('a; b');
        ";
        meta.run_script(script).await.unwrap();
        meta.execute(stmt!("UPDATE notes SET body = 'c' WHERE id = 1"))
            .await
            .unwrap();
        let rows = meta
            .query(stmt!("SELECT body, edits FROM notes"))
            .await
            .unwrap();
        assert_eq!(
            (rows[0].text(0), rows[0].int(1)),
            ("c".into(), 1),
            "the trigger ran"
        );
        let broken = "CREATE TABLE later (x); INSERT INTO nowhere VALUES (1);";
        assert!(meta.run_script(broken).await.is_err());
        assert!(
            meta.query(stmt!("SELECT 1 FROM later")).await.is_err(),
            "the whole script was rolled back"
        );
    }

    #[tokio::test]
    async fn upgrades_a_database_made_by_an_earlier_migration_set() {
        use cloudos_core::schema::{migrate, MIGRATIONS};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let old = LibsqlMeta::open(&path).await.unwrap();
            assert_eq!(migrate(&old, &MIGRATIONS[..1], 1).await.unwrap(), vec![1]);
            old.execute(stmt!(
                "INSERT INTO users (id, email, name, password_hash, created_at, quota_bytes) VALUES ('u1', 'a@b.co', 'A', 'h', 1, 10)"
            ))
            .await
            .unwrap();
            assert!(
                old.query(stmt!("SELECT 1 FROM shares")).await.is_err(),
                "0002 not applied yet"
            );
        }
        let meta = LibsqlMeta::open(&path).await.unwrap();
        let applied = migrate(&meta, MIGRATIONS, 2).await.unwrap();
        assert_eq!(applied, (2..=MIGRATIONS.len() as i64).collect::<Vec<_>>());
        let users = meta
            .query(stmt!("SELECT email FROM users WHERE id = 'u1'"))
            .await
            .unwrap();
        assert_eq!(users[0].text(0), "a@b.co", "data survives the upgrade");
        assert!(meta
            .query(stmt!("SELECT 1 FROM shares"))
            .await
            .unwrap()
            .is_empty());
        let recorded = meta
            .query(stmt!(
                "SELECT version FROM schema_migrations ORDER BY version"
            ))
            .await
            .unwrap();
        assert_eq!(recorded.len(), MIGRATIONS.len());
        assert!(
            migrate(&meta, MIGRATIONS, 3).await.unwrap().is_empty(),
            "idempotent"
        );
    }
}
