//! The orphan sweep: removes blobs no file references and uploads that never finished.

use std::collections::HashSet;

use crate::ports::{BlobError, DbError};
use crate::{stmt, App};

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub orphans_removed: usize,
    pub pending_removed: usize,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Removes what is older than the configured grace period and referenced by no file row.
///
/// The grace period protects an upload between its blob commit and its row insert.
pub async fn sweep_orphans(app: &App) -> Result<SweepReport, SweepError> {
    let cutoff = app.now_ms() - app.config.orphan_grace_secs * 1000;
    let blobs = app.ports.blobs.list().await?;
    let referenced: HashSet<String> = app
        .ports
        .meta
        .query(stmt!(
            "SELECT DISTINCT blob_key FROM files WHERE blob_key IS NOT NULL"
        ))
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect();
    let mut report = SweepReport::default();
    for entry in blobs.iter().filter(|e| e.modified_ms <= cutoff) {
        if entry.pending {
            app.ports.blobs.delete(&entry.key, true).await?;
            report.pending_removed += 1;
        } else if !referenced.contains(&entry.key) {
            app.ports.blobs.delete(&entry.key, false).await?;
            report.orphans_removed += 1;
        }
    }
    if report != SweepReport::default() {
        tracing::info!(?report, "orphan sweep");
    }
    Ok(report)
}
