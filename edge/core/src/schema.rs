//! Schema migrations from `schema/`, applied in order by every host at start.

use crate::ports::{DbError, MetaStore};
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
    Migration {
        version: 4,
        name: "0004_sandboxes",
        sql: include_str!("../../../schema/0004_sandboxes.sql"),
    },
    Migration {
        version: 5,
        name: "0005_login_throttle",
        sql: include_str!("../../../schema/0005_login_throttle.sql"),
    },
    Migration {
        version: 6,
        name: "0006_sessions",
        sql: include_str!("../../../schema/0006_sessions.sql"),
    },
    Migration {
        version: 7,
        name: "0007_shares",
        sql: include_str!("../../../schema/0007_shares.sql"),
    },
    Migration {
        version: 8,
        name: "0008_client_throttle",
        sql: include_str!("../../../schema/0008_client_throttle.sql"),
    },
    Migration {
        version: 9,
        name: "0009_sandbox_uids",
        sql: include_str!("../../../schema/0009_sandbox_uids.sql"),
    },
    Migration {
        version: 10,
        name: "0010_rooms",
        sql: include_str!("../../../schema/0010_rooms.sql"),
    },
    Migration {
        version: 11,
        name: "0011_rooms_and_links",
        sql: include_str!("../../../schema/0011_rooms_and_links.sql"),
    },
    Migration {
        version: 12,
        name: "0012_locks",
        sql: include_str!("../../../schema/0012_locks.sql"),
    },
    Migration {
        version: 13,
        name: "0013_link_passwords",
        sql: include_str!("../../../schema/0013_link_passwords.sql"),
    },
    Migration {
        version: 14,
        name: "0014_history_and_trash",
        sql: include_str!("../../../schema/0014_history_and_trash.sql"),
    },
    Migration {
        version: 15,
        name: "0015_sync",
        sql: include_str!("../../../schema/0015_sync.sql"),
    },
];

/// The versions recorded in `schema_migrations`.
async fn applied_versions(meta: &dyn MetaStore) -> Result<Vec<i64>, DbError> {
    Ok(meta
        .query(stmt!("SELECT version FROM schema_migrations"))
        .await?
        .iter()
        .map(|r| r.int(0))
        .collect())
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
    let done = applied_versions(meta).await?;
    let mut applied = Vec::new();
    for m in set.iter().filter(|m| !done.contains(&m.version)) {
        // The record goes in the same transaction as the migration: a failed one leaves the
        // database as it was. Version and name are this build's constants, not input.
        let script = format!(
            "{}\n;\nINSERT INTO schema_migrations (version, name, applied_at) VALUES ({}, '{}', {});",
            m.sql, m.version, m.name, now_ms
        );
        if let Err(e) = meta.run_script(&script).await {
            // Several processes (or Worker isolates) may start on a new database at once:
            // if another one applied this migration meanwhile, that is success, not an error.
            if applied_versions(meta).await?.contains(&m.version) {
                continue;
            }
            return Err(e);
        }
        tracing::info!(version = m.version, name = m.name, "applied migration");
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Stmt;

    #[test]
    fn every_migration_has_statements_and_ordered_versions() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            assert!(m.sql.contains(';'), "{} has statements", m.name);
            assert!(!m.name.contains('\''), "names are quoted into SQL");
        }
    }

    /// A database another process migrates between our read and our write.
    struct Overtaken {
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl MetaStore for Overtaken {
        async fn query(&self, _stmt: Stmt) -> Result<Vec<crate::ports::Row>, DbError> {
            use crate::ports::{Row, Value};
            let first = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            Ok(if first {
                vec![]
            } else {
                vec![Row(vec![Value::Integer(1)])]
            })
        }
        async fn execute(&self, _stmt: Stmt) -> Result<u64, DbError> {
            Ok(0)
        }
        async fn batch(&self, _stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
            unreachable!("migrations run as scripts")
        }
        async fn run_script(&self, _sql: &str) -> Result<(), DbError> {
            Err(DbError::Other("table users already exists".into()))
        }
    }

    #[tokio::test]
    async fn a_migration_applied_meanwhile_by_another_process_is_not_an_error() {
        let meta = Overtaken {
            reads: Default::default(),
        };
        let applied = migrate(&meta, &MIGRATIONS[..1], 1).await.unwrap();
        assert!(applied.is_empty(), "the other process applied it");
        // Without that record, the failure is real and reported.
        let meta = Overtaken {
            reads: Default::default(),
        };
        assert!(migrate(&meta, &MIGRATIONS[..2], 1).await.is_err());
    }
}
