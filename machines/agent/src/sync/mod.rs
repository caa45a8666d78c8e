//! The home is the drive: the agent keeps the user's home in this sandbox and their drive
//! in step, both ways, from outside the sandbox's view (its processes never see the token).
//!
//! A pass fetches the drive's tree, scans the home, plans with [`plan::plan`] against what
//! both sides agreed on last time (kept in the agent's state, outside the home) and runs
//! the plan, until nothing is left to do. Passes run at start (the reconcile), when the
//! home changes (file-system notifications, debounced), when the drive changes (the user's
//! event stream) and every half minute in case a notification was missed.

pub mod local;
pub mod plan;
pub mod remote;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloudos_proto::terminal::NoticeKind;
use cloudos_proto::{FileKind, PatchFile, SyncReport, SyncReportKind};
use futures_util::StreamExt;
use ignore::gitignore::Gitignore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::host::Terminals;
use local::{Home, Scanned};
use plan::{Action, Kind, Local, Remote, Synced};
use remote::{Drive, DriveError};

/// How long the home or the drive must be quiet before a pass starts (changes come in
/// bursts: an editor's save is a write and a rename, a build writes many files).
const QUIET: Duration = Duration::from_millis(100);
/// A burst never delays a pass longer than this.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// A pass runs at least this often, whatever was (or was not) notified.
const SAFETY_TICK: Duration = Duration::from_secs(30);
/// Rounds of plan-and-run in one pass at most (most passes need one; a file replaced by a
/// folder needs two; races with new changes may need another).
const MAX_ROUNDS: usize = 5;

/// Where the drive is and how to reach it as the sandbox's owner.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// The edge's API (`http://127.0.0.1:8080`).
    pub url: String,
    /// The sandbox's sync token.
    pub token: String,
}

/// What is kept between passes and across restarts of the agent.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// What both sides agreed on, by path.
    synced: BTreeMap<String, Synced>,
    /// Files the drive refused (the quota, a name), with the checksum refused: not tried
    /// again until they change.
    held: BTreeMap<String, Option<String>>,
    /// Folders deleted in the drive that stay in the home only for what stays local in
    /// them (a `node_modules`): not made again in the drive until something synced is put
    /// in them.
    #[serde(default)]
    kept: std::collections::BTreeSet<String>,
    /// What moved since the home was first synced (the agent's log says what each pass
    /// moved; a benchmark reads these).
    #[serde(default)]
    moved: Moved,
}

/// Files and bytes a sync moved each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub down_files: u64,
    pub down_bytes: u64,
    pub up_files: u64,
    pub up_bytes: u64,
}

/// Why a pass stopped early.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Drive(#[from] DriveError),
    #[error("the home: {0}")]
    Io(#[from] std::io::Error),
}

/// A handle to the running sync.
#[derive(Clone)]
pub struct Sync {
    flush: mpsc::Sender<oneshot::Sender<()>>,
}

