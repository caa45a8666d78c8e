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
    fchmod, fstat, mkdirat, openat2, renameat_with, statat, unlinkat, AtFlags, Dir, FileType, Mode,
    OFlags, RenameFlags, ResolveFlags,
};
use sha2::{Digest, Sha256};

use super::plan::{Kind, Local, Stamp};

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
    // The sync's own files: temporary ones, its marker, and the agent's state where it
    // lives in the home (a Fly Machine's volume).
    ".cloudos-sync-*",
    ".cloudos-agent/",
];

/// The user's own list of what stays local, at the home's root.
pub const IGNORE_FILE: &str = ".cloudosignore";

/// A scanned path: what the plan compares, and its stamp to remember.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub local: Local,
    pub stamp: Stamp,
}

/// A file's stamp when its checksum was taken, and that checksum.
pub type Known = (Stamp, Option<String>);

/// The longest `.cloudosignore` read (the rest is ignored: a list, not a file system).
const MAX_IGNORE_FILE: u64 = 64 * 1024;

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
        let mut own = String::new();
        if let Ok(f) = self.open_read(IGNORE_FILE) {
            let _ = f.take(MAX_IGNORE_FILE).read_to_string(&mut own);
        }
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
    /// read only when a file's stamp differs from the one `known` gives with its checksum
    /// (what was synced, or refused). Symlinks, sockets, pipes and devices stay local, as
    /// do names that are not UTF-8.
    pub fn scan(
        &self,
        ignores: &Gitignore,
        known: &dyn Fn(&str) -> Option<Known>,
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
                let stamp = stamp_of(&st);
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
                    let local = Local {
                        kind: Kind::Dir,
                        sha: None,
                        exec: false,
                    };
                    out.insert(path, Scanned { local, stamp });
                    continue;
                }
                let sha = match known(&path).filter(|(k, _)| *k == stamp) {
                    Some((_, sha)) => sha,
                    // Gone, unreadable or no longer a plain file meanwhile: the next pass
                    // sees it.
                    None => match open_regular(&dir, name).and_then(sha256_of) {
                        Ok(h) => Some(h),
                        Err(_) => continue,
                    },
                };
                let local = Local {
                    kind: Kind::File,
                    sha,
                    exec: st.st_mode & 0o100 != 0,
                };
                out.insert(path, Scanned { local, stamp });
            }
        }
        Ok(out)
    }

    /// A plain file of the home, open for reading (an upload's body); anything else (a
    /// pipe swapped in, which would block the reader) is refused.
    pub fn open_read(&self, rel: &str) -> std::io::Result<std::fs::File> {
        let (dir, name) = self.parent(rel)?;
        open_regular(&dir, name)
    }

    /// A file's stamp now (`None`: nothing there).
    pub fn stat(&self, rel: &str) -> std::io::Result<Option<Stamp>> {
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
    /// file there changed since it was scanned (`expected`: its stamp then, `None` if there
    /// was none; a file that appeared meanwhile is never replaced either): a write in the
    /// terminal meanwhile is never overwritten. Returns the stamp to remember, `None` when
    /// it was left out.
    pub fn put_in_place(
        &self,
        temp: Temp,
        rel: &str,
        exec: bool,
        expected: Option<Stamp>,
    ) -> std::io::Result<Option<Stamp>> {
        let name = rel.rsplit_once('/').map_or(rel, |(_, n)| n);
        if stat_in(&temp.dir, name)? != expected {
            temp.discard();
            return Ok(None);
        }
        fchmod(
            &temp.file,
            Mode::from_raw_mode(if exec { 0o755 } else { 0o644 }),
        )?;
        self.own(&temp.file)?;
        let written = stamp_of(&fstat(&temp.file)?);
        let flags = match expected {
            None => RenameFlags::NOREPLACE,
            Some(_) => RenameFlags::empty(),
        };
        match renameat_with(&temp.dir, temp.name.as_str(), &temp.dir, name, flags) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {
                temp.discard();
                return Ok(None);
            }
            Err(e) => {
                temp.discard();
                return Err(e.into());
            }
        }
        // The rename changes the change time; a write in the moment since changes the
        // modification time too, and then the stamp must not match (so the next scan
        // reads the file again).
        Ok(Some(match stat_in(&temp.dir, name)? {
            Some(now) if now.ino == written.ino && now.mtime_ns == written.mtime_ns => now,
            _ => Stamp {
                ctime_ns: 0,
                ..written
            },
        }))
    }

    /// Removes a file, or a folder with everything in it that is synced and unchanged
    /// (`unchanged(path, stamp)`: as the last pass left it). What stays local (`ignores`:
    /// a `node_modules`, a `.env` the user keeps out of the drive) and what was written
    /// since the scan exist nowhere else, so they stay, with the folders that hold them
    /// (returned). Gone already is fine.
    pub fn remove(
        &self,
        rel: &str,
        ignores: &Gitignore,
        unchanged: &dyn Fn(&str, Stamp) -> bool,
    ) -> std::io::Result<Vec<String>> {
        let mut kept = Vec::new();
        let (dir, name) = match self.parent(rel) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(kept),
            Err(e) => return Err(e),
        };
        let remover = Remover {
            ignores,
            unchanged,
            kept: &mut kept,
        };
        remover.remove_in(&dir, name, rel)?;
        Ok(kept)
    }

    /// Renames within the home (a conflict's copy), never over something.
    pub fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        let (a, an) = self.parent(from)?;
        let (b, bn) = self.parent(to)?;
        Ok(renameat_with(&a, an, &b, bn, RenameFlags::NOREPLACE)?)
    }

    /// Writes a small file at the home's root at once (the sync's marker), replacing it.
    pub fn write_small(&self, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut temp = self.temp_beside(rel)?;
        temp.file.write_all(bytes)?;
        fchmod(&temp.file, Mode::from_raw_mode(0o644))?;
        self.own(&temp.file)?;
        let (dir, name) = self.parent(rel)?;
        renameat_with(
            &temp.dir,
            temp.name.as_str(),
            &dir,
            name,
            RenameFlags::empty(),
        )?;
        Ok(())
    }

    fn own(&self, fd: impl AsFd) -> std::io::Result<()> {
        match self.owner {
            Some(uid) => std::os::unix::fs::fchown(fd, Some(uid), Some(uid)),
            None => Ok(()),
        }
    }
}

