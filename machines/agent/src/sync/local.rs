//! The home on this machine's disk, as the sync sees it: a scan (checksums read only for
//! files whose size or time changed), what stays local (`.cloudosignore` and the defaults),
//! and writes that never leave half a file (a temporary file, then a rename).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rustix::fs::{
    fchmod, mkdirat, openat2, renameat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags,
    ResolveFlags,
};
use sha2::{Digest, Sha256};

use super::plan::{Kind, Local, Synced};

/// What stays in the sandbox by default: caches, build output, dependencies, machine and
/// shell files. Gitignore syntax; a user's `.cloudosignore` at the home's root adds more
/// (and can bring one back with `!`).
pub const DEFAULT_IGNORES: &[&str] = &[
    "node_modules/",
    "target/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".cache/",
    ".npm/",
    ".cargo/",
    ".rustup/",
    ".local/",
    ".config/",
    "lost+found/",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".node_repl_history",
    ".lesshst",
    ".viminfo",
    ".wget-hsts",
    "*.swp",
    ".DS_Store",
    // The sync's own temporary files.
    ".cloudos-sync-*",
];

/// The user's own list of what stays local, at the home's root.
pub const IGNORE_FILE: &str = ".cloudosignore";

/// A scanned path: what the plan compares, and the size and time to remember.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub local: Local,
    pub size: u64,
    pub mtime_ns: i128,
}

/// How every path in the home is resolved: beneath the home, through no symlink (a
/// sandbox can plant one anywhere in its home, and the agent may be root on the host: a
/// link followed would steer its writes, or its reads into the drive, outside the home).
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// The home directory, held open, and who owns what is written in it. Every operation
/// goes through the open directory, never through a path the sandbox could redirect.
#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
    /// The uid (and gid) new files and folders are given (the sandbox's user, when the
    /// agent runs as root); `None`: the agent's own.
    pub owner: Option<u32>,
    dir: Arc<OwnedFd>,
}

/// A temporary file being filled beside where it will go.
pub struct Temp {
    dir: OwnedFd,
    name: String,
    pub file: std::fs::File,
}

impl Temp {
    /// Removes it (a download that failed half way leaves nothing).
    pub fn discard(self) {
        let _ = unlinkat(&self.dir, self.name.as_str(), AtFlags::empty());
    }
}

impl Home {
    /// Opens the home at `root`.
    pub fn open(root: PathBuf, owner: Option<u32>) -> std::io::Result<Self> {
        let dir = rustix::fs::open(
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Home {
            root,
            owner,
            dir: Arc::new(dir),
        })
    }

    /// Where a home-relative path is on this machine (for messages and tests only).
    pub fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn open_at(&self, rel: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
        let rel = if rel.is_empty() { "." } else { rel };
        Ok(openat2(
            &*self.dir,
            rel,
            flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            RESOLVE,
        )?)
    }

