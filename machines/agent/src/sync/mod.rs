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
use std::io::Read;
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
use plan::{Action, Kind, Local, Remote, Stamp, Synced};
use remote::{Drive, DriveError};

/// How long the home or the drive must be quiet before a pass starts (changes come in
/// bursts: an editor's save is a write and a rename, a build writes many files).
const QUIET: Duration = Duration::from_millis(100);
/// Downloads at once in a round.
const PARALLEL_DOWNLOADS: usize = 8;
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

/// The marker at the home's root naming the home an index describes.
const MARKER: &str = ".cloudos-sync-id";
/// How long a file the drive refused for now (a name taken, a lock) waits before it is
/// tried again, if it does not change.
const RETRY_HELD_MS: u64 = 60_000;

/// What is kept between passes and across restarts of the agent.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// The home this index describes (its marker): another home (a new image over the
    /// old mount point, a home restored from elsewhere) starts from nothing agreed, so
    /// nothing is taken for deleted.
    #[serde(default)]
    home_id: String,
    /// What both sides agreed on, by path.
    synced: BTreeMap<String, Synced>,
    /// Files the drive refused, as they were then: not tried again until they change (or,
    /// for a refusal that may pass, until `until_ms`).
    #[serde(default)]
    held: BTreeMap<String, Held>,
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

/// A file the drive refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    sha: Option<String>,
    stamp: Stamp,
    /// Milliseconds since the Unix epoch after which it is tried again anyway.
    until_ms: Option<u64>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
        let index = load_index(&home, &index_path);
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

