//! Schema migrations from `schema/`, applied in order by every host at start.

use crate::ports::{DbError, MetaStore, Stmt};
use crate::stmt;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration of this build, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../../../schema/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_platform",
        sql: include_str!("../../../schema/0002_platform.sql"),
    },
    Migration {
        version: 3,
        name: "0003_desktop",
        sql: include_str!("../../../schema/0003_desktop.sql"),
    },
];

/// Splits a migration into statements: `--` comments dropped, `;` at a line end closes one.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let line = match line.find("--") {
            Some(i) => &line[..i],
            None => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(std::mem::take(&mut current).trim().to_owned());
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// Applies the migrations of `set` that the database has not recorded; returns their versions.
pub async fn migrate(
    meta: &dyn MetaStore,
    set: &[Migration],
    now_ms: i64,
) -> Result<Vec<i64>, DbError> {
    meta.execute(stmt!(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    ))
    .await?;
    let done: Vec<i64> = meta
        .query(stmt!("SELECT version FROM schema_migrations"))
        .await?
        .iter()
        .map(|r| r.int(0))
        .collect();
    let mut applied = Vec::new();
    for m in set.iter().filter(|m| !done.contains(&m.version)) {
        let mut batch: Vec<Stmt> = statements(m.sql)
            .into_iter()
            .map(|s| Stmt::new(s, vec![]))
            .collect();
        batch.push(stmt!(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            m.version,
            m.name,
            now_ms
        ));
        // One transaction per migration: a failed one leaves the database as it was.
        meta.batch(batch).await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_drops_comments() {
        let s = statements(
            "-- c\nCREATE TABLE a (x INTEGER); -- tail\n\nCREATE INDEX i\n  ON a (x);\n",
        );
        assert_eq!(
            s,
            vec!["CREATE TABLE a (x INTEGER);", "CREATE INDEX i\n  ON a (x);"]
        );
    }

    #[test]
    fn every_migration_has_statements_and_ordered_versions() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            assert!(!statements(m.sql).is_empty());
        }
    }
}