impl Sync {
    /// Starts syncing `home` with the drive: a reconcile first, then on every change.
    pub fn start(
        home: Home,
        state_dir: &Path,
        settings: &SyncSettings,
        terminals: Arc<Terminals>,
    ) -> Self {
        let index_path = state_dir.join("sync-index.json");
        let index = std::fs::read(&index_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let (flush, flushes) = mpsc::channel(4);
        let syncer = Syncer {
            drive: Drive::new(&settings.url, &settings.token),
            ignores: Arc::new(RwLock::new(home.ignores())),
            home,
            index,
            index_path,
            terminals,
        };
        tokio::spawn(syncer.run(flushes));
        Sync { flush }
    }

    /// Runs one more pass (the sandbox is stopping: what the home changed last reaches
    /// the drive), waiting at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.flush.send(tx).await.is_ok() {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }
}

struct Syncer {
    home: Home,
    drive: Drive,
    index: Index,
    index_path: PathBuf,
    /// What stays local, as of the last pass (the watcher filters with it).
    ignores: Arc<RwLock<Gitignore>>,
    terminals: Arc<Terminals>,
}

impl Syncer {
    async fn run(mut self, mut flushes: mpsc::Receiver<oneshot::Sender<()>>) {
        let (tx, mut changes) = mpsc::unbounded_channel::<()>();
        let _watcher = match watch_home(&self.home.root, self.ignores.clone(), tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(error = %e, "the home cannot be watched: changes in it sync every {}s only", SAFETY_TICK.as_secs());
                None
            }
        };
        tokio::spawn(listen(self.drive.clone(), tx));
        let mut flushed: Option<oneshot::Sender<()>> = None;
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "sync pass stopped; trying again on the next change");
            }
            if let Some(done) = flushed.take() {
                let _ = done.send(());
            }
            tokio::select! {
                Some(()) = changes.recv() => {}
                Some(done) = flushes.recv() => { flushed = Some(done); continue; }
                _ = tokio::time::sleep(SAFETY_TICK) => {}
            }
            let start = tokio::time::Instant::now();
            while start.elapsed() < MAX_WAIT {
                match tokio::time::timeout(QUIET, changes.recv()).await {
                    Ok(Some(())) => continue,
                    _ => break,
                }
            }
        }
    }

    async fn pass(&mut self) -> Result<(), PassError> {
        let before = self.index.moved;
        let result = self.rounds().await;
        let m = self.index.moved;
        if m != before {
            tracing::info!(
                down_files = m.down_files - before.down_files,
                down_bytes = m.down_bytes - before.down_bytes,
                up_files = m.up_files - before.up_files,
                up_bytes = m.up_bytes - before.up_bytes,
                "sync pass"
            );
        }
        result
    }

    async fn rounds(&mut self) -> Result<(), PassError> {
        for _ in 0..MAX_ROUNDS {
            let ignores = self.home.ignores();
            let tree = self.drive.tree().await?;
            let mut ids: BTreeMap<String, String> = BTreeMap::new();
            let mut remote = BTreeMap::new();
            for item in tree.items {
                let dir = item.kind == FileKind::Folder;
                if ignores
                    .matched_path_or_any_parents(&item.path, dir)
                    .is_ignore()
                {
                    continue;
                }
                ids.insert(item.path.clone(), item.id.clone());
                remote.insert(
                    item.path,
                    Remote {
                        id: item.id,
                        version: item.version,
                        kind: if dir { Kind::Dir } else { Kind::File },
                        sha: item.checksum,
                        exec: item.executable,
                    },
                );
            }
            let scanned = {
                let home = self.home.clone();
                let synced = self.index.synced.clone();
                let ig = ignores.clone();
                tokio::task::spawn_blocking(move || home.scan(&ig, &synced))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))??
            };
            *self.ignores.write().expect("ignores lock") = ignores;
            let mut local: BTreeMap<String, Local> = scanned
                .iter()
                .map(|(p, s)| (p.clone(), s.local.clone()))
                .collect();
            let kept = &mut self.index.kept;
            kept.retain(|d| local.contains_key(d));
            let holding: Vec<String> = kept
                .iter()
                .filter(|d| local.keys().any(|p| is_under(p, d) && !kept.contains(p)))
                .cloned()
                .collect();
            for d in holding {
                kept.remove(&d);
            }
            for d in kept.iter() {
                local.remove(d);
            }
            // A refused file is not tried again until it changes.
            self.index
                .held
                .retain(|p, sha| local.get(p).is_some_and(|l| l.sha == *sha));
            let actions: Vec<Action> = plan::plan(&self.index.synced, &local, &remote)
                .into_iter()
                .filter(|a| match a {
                    Action::Upload { path, .. } => !self.index.held.contains_key(path),
                    _ => true,
                })
                .collect();
            if actions.is_empty() {
                return Ok(());
            }
            tracing::debug!(actions = actions.len(), "sync round");
            for action in actions {
                match self.apply(action, &scanned, &mut ids).await {
                    Ok(()) => {}
                    // Unreachable drive: stop; the next pass starts over.
                    Err(PassError::Drive(e @ DriveError::Transport(_))) => {
                        self.save();
                        return Err(e.into());
                    }
                    // Anything else (a race with a new change, a file gone meanwhile) is
                    // looked at again by the next round.
                    Err(e) => tracing::info!(error = %e, "sync step skipped"),
                }
            }
            self.save();
        }
        Ok(())
    }

    async fn apply(
        &mut self,
        action: Action,
        scanned: &BTreeMap<String, Scanned>,
        ids: &mut BTreeMap<String, String>,
    ) -> Result<(), PassError> {
        let stat = |p: &str| scanned.get(p).map(|s| (s.size, s.mtime_ns));
        match action {
            Action::Adopt { path, remote } => {
                let (size, mtime_ns) = stat(&path).unwrap_or_default();
                self.index.synced.insert(
                    path,
                    Synced {
                        id: remote.id,
                        version: remote.version,
                        kind: remote.kind,
                        sha: remote.sha,
                        exec: remote.exec,
                        size,
                        mtime_ns,
                    },
                );
            }
            Action::Forget { path } => {
                self.index.synced.remove(&path);
            }
            Action::Download { path, remote } => {
                self.download(&path, &remote, stat(&path)).await?;
            }
            Action::MakeLocalDir { path, remote } => {
                self.home.make_dir(&path)?;
                self.index
                    .synced
                    .insert(path, dir_entry(&remote.id, remote.version));
            }
            Action::DeleteLocal { path } => {
                let ignores = self.ignores.read().expect("ignores lock").clone();
                let kept = self.home.remove(&path, &ignores)?;
                self.index.kept.extend(kept);
                self.forget_under(&path);
            }
            Action::Upload { path, base } => self.upload(&path, base, scanned, ids).await?,
            Action::SetExec { path, id, exec } => {
                self.drive
                    .patch(
                        &id,
                        &PatchFile {
                            executable: Some(exec),
                            ..Default::default()
                        },
                    )
                    .await?;
                if let Some(s) = self.index.synced.get_mut(&path) {
                    s.exec = exec;
                }
            }
            Action::MakeRemoteDir { path } => {
                let (parent, name) = split(&path);
                let parent_id = match parent {
                    Some(p) => Some(ids.get(p).cloned().ok_or_else(|| {
                        std::io::Error::other(format!("{p} is not in the drive yet"))
                    })?),
                    None => None,
                };
                let made = self.drive.make_folder(parent_id.as_deref(), name).await?;
                ids.insert(path.clone(), made.id.clone());
                self.index
                    .synced
                    .insert(path, dir_entry(&made.id, made.version));
            }
            Action::DeleteRemote { path, id } => {
                self.drive.delete(&id).await?;
                self.forget_under(&path);
            }
            Action::MoveRemote { from, to, id } => {
                let (parent, name) = split(&to);
                let parent_id = match parent {
                    Some(p) => Some(ids.get(p).cloned().ok_or_else(|| {
                        std::io::Error::other(format!("{p} is not in the drive yet"))
                    })?),
                    None => None,
                };
                self.drive
                    .patch(
                        &id,
                        &PatchFile {
                            name: Some(name.to_owned()),
                            parent_id: Some(parent_id),
                            executable: None,
                        },
                    )
                    .await?;
                let moved: Vec<String> = self
                    .index
                    .synced
                    .keys()
                    .filter(|p| *p == &from || is_under(p, &from))
                    .cloned()
                    .collect();
                for p in moved {
                    if let Some(s) = self.index.synced.remove(&p) {
                        let new = format!("{to}{}", &p[from.len()..]);
                        ids.insert(new.clone(), s.id.clone());
                        self.index.synced.insert(new, s);
                    }
                }
            }
            Action::Conflict { path, copy, remote } => {
                // The home's version steps aside (it goes to the drive as a new file in
                // the next round); the drive's takes its place.
                self.home.rename(&path, &copy)?;
                self.forget_under(&path);
                match remote.kind {
                    Kind::File => self.download(&path, &remote, None).await?,
                    Kind::Dir => {
                        self.home.make_dir(&path)?;
                        self.index
                            .synced
                            .insert(path.clone(), dir_entry(&remote.id, remote.version));
                    }
                }
                self.tell(
                    &format!("{path} changed here and in Files at once: Files' version is at {path}, this terminal's at {copy}"),
                    SyncReport {
                        kind: SyncReportKind::Conflict,
                        path,
                        copy_path: Some(copy),
                        file_id: Some(remote.id),
                        detail: None,
                    },
                )
                .await;
            }
        }
        Ok(())
    }

    /// Streams a file from the drive into place, unless the home's file changed since it
    /// was scanned (`seen`).
    async fn download(
        &mut self,
        path: &str,
        remote: &Remote,
        seen: Option<(u64, i128)>,
    ) -> Result<(), PassError> {
        let res = self.drive.download(&remote.id).await?;
        // The version served, which may be newer than the tree said.
        let version = res
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.trim_start_matches("W/")
                    .trim_matches('"')
                    .parse::<i64>()
                    .ok()
            })
            .unwrap_or(remote.version);
        let temp = self.home.temp_beside(path)?;
        let written = async {
            let mut out = tokio::fs::File::from_std(temp.file.try_clone()?);
            let mut hash = Sha256::new();
            let mut body = res.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                hash.update(&chunk);
                out.write_all(&chunk).await?;
            }
            out.sync_all().await?;
            Ok::<_, std::io::Error>(hex::encode(hash.finalize()))
        }
        .await;
        let sha = match written {
            Ok(sha) => sha,
            Err(e) => {
                temp.discard();
                return Err(e.into());
            }
        };
        if !self.home.put_in_place(temp, path, remote.exec, seen)? {
            return Ok(());
        }
        let (size, mtime_ns) = self
            .home
            .stat(path)?
            .ok_or_else(|| std::io::Error::other(format!("{path} vanished as it was written")))?;
        self.index.moved.down_files += 1;
        self.index.moved.down_bytes += size;
        self.index.synced.insert(
            path.to_owned(),
            Synced {
                id: remote.id.clone(),
                version,
                kind: Kind::File,
                sha: Some(sha),
                exec: remote.exec,
                size,
                mtime_ns,
            },
        );
        Ok(())
    }

    async fn upload(
        &mut self,
        path: &str,
        base: Option<(String, i64)>,
        scanned: &BTreeMap<String, Scanned>,
        ids: &BTreeMap<String, String>,
    ) -> Result<(), PassError> {
        let Some(seen) = scanned.get(path) else {
            return Ok(());
        };
        let file = self.home.open_read(path)?;
        let result = match &base {
            Some((id, version)) => self.drive.replace(id, *version, file).await,
            None => {
                let (parent, name) = split(path);
                let parent_id = match parent {
                    Some(p) => match ids.get(p) {
                        Some(id) => Some(id.as_str()),
                        None => return Ok(()),
                    },
                    None => None,
                };
                self.drive.create(parent_id, name, file).await
            }
        };
        let file = match result {
            Ok(f) => f,
            Err(DriveError::Refused {
                status,
                kind,
                detail,
            }) if status == 413 || status == 400 => {
                self.index
                    .held
                    .insert(path.to_owned(), seen.local.sha.clone());
                let quota = status == 413 && kind.contains("quota");
                let (report, notice) = if quota {
                    (
                        SyncReportKind::Quota,
                        format!(
                            "{path} stays in this terminal only: it would pass your storage quota"
                        ),
                    )
                } else {
                    (
                        SyncReportKind::Refused,
                        format!("{path} stays in this terminal only: {detail}"),
                    )
                };
                self.tell(
                    &notice,
                    SyncReport {
                        kind: report,
                        path: path.to_owned(),
                        copy_path: None,
                        file_id: base.map(|(id, _)| id),
                        detail: Some(detail),
                    },
                )
                .await;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mut exec = file.executable;
        if seen.local.exec != file.executable {
            let patched = self
                .drive
                .patch(
                    &file.id,
                    &PatchFile {
                        executable: Some(seen.local.exec),
                        ..Default::default()
                    },
                )
                .await?;
            exec = patched.executable;
        }
        self.index.held.remove(path);
        self.index.moved.up_files += 1;
        self.index.moved.up_bytes += seen.size;
        self.index.synced.insert(
            path.to_owned(),
            Synced {
                id: file.id,
                version: file.version,
                kind: Kind::File,
                sha: file.checksum,
                exec,
                size: seen.size,
                mtime_ns: seen.mtime_ns,
            },
        );
        Ok(())
    }

    fn forget_under(&mut self, path: &str) {
        self.index
            .synced
            .retain(|p, _| p != path && !is_under(p, path));
    }

    /// Tells the user in their terminals now and on their desktop (a notification).
    async fn tell(&self, notice: &str, report: SyncReport) {
        self.terminals.notice_all(NoticeKind::Sync, notice);
        if let Err(e) = self.drive.report(&report).await {
            tracing::warn!(error = %e, "could not report to the drive");
        }
    }

    fn save(&self) {
        let tmp = self.index_path.with_extension("json.new");
        let written = serde_json::to_vec(&self.index)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, &self.index_path));
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not save the sync index (the next start reconciles by checksum)");
        }
    }
}

