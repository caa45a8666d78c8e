//! The metadata port over an embedded libSQL database file.

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use cloudos_core::ports::{DbError, MetaStore, Row, Stmt, Value};
use libsql::{Connection, Database, TransactionBehavior};

/// Embedded libSQL with a small pool of connections (SQLite connections are not shareable
/// across concurrent transactions).
pub struct LibsqlMeta {
    db: Database,
    pool: Mutex<Vec<Connection>>,
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
            pool: Mutex::new(Vec::new()),
        };
        let conn = meta.conn().await?;
        // journal_mode answers with a row, so it is a query.
        conn.query("PRAGMA journal_mode = WAL", ())
            .await
            .map_err(classify)?;
        meta.give_back(conn);
        Ok(meta)
    }

    async fn conn(&self) -> Result<Connection, DbError> {
        if let Some(c) = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        let conn = self.db.connect().map_err(classify)?;
        conn.query("PRAGMA busy_timeout = 10000", ())
            .await
            .map_err(classify)?;
        conn.execute("PRAGMA synchronous = NORMAL", ())
            .await
            .map_err(classify)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 16 {
            pool.push(conn);
        }
    }
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
        let conn = self.conn().await?;
        let res = run_query(&conn, stmt).await;
        self.give_back(conn);
        res
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, DbError> {
        let conn = self.conn().await?;
        let (sql, params) = params(stmt);
        let res = conn.execute(&sql, params).await.map_err(classify);
        self.give_back(conn);
        res
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
        let conn = self.conn().await?;
        let res = async {
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
        .await;
        self.give_back(conn);
        res
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