// The `stat` fields' types differ between architectures.
#[allow(clippy::unnecessary_cast)]
fn stamp_of(st: &rustix::fs::Stat) -> Stamp {
    Stamp {
        size: st.st_size as u64,
        mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
        ctime_ns: st.st_ctime as i128 * 1_000_000_000 + st.st_ctime_nsec as i128,
        ino: st.st_ino as u64,
    }
}

fn stat_in(dir: &OwnedFd, name: &str) -> std::io::Result<Option<Stamp>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(stamp_of(&st))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens `name` in `dir` for reading if it is a plain file (never through a link, and
/// without blocking on a pipe swapped in for it).
fn open_regular(dir: &OwnedFd, name: &str) -> std::io::Result<std::fs::File> {
    let fd = openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )?;
    if FileType::from_raw_mode(fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(std::io::Error::other("not a plain file"));
    }
    Ok(fd.into())
}

/// Removes what a delete may remove, keeping the rest.
struct Remover<'a> {
    ignores: &'a Gitignore,
    unchanged: &'a dyn Fn(&str, Stamp) -> bool,
    kept: &'a mut Vec<String>,
}

impl Remover<'_> {
    /// Removes `name` in `dir` (a file or a folder, never following a link).
    fn remove_in(mut self, dir: &OwnedFd, name: &str, rel: &str) -> std::io::Result<()> {
        self.remove_one(dir, name, rel).map(drop)
    }

    /// Whether `name` is gone now.
    fn remove_one(&mut self, dir: &OwnedFd, name: &str, rel: &str) -> std::io::Result<bool> {
        let st = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::Directory {
            // Changed since the scan (or never synced): it exists nowhere else.
            if kind == FileType::RegularFile && !(self.unchanged)(rel, stamp_of(&st)) {
                return Ok(false);
            }
            return match unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(true),
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
            // A name that is not UTF-8 was never synced: it stays (and so does the folder).
            if let Ok(n) = entry?.file_name().to_str() {
                if n != "." && n != ".." {
                    names.push(n.to_owned());
                }
            }
        }
        for child in &names {
            let path = format!("{rel}/{child}");
            let Ok(st) = statat(&sub, child.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let kind = FileType::from_raw_mode(st.st_mode);
            let is_dir = kind == FileType::Directory;
            let synced_kind = is_dir || kind == FileType::RegularFile;
            if synced_kind
                && !self
                    .ignores
                    .matched_path_or_any_parents(&path, is_dir)
                    .is_ignore()
            {
                self.remove_one(&sub, child, &path)?;
            }
        }
        match unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(true),
            // Something that stays local, or was written since, is in it: so is the folder.
            Err(rustix::io::Errno::NOTEMPTY) => {
                self.kept.push(rel.to_owned());
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
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
        let got = home.scan(&home.ignores(), &|_| None).unwrap();
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
        let got = home.scan(&home.ignores(), &|_| None).unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["real"]);
        // ... not readable through the home, whatever a pass was told ...
        for p in ["link.txt", "evil/secret", "real/deeper/secret"] {
            assert!(home.open_read(p).is_err(), "{p}");
        }
        // ... and never a way to write or remove outside it.
        assert!(home.temp_beside("evil/planted").is_err());
        assert!(home.temp_beside("real/deeper/planted").is_err());
        assert!(home.make_dir("evil/sub").is_err());
        home.remove("evil", &home.ignores(), &|_, _| true).unwrap();
        home.remove("link.txt", &home.ignores(), &|_, _| true)
            .unwrap();
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
        let all = |_: &str, _: Stamp| true;
        assert_eq!(home.remove("app", &ignores, &all).unwrap(), vec!["app"]);
        assert!(home.remove("docs", &ignores, &all).unwrap().is_empty());
        assert!(dir.path().join("app/node_modules/x/i.js").exists());
        assert!(!dir.path().join("app/src").exists());
        assert!(!dir.path().join("app/README.md").exists());
        assert!(!dir.path().join("docs").exists());
        home.remove("gone", &ignores, &all).unwrap();
        // What was written after the scan (not as the last pass left it) stays too.
        std::fs::create_dir_all(dir.path().join("w/sub")).unwrap();
        std::fs::write(dir.path().join("w/sub/old.txt"), "synced").unwrap();
        let old = home.stat("w/sub/old.txt").unwrap().unwrap();
        std::fs::write(dir.path().join("w/sub/new.txt"), "written since").unwrap();
        let known = move |p: &str, st: Stamp| p == "w/sub/old.txt" && st == old;
        assert_eq!(
            home.remove("w", &ignores, &known).unwrap(),
            vec!["w/sub", "w"]
        );
        assert!(!dir.path().join("w/sub/old.txt").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("w/sub/new.txt")).unwrap(),
            "written since"
        );
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
        assert!(home
            .put_in_place(tmp, "a.txt", false, seen)
            .unwrap()
            .is_none());
        assert_eq!(
            std::fs::read_to_string(home.abs("a.txt")).unwrap(),
            "mine, edited"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut tmp = home.temp_beside("sub/b.sh").unwrap();
        tmp.file.write_all(b"#!/bin/sh").unwrap();
        let placed = home.put_in_place(tmp, "sub/b.sh", true, None).unwrap();
        assert_eq!(placed, home.stat("sub/b.sh").unwrap());
        let mode = std::fs::metadata(home.abs("sub/b.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(std::fs::read(home.abs("sub/b.sh")).unwrap(), b"#!/bin/sh");
        // A file that appeared where none was is not replaced either.
        let mut tmp = home.temp_beside("c.txt").unwrap();
        tmp.file.write_all(b"theirs").unwrap();
        std::fs::write(home.abs("c.txt"), "appeared").unwrap();
        assert!(home
            .put_in_place(tmp, "c.txt", false, None)
            .unwrap()
            .is_none());
        assert_eq!(
            std::fs::read_to_string(home.abs("c.txt")).unwrap(),
            "appeared"
        );
        // A pipe where a file was is refused, not waited on.
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            home.abs("fifo"),
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(home.open_read("fifo").is_err());
    }
}
