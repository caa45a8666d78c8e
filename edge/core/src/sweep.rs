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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes;
    use crate::ports::{Row, Value};

    #[tokio::test]
    async fn removes_only_old_unreferenced_blobs_and_old_pending_uploads() {
        let (app, blobs, meta) = fakes::app();
        let now = app.now_ms();
        let old = now - 2 * 3600 * 1000;
        {
            let mut b = blobs.blobs.lock().unwrap();
            b.insert("referenced".into(), (vec![1], old));
            b.insert("orphan".into(), (vec![2], old));
            b.insert("fresh-orphan".into(), (vec![3], now - 1000));
            let mut p = blobs.pending.lock().unwrap();
            p.insert("crashed".into(), (vec![4], old));
            p.insert("in-flight".into(), (vec![5], now));
        }
        meta.answers.lock().unwrap().push((
            "SELECT DISTINCT blob_key",
            vec![Row(vec![Value::Text("referenced".into())])],
        ));
        assert_eq!(app.config.orphan_grace_secs, 3600);
        let report = sweep_orphans(&app).await.unwrap();
        assert_eq!(
            report,
            SweepReport {
                orphans_removed: 1,
                pending_removed: 1
            }
        );
        let mut left: Vec<_> = blobs.blobs.lock().unwrap().keys().cloned().collect();
        left.sort();
        assert_eq!(left, ["fresh-orphan", "referenced"]);
        assert_eq!(
            blobs.pending.lock().unwrap().keys().collect::<Vec<_>>(),
            ["in-flight"]
        );
    }
}
