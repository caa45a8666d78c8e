//! The sweep: ends Trash entries past their time, thins old versions by the retention rule,
//! and removes blobs no version references and uploads that never finished.

use std::collections::HashSet;

use crate::ports::{BlobError, DbError, Stmt, Value};
use crate::{stmt, App};

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub orphans_removed: usize,
    pub pending_removed: usize,
    /// Trash entries removed for good.
    pub trash_expired: u64,
    /// Old versions removed by the retention rule.
    pub versions_pruned: u64,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
}

/// The whole sweep, in the order that frees the most: what the Trash and the retention rule
/// let go of is removed first, so the orphan pass that follows takes its bytes too (once
/// they are older than the grace period).
pub async fn sweep(app: &App) -> Result<SweepReport, SweepError> {
    let trash_expired = crate::files::trash::expire(app).await?;
    let versions_pruned = crate::files::history::prune(app).await?;
    if trash_expired + versions_pruned > 0 {
        tracing::info!(trash_expired, versions_pruned, "swept history");
    }
    Ok(SweepReport {
        trash_expired,
        versions_pruned,
        ..sweep_orphans(app).await?
    })
}

/// Removes what is older than the configured grace period and referenced by no file row.
///
/// The grace period protects an upload between its blob commit and its row insert. The
/// store is walked page by page; a page's old blobs are looked up in one query, and each
/// candidate is looked up once more immediately before it is deleted, so a row written
/// while the sweep ran keeps its blob.
pub async fn sweep_orphans(app: &App) -> Result<SweepReport, SweepError> {
    let cutoff = app.now_ms() - app.config.orphan_grace_secs * 1000;
    let mut report = SweepReport::default();
    for pending in [false, true] {
        let mut cursor = None;
        loop {
            let page = app.ports.blobs.list_page(pending, cursor).await?;
            let old: Vec<&str> = page
                .entries
                .iter()
                .filter(|e| e.modified_ms <= cutoff)
                .map(|e| e.key.as_str())
                .collect();
            if pending {
                for key in old {
                    app.ports.blobs.delete(key, true).await?;
                    report.pending_removed += 1;
                }
            } else {
                let referenced = referenced(app, &old).await?;
                for key in old.into_iter().filter(|k| !referenced.contains(*k)) {
                    if still_referenced(app, key).await? {
                        continue;
                    }
                    app.ports.blobs.delete(key, false).await?;
                    report.orphans_removed += 1;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if report != SweepReport::default() {
        tracing::info!(
            orphans_removed = report.orphans_removed,
            pending_removed = report.pending_removed,
            "swept orphans"
        );
    }
    Ok(report)
}

/// Keys looked up per query: well under SQLite's limit on bound parameters, whatever a
/// store's page size.
const KEYS_PER_QUERY: usize = 500;

/// Which of `keys` some file or kept version points at.
async fn referenced(app: &App, keys: &[&str]) -> Result<HashSet<String>, DbError> {
    let mut found = HashSet::new();
    for chunk in keys.chunks(KEYS_PER_QUERY / 2) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params = chunk
            .iter()
            .chain(chunk.iter())
            .map(|k| Value::from(*k))
            .collect();
        let rows = app
            .ports
            .meta
            .query(Stmt::new(
                format!(
                    "SELECT blob_key FROM files WHERE blob_key IN ({marks})
                     UNION SELECT blob_key FROM file_versions WHERE blob_key IN ({marks})"
                ),
                params,
            ))
            .await?;
        found.extend(rows.iter().map(|r| r.text(0)));
    }
    Ok(found)
}

async fn still_referenced(app: &App, key: &str) -> Result<bool, DbError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT 1 FROM files WHERE blob_key = ?
             UNION ALL SELECT 1 FROM file_versions WHERE blob_key = ? LIMIT 1",
            key,
            key
        ))
        .await?;
    Ok(!rows.is_empty())
}