    /// The folder holding `rel`, open, and `rel`'s last name.
    fn parent<'a>(&self, rel: &'a str) -> std::io::Result<(OwnedFd, &'a str)> {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", rel),
        };
        Ok((self.open_at(dir, OFlags::RDONLY | OFlags::DIRECTORY)?, name))
    }

    /// The rules of what stays local, read afresh (the user may have edited them).
    pub fn ignores(&self) -> Gitignore {
        let mut b = GitignoreBuilder::new(&self.root);
        for line in DEFAULT_IGNORES {
            b.add_line(None, line).expect("the default patterns parse");
        }
        let own = self
            .open_read(IGNORE_FILE)
            .and_then(|mut f| {
                let mut text = String::new();
                f.read_to_string(&mut text).map(|_| text)
            })
            .unwrap_or_default();
        for line in own.lines() {
            if let Err(e) = b.add_line(None, line) {
                tracing::warn!(error = %e, "a line of .cloudosignore was not understood");
            }
        }
        b.build().unwrap_or_else(|e| {
            tracing::warn!(error = %e, ".cloudosignore could not be used");
            Gitignore::empty()
        })
    }

    /// Every file and folder of the home that is synced, by relative path. A checksum is
    /// read only when the size or modification time differs from what was synced.
    /// Symlinks, sockets and devices stay local, as do names that are not UTF-8.
    pub fn scan(
        &self,
        ignores: &Gitignore,
        synced: &BTreeMap<String, Synced>,
    ) -> std::io::Result<BTreeMap<String, Scanned>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(
            self.open_at("", OFlags::RDONLY | OFlags::DIRECTORY)?,
            String::new(),
        )];
        while let Some((dir, rel)) = stack.pop() {
            for entry in Dir::read_from(&dir)? {
                let entry = entry?;
                let Ok(name) = entry.file_name().to_str() else {
                    continue;
                };
                if name == "." || name == ".." {
                    continue;
                }
                let path = if rel.is_empty() {
                    name.to_owned()
                } else {
                    format!("{rel}/{name}")
                };
                // Gone meanwhile: the next pass sees it gone.
                let Ok(st) = statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                    continue;
                };
                let kind = FileType::from_raw_mode(st.st_mode);
                let is_dir = kind == FileType::Directory;
                if !(is_dir || kind == FileType::RegularFile) {
                    continue;
                }
                if ignores
                    .matched_path_or_any_parents(&path, is_dir)
                    .is_ignore()
                {
                    continue;
                }
                let mtime_ns = st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
                if is_dir {
                    if let Ok(sub) = openat2(
                        &dir,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                        RESOLVE,
                    ) {
                        stack.push((sub, path.clone()));
                    }
                    out.insert(
                        path,
                        Scanned {
                            local: Local {
                                kind: Kind::Dir,
                                sha: None,
                                exec: false,
                            },
                            size: 0,
                            mtime_ns,
                        },
                    );
                    continue;
                }
                let size = st.st_size as u64;
                let known = synced
                    .get(&path)
                    .filter(|s| s.kind == Kind::File && s.size == size && s.mtime_ns == mtime_ns);
                let sha = match known {
                    Some(s) => s.sha.clone(),
                    None => {
                        let opened = openat2(
                            &dir,
                            name,
                            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                            RESOLVE,
                        );
                        match opened
                            .map_err(std::io::Error::from)
                            .map(std::fs::File::from)
                            .and_then(sha256_of)
                        {
                            Ok(h) => Some(h),
                            // Gone or unreadable meanwhile: the next pass sees it.
                            Err(_) => continue,
                        }
                    }
                };
                out.insert(
                    path,
                    Scanned {
                        local: Local {
                            kind: Kind::File,
                            sha,
                            exec: st.st_mode & 0o100 != 0,
                        },
                        size,
                        mtime_ns,
                    },
                );
            }
        }
        Ok(out)
    }

    /// A file of the home, open for reading (an upload's body).
    pub fn open_read(&self, rel: &str) -> std::io::Result<std::fs::File> {
        Ok(self.open_at(rel, OFlags::RDONLY)?.into())
    }

    /// The size and modification time of a file now (`None`: nothing there).
    pub fn stat(&self, rel: &str) -> std::io::Result<Option<(u64, i128)>> {
        let (dir, name) = self.parent(rel)?;
        stat_in(&dir, name)
    }

    /// Makes a folder and any missing above it, owned by the sandbox's user.
    pub fn make_dir(&self, rel: &str) -> std::io::Result<()> {
        self.make_dir_fd(rel).map(drop)
    }

    fn make_dir_fd(&self, rel: &str) -> std::io::Result<OwnedFd> {
        let mut cur = self.open_at("", OFlags::RDONLY | OFlags::DIRECTORY)?;
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            let made = match mkdirat(&cur, part, Mode::from_raw_mode(0o755)) {
                Ok(()) => true,
                Err(rustix::io::Errno::EXIST) => false,
                Err(e) => return Err(e.into()),
            };
            // A symlink or a file where a folder should be is refused here.
            let next = openat2(
                &cur,
                part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )?;
            if made {
                self.own(&next)?;
            }
            cur = next;
        }
        Ok(cur)
    }

    /// A new temporary file beside `rel` (its folders made), to be filled and then put
    /// in place with [`Home::put_in_place`].
    pub fn temp_beside(&self, rel: &str) -> std::io::Result<Temp> {
        let dir = match rel.rsplit_once('/') {
            Some((d, _)) => self.make_dir_fd(d)?,
            None => self.open_at("", OFlags::RDONLY | OFlags::DIRECTORY)?,
        };
        let name = format!(".cloudos-sync-{}.tmp", unique());
        let fd = rustix::fs::openat(
            &dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(Temp {
            dir,
            name,
            file: fd.into(),
        })
    }

    /// Puts a filled temporary file at `rel` with the executable bit as given, unless the
    /// file there changed since it was scanned (`expected`: its size and time then, `None`
    /// if there was none): a write in the terminal meanwhile is never overwritten.
    pub fn put_in_place(
        &self,
        temp: Temp,
        rel: &str,
        exec: bool,
        expected: Option<(u64, i128)>,
    ) -> std::io::Result<bool> {
        let name = rel.rsplit_once('/').map_or(rel, |(_, n)| n);
        let now = stat_in(&temp.dir, name)?;
        if now != expected {
            temp.discard();
            return Ok(false);
        }
        fchmod(
            &temp.file,
            Mode::from_raw_mode(if exec { 0o755 } else { 0o644 }),
        )?;
        self.own(&temp.file)?;
        renameat(&temp.dir, temp.name.as_str(), &temp.dir, name)?;
        Ok(true)
    }

    /// Removes a file, or a folder with everything in it that is synced: what stays local
    /// (`ignores`: a `node_modules`, a `.env` the user keeps out of the drive) exists
    /// nowhere else, so it stays, with the folders that hold it (returned). Gone already is
    /// fine.
    pub fn remove(&self, rel: &str, ignores: &Gitignore) -> std::io::Result<Vec<String>> {
        let mut kept = Vec::new();
        let (dir, name) = match self.parent(rel) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(kept),
            Err(e) => return Err(e),
        };
        remove_in(&dir, name, rel, ignores, &mut kept)?;
        Ok(kept)
    }

    /// Renames within the home (a conflict's copy).
    pub fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        let (a, an) = self.parent(from)?;
        let (b, bn) = self.parent(to)?;
        Ok(renameat(&a, an, &b, bn)?)
    }

    fn own(&self, fd: impl AsFd) -> std::io::Result<()> {
        match self.owner {
            Some(uid) => std::os::unix::fs::fchown(fd, Some(uid), Some(uid)),
            None => Ok(()),
        }
    }
}