/// The index of this home, or a fresh one (with a new marker) when there is none, it
/// cannot be read, or it describes another home.
fn load_index(home: &Home, path: &Path) -> Index {
    let stored: Option<Index> = match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| tracing::warn!(error = %e, "the sync index is unreadable: reconciling from scratch"))
            .ok(),
        Err(_) => None,
    };
    let mut marker = String::new();
    if let Ok(f) = home.open_read(MARKER) {
        let _ = f.take(128).read_to_string(&mut marker);
    }
    match stored {
        Some(index) if !index.home_id.is_empty() && marker.trim() == index.home_id => index,
        stored => {
            if stored.is_some() {
                tracing::warn!("the sync index describes another home: reconciling from scratch");
            }
            let id = hex::encode(Sha256::digest(format!(
                "{}-{}-{:?}",
                now_ms(),
                std::process::id(),
                std::time::Instant::now()
            )))[..32]
                .to_owned();
            if let Err(e) = home.write_small(MARKER, id.as_bytes()) {
                tracing::warn!(error = %e, "could not mark the home");
            }
            Index {
                home_id: id,
                ..Index::default()
            }
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
            // Folders of the drive that hold something the rules keep out of the home.
            let mut protected = std::collections::BTreeSet::new();
            for item in tree.items {
                let dir = item.kind == FileKind::Folder;
                if ignores
                    .matched_path_or_any_parents(&item.path, dir)
                    .is_ignore()
                {
                    let mut at = item.path.as_str();
                    while let Some((parent, _)) = at.rsplit_once('/') {
                        protected.insert(parent.to_owned());
                        at = parent;
                    }
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
                // What a file's checksum was, for its stamp then: synced, or refused.
                let mut known: BTreeMap<String, (Stamp, Option<String>)> = self
                    .index
                    .synced
                    .iter()
                    .filter(|(_, s)| s.kind == Kind::File)
                    .map(|(p, s)| (p.clone(), (s.stamp, s.sha.clone())))
                    .collect();
                for (p, h) in &self.index.held {
                    known.insert(p.clone(), (h.stamp, h.sha.clone()));
                }
                let ig = ignores.clone();
                tokio::task::spawn_blocking(move || home.scan(&ig, &|p| known.get(p).cloned()))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))??
            };
            *self.ignores.write().expect("ignores lock") = ignores;
            // A file whose content and bit are as agreed but whose stamp moved (a chmod, a
            // touch, a copy over it of the same bytes) is remembered with its new stamp: it
            // is not read again next time, and a delete from the drive may remove it.
            for (p, sc) in &scanned {
                if let Some(s) = self.index.synced.get_mut(p) {
                    if s.kind == Kind::File
                        && sc.local.sha == s.sha
                        && sc.local.exec == s.exec
                        && sc.stamp != s.stamp
                    {
                        s.stamp = sc.stamp;
                    }
                }
            }
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
            // A refused file is not tried again until it changes (or its wait is over).
            let now = now_ms();
            self.index.held.retain(|p, h| {
                local.get(p).is_some_and(|l| l.sha == h.sha) && h.until_ms.is_none_or(|u| u > now)
            });
            let actions: Vec<Action> = plan::plan(&self.index.synced, &local, &remote, &protected)
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
            // Downloads depend on nothing else of the round but the folders made before
            // them, and each waits mostly on the network: several at once.
            let (downloads, rest): (Vec<Action>, Vec<Action>) = actions
                .into_iter()
                .partition(|a| matches!(a, Action::Download { .. }));
            let (before, after): (Vec<Action>, Vec<Action>) = rest.into_iter().partition(|a| {
                matches!(
                    a,
                    Action::MakeLocalDir { .. }
                        | Action::MakeRemoteDir { .. }
                        | Action::MoveRemote { .. }
                        | Action::Conflict { .. }
                )
            });
            let mut results = Vec::new();
            for action in before {
                results.push(self.apply(action, &scanned, &mut ids).await);
            }
            let fetched: Vec<Result<Option<(String, Synced)>, PassError>> =
                futures_util::stream::iter(downloads.into_iter().filter_map(|a| match a {
                    Action::Download { path, remote } => {
                        let seen = scanned.get(&path).map(|s| s.stamp);
                        Some(fetch(
                            self.drive.clone(),
                            self.home.clone(),
                            path,
                            remote,
                            seen,
                        ))
                    }
                    _ => None,
                }))
                .buffer_unordered(PARALLEL_DOWNLOADS)
                .collect()
                .await;
            for got in fetched {
                results.push(got.map(|placed| {
                    if let Some((path, synced)) = placed {
                        self.index.moved.down_files += 1;
                        self.index.moved.down_bytes += synced.stamp.size;
                        self.index.synced.insert(path, synced);
                    }
                }));
            }
            for action in after {
                results.push(self.apply(action, &scanned, &mut ids).await);
            }
            for result in results {
                match result {
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
        let stat = |p: &str| scanned.get(p).map(|s| s.stamp);
        match action {
            Action::Adopt { path, remote } => {
                let stamp = stat(&path).unwrap_or_default();
                self.index.synced.insert(
                    path,
                    Synced {
                        id: remote.id,
                        version: remote.version,
                        kind: remote.kind,
                        sha: remote.sha,
                        exec: remote.exec,
                        stamp,
                    },
                );
            }
            Action::Forget { path } => {
                self.index.synced.remove(&path);
            }
            Action::Download { path, remote } => {
                let seen = stat(&path);
                let placed =
                    fetch(self.drive.clone(), self.home.clone(), path, remote, seen).await?;
                if let Some((path, synced)) = placed {
                    self.index.moved.down_files += 1;
                    self.index.moved.down_bytes += synced.stamp.size;
                    self.index.synced.insert(path, synced);
                }
            }
            Action::MakeLocalDir { path, remote } => {
                self.home.make_dir(&path)?;
                self.index
                    .synced
                    .insert(path, dir_entry(&remote.id, remote.version));
            }
            Action::DeleteLocal { path } => {
                let ignores = self.ignores.read().expect("ignores lock").clone();
                let synced = &self.index.synced;
                // Only what is as the last pass left it: anything written since exists
                // nowhere else.
                let unchanged = |p: &str, st: Stamp| synced.get(p).is_some_and(|s| s.stamp == st);
                let kept = self.home.remove(&path, &ignores, &unchanged)?;
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
                    Kind::File => {
                        let placed = fetch(
                            self.drive.clone(),
                            self.home.clone(),
                            path.clone(),
                            remote.clone(),
                            None,
                        )
                        .await?;
                        if let Some((path, synced)) = placed {
                            self.index.synced.insert(path, synced);
                        }
                    }
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
        let hold = |until_ms| Held {
            sha: seen.local.sha.clone(),
            stamp: seen.stamp,
            until_ms,
        };
        let file = match result {
            Ok(f) => f,
            // A name taken meanwhile, or a file someone holds a lock on: not for long, and
            // the next rounds look again; not tried again and again before that.
            Err(DriveError::Refused { status, .. }) if status == 409 || status == 423 => {
                let held = hold(Some(now_ms() + RETRY_HELD_MS));
                self.index.held.insert(path.to_owned(), held);
                return Ok(());
            }
            Err(DriveError::Refused {
                status,
                kind,
                detail,
            }) if status == 413 || status == 400 => {
                self.index.held.insert(path.to_owned(), hold(None));
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
        self.index.moved.up_bytes += seen.stamp.size;
        self.index.synced.insert(
            path.to_owned(),
            Synced {
                id: file.id,
                version: file.version,
                kind: Kind::File,
                sha: file.checksum,
                exec,
                stamp: seen.stamp,
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
            .and_then(|b| {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&b)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &self.index_path));
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not save the sync index (the next start reconciles by checksum)");
        }
    }
}

/// Streams a file from the drive into place, unless the home's file changed since it was
/// scanned (`seen`): what to remember of it, if it was put in place.
async fn fetch(
    drive: Drive,
    home: Home,
    path: String,
    remote: Remote,
    seen: Option<Stamp>,
) -> Result<Option<(String, Synced)>, PassError> {
    let res = drive.download(&remote.id).await?;
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
    let temp = home.temp_beside(&path)?;
    let written = async {
        let mut out = tokio::fs::File::from_std(temp.file.try_clone()?);
        let mut hash = Sha256::new();
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(std::io::Error::other)?;
            hash.update(&chunk);
            out.write_all(&chunk).await?;
        }
        // Not synced to the disk file by file (a first sync of a thousand files would
        // wait on a thousand flushes): after a crash the drive still has every byte, and
        // a file cut short is a change the next reconcile keeps beside the drive's.
        out.flush().await?;
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
    let placed = tokio::task::spawn_blocking(move || {
        let stamp = home.put_in_place(temp, &path, remote.exec, seen)?;
        Ok::<_, std::io::Error>(stamp.map(|stamp| {
            let synced = Synced {
                id: remote.id,
                version,
                kind: Kind::File,
                sha: Some(sha),
                exec: remote.exec,
                stamp,
            };
            (path, synced)
        }))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))??;
    Ok(placed)
}

fn dir_entry(id: &str, version: i64) -> Synced {
    Synced {
        id: id.to_owned(),
        version,
        kind: Kind::Dir,
        sha: None,
        exec: false,
        stamp: Stamp::default(),
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
    let handler = move |ev: notify::Result<notify::Event>| {
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
    };
    // Never through a link the sandbox planted: followed as root, one to `/` would watch
    // the host's whole file system.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut w = notify::RecommendedWatcher::new(handler, config)?;
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