fn dir_entry(id: &str, version: i64) -> Synced {
    Synced {
        id: id.to_owned(),
        version,
        kind: Kind::Dir,
        sha: None,
        exec: false,
        size: 0,
        mtime_ns: 0,
    }
}

fn split(path: &str) -> (Option<&str>, &str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, path),
    }
}

fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Watches the home (recursively) and says when something that is synced changed.
fn watch_home(
    root: &Path,
    ignores: Arc<RwLock<Gitignore>>,
    tx: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let base = root.to_path_buf();
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else {
            // Overflowed or failed: a pass looks at everything anyway.
            let _ = tx.send(());
            return;
        };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        let ig = ignores.read().expect("ignores lock");
        let relevant = ev.paths.iter().any(|p| {
            let Ok(rel) = p.strip_prefix(&base) else {
                return false;
            };
            if rel.as_os_str().is_empty() {
                return true;
            }
            let own_temp = rel
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".cloudos-sync-"));
            !own_temp && !ig.matched_path_or_any_parents(rel, p.is_dir()).is_ignore()
        });
        if relevant {
            let _ = tx.send(());
        }
    })?;
    w.watch(root, notify::RecursiveMode::Recursive)?;
    Ok(w)
}

/// Follows the user's event stream and says when the drive changed; connects again when
/// the stream drops (and says so: something may have changed meanwhile).
async fn listen(drive: Drive, tx: mpsc::UnboundedSender<()>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut req = match drive.events_url().into_client_request() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the drive's event stream URL is not valid: changes in Files sync every {}s only", SAFETY_TICK.as_secs());
                return;
            }
        };
        req.headers_mut().insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", drive.token())
                .parse()
                .expect("a token is a valid header value"),
        );
        match tokio_tungstenite::connect_async(req).await {
            Ok((mut ws, _)) => {
                backoff = Duration::from_millis(500);
                if tx.send(()).is_err() {
                    return;
                }
                while let Some(msg) = ws.next().await {
                    match msg {
                        Ok(Message::Text(t)) => {
                            let changed = matches!(
                                serde_json::from_str::<cloudos_proto::Event>(&t),
                                Ok(cloudos_proto::Event::FilesChanged { .. })
                            );
                            if changed && tx.send(()).is_err() {
                                return;
                            }
                        }
                        Ok(Message::Close(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "the drive's event stream is not reachable; trying again")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