fn stat_in(dir: &OwnedFd, name: &str) -> std::io::Result<Option<(u64, i128)>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some((
            st.st_size as u64,
            st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
        ))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` in `dir` (a file or a folder, never following a link), keeping what
/// stays local.
fn remove_in(
    dir: &OwnedFd,
    name: &str,
    rel: &str,
    ignores: &Gitignore,
    kept: &mut Vec<String>,
) -> std::io::Result<()> {
    let st = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let sub = openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )?;
    let mut names = Vec::new();
    for entry in Dir::read_from(&sub)? {
        let entry = entry?;
        match entry.file_name().to_str() {
            Ok("." | "..") => {}
            Ok(n) => names.push(n.to_owned()),
            // A name that is not UTF-8 was never synced: it stays.
            Err(_) => names.push(String::new()),
        }
    }
    for child in names.iter().filter(|n| !n.is_empty()) {
        let path = format!("{rel}/{child}");
        let Ok(st) = statat(&sub, child.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        let synced_kind = kind == FileType::Directory || kind == FileType::RegularFile;
        let is_dir = kind == FileType::Directory;
        if !synced_kind
            || ignores
                .matched_path_or_any_parents(&path, is_dir)
                .is_ignore()
        {
            continue;
        }
        remove_in(&sub, child, &path, ignores, kept)?;
    }
    match unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        // Something that stays local is in it: so does the folder.
        Err(rustix::io::Errno::NOTEMPTY) => {
            kept.push(rel.to_owned());
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The lowercase hex SHA-256 of a file's content (what the drive keeps for each version).
pub fn sha256_of(mut f: std::fs::File) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// A name no other temporary file of this agent has (uniqueness, not secrecy: the home's
/// owner may see it).
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn home_in(dir: &tempfile::TempDir) -> Home {
        Home::open(dir.path().to_path_buf(), None).unwrap()
    }

    #[test]
    fn what_stays_local_by_default_and_by_the_users_list() {
        let dir = tempfile::tempdir().unwrap();
        let home = home_in(&dir);
        for d in [
            "app/node_modules/x",
            "app/src",
            "proj/target/debug",
            "lost+found",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for f in [
            "app/node_modules/x/index.js",
            "app/src/main.js",
            "proj/target/debug/bin",
            ".bash_history",
            "notes.md",
            "big.log",
            "keep.log",
        ] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        std::fs::write(dir.path().join(IGNORE_FILE), "*.log\n!keep.log\n").unwrap();
        let got = home.scan(&home.ignores(), &BTreeMap::new()).unwrap();
        let paths: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            vec![
                ".cloudosignore",
                "app",
                "app/src",
                "app/src/main.js",
                "keep.log",
                "notes.md",
                "proj"
            ]
        );
        assert_eq!(
            got["notes.md"].local.sha.as_deref(),
            Some(hex::encode(Sha256::digest(b"notes.md")).as_str())
        );
    }

    #[test]
    fn links_planted_in_the_home_never_lead_the_agent_outside_it() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let home = home_in(&dir);
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link.txt"))
            .unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("real/deeper")).unwrap();
        // Not scanned, so never uploaded ...
        let got = home.scan(&home.ignores(), &BTreeMap::new()).unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["real"]);
        // ... not readable through the home, whatever a pass was told ...
        for p in ["link.txt", "evil/secret", "real/deeper/secret"] {
            assert!(home.open_read(p).is_err(), "{p}");
        }
        // ... and never a way to write or remove outside it.
        assert!(home.temp_beside("evil/planted").is_err());
        assert!(home.temp_beside("real/deeper/planted").is_err());
        assert!(home.make_dir("evil/sub").is_err());
        home.remove("evil", &home.ignores()).unwrap();
        home.remove("link.txt", &home.ignores()).unwrap();
        assert!(home.rename("real", "evil/real").is_err());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "host secret"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        // The links themselves went (a delete removes what is at the path, not its target).
        assert!(!dir.path().join("evil").exists() && !dir.path().join("link.txt").exists());
    }

    #[test]
    fn removing_a_folder_keeps_what_stays_local() {
        let dir = tempfile::tempdir().unwrap();
        let home = home_in(&dir);
        for d in ["app/node_modules/x", "app/src", "docs"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for f in [
            "app/node_modules/x/i.js",
            "app/src/a.js",
            "app/README.md",
            "docs/d.md",
        ] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        let ignores = home.ignores();
        assert_eq!(home.remove("app", &ignores).unwrap(), vec!["app"]);
        assert!(home.remove("docs", &ignores).unwrap().is_empty());
        assert!(dir.path().join("app/node_modules/x/i.js").exists());
        assert!(!dir.path().join("app/src").exists());
        assert!(!dir.path().join("app/README.md").exists());
        assert!(!dir.path().join("docs").exists());
        home.remove("gone", &ignores).unwrap();
    }

    #[test]
    fn a_write_in_place_never_overwrites_a_newer_local_change() {
        let dir = tempfile::tempdir().unwrap();
        let home = home_in(&dir);
        std::fs::write(home.abs("a.txt"), "mine").unwrap();
        let seen = home.stat("a.txt").unwrap();
        let mut tmp = home.temp_beside("a.txt").unwrap();
        tmp.file.write_all(b"theirs").unwrap();
        // Changed after the scan: left alone, and the temporary file goes.
        std::fs::write(home.abs("a.txt"), "mine, edited").unwrap();
        assert_ne!(seen, home.stat("a.txt").unwrap());
        assert!(!home.put_in_place(tmp, "a.txt", false, seen).unwrap());
        assert_eq!(
            std::fs::read_to_string(home.abs("a.txt")).unwrap(),
            "mine, edited"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut tmp = home.temp_beside("sub/b.sh").unwrap();
        tmp.file.write_all(b"#!/bin/sh").unwrap();
        assert!(home.put_in_place(tmp, "sub/b.sh", true, None).unwrap());
        let mode = std::fs::metadata(home.abs("sub/b.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(std::fs::read(home.abs("sub/b.sh")).unwrap(), b"#!/bin/sh");
    }
}
