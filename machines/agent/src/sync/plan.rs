//! What a sync pass does, decided without touching a disk or a socket: from what both sides
//! agreed on at the last pass (`Synced`), what the home holds now (`Local`) and what the
//! drive holds now (`Remote`), the actions that bring them together. A three-way merge by
//! path: a side changed when it differs from the last agreement; one side's change wins
//! over no change; changes on both sides keep both (the drive's at the path, the home's
//! beside it); nothing either side wrote is dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    File,
    Dir,
}

/// What tells a local file's content changed without reading it: when all of these are
/// as they were, so is the content (`cp -p` or `tar x` keep a size and a time, not the
/// change time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
}

/// What both sides held at a path after the last pass that touched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Synced {
    pub id: String,
    pub version: i64,
    pub kind: Kind,
    /// SHA-256 (hex) of a file's content.
    pub sha: Option<String>,
    pub exec: bool,
    /// The local file's stamp then.
    #[serde(default)]
    pub stamp: Stamp,
}

/// A path in the home now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub kind: Kind,
    pub sha: Option<String>,
    pub exec: bool,
}

/// A path in the drive now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub id: String,
    pub version: i64,
    pub kind: Kind,
    pub sha: Option<String>,
    pub exec: bool,
}

/// One step of a pass. Paths are relative to the home, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Both sides hold the same: remember it.
    Adopt {
        path: String,
        remote: Remote,
    },
    /// Neither side holds it any more.
    Forget {
        path: String,
    },
    /// The drive's file replaces (or becomes) the home's.
    Download {
        path: String,
        remote: Remote,
    },
    MakeLocalDir {
        path: String,
        remote: Remote,
    },
    /// Removes a file, or a folder with everything under it.
    DeleteLocal {
        path: String,
    },
    /// The home's file goes to the drive: a new version of `base` (id, version it was
    /// based on), or a new file.
    Upload {
        path: String,
        base: Option<(String, i64)>,
    },
    /// Only the executable bit changed in the home.
    SetExec {
        path: String,
        id: String,
        exec: bool,
    },
    MakeRemoteDir {
        path: String,
    },
    /// Moves a file or folder (with everything under it) to the drive's Trash.
    DeleteRemote {
        path: String,
        id: String,
    },
    /// A rename or move in the home, done as one in the drive: the item keeps its id,
    /// its history and its links.
    MoveRemote {
        from: String,
        to: String,
        id: String,
    },
    /// Changed on both sides: the home's version moves to `copy` (uploaded as a new file
    /// by the next pass) and the drive's takes the path.
    Conflict {
        path: String,
        copy: String,
        remote: Remote,
    },
}

impl Action {
    /// The order a pass runs actions in: folders are made before what goes in them, moves
    /// before uploads (a moved file is no new one), and deletes last, deepest first.
    fn rank(&self) -> (u8, i64) {
        let depth = |p: &str| p.matches('/').count() as i64;
        match self {
            Action::MakeRemoteDir { path } | Action::MakeLocalDir { path, .. } => (0, depth(path)),
            Action::MoveRemote { from, .. } => (1, depth(from)),
            Action::Conflict { .. } => (2, 0),
            Action::Upload { .. }
            | Action::Download { .. }
            | Action::SetExec { .. }
            | Action::Adopt { .. } => (3, 0),
            Action::DeleteRemote { path, .. } | Action::DeleteLocal { path } => (4, -depth(path)),
            Action::Forget { .. } => (5, 0),
        }
    }
}

/// The name a conflicting home version is kept under: `report (conflict from
/// terminal).txt`, numbered when that is taken too.
pub fn conflict_copy(path: &str, taken: impl Fn(&str) -> bool) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, path),
    };
    let join = |n: String| match dir {
        Some(d) => format!("{d}/{n}"),
        None => n,
    };
    let mut note = "conflict from terminal".to_owned();
    for i in 2.. {
        let candidate = join(cloudos_proto::names::with_note(name, &note));
        if !taken(&candidate) {
            return candidate;
        }
        note = format!("conflict from terminal {i}");
    }
    unreachable!("some number is free")
}

fn under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

fn same(l: &Local, r: &Remote) -> bool {
    l.kind == r.kind && (l.kind == Kind::Dir || (l.sha == r.sha && l.exec == r.exec))
}

fn local_changed(s: &Synced, l: Option<&Local>) -> bool {
    match l {
        None => true,
        Some(l) => {
            l.kind != s.kind || (l.kind == Kind::File && (l.sha != s.sha || l.exec != s.exec))
        }
    }
}

fn remote_changed(s: &Synced, r: Option<&Remote>) -> bool {
    match r {
        None => true,
        Some(r) => {
            r.id != s.id
                || r.kind != s.kind
                || (r.kind == Kind::File && (r.version != s.version || r.exec != s.exec))
        }
    }
}

/// The actions of one pass, in the order to run them. Run them, look again and plan
/// again until nothing is left: some changes take two passes (a file replaced by a
/// folder is deleted, then made). `protected`: folders of the drive holding something the
/// sync does not show (what stays local by the rules, present in the drive anyway): they
/// are never deleted whole.
pub fn plan(
    synced: &BTreeMap<String, Synced>,
    local: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, Remote>,
    protected: &BTreeSet<String>,
) -> Vec<Action> {
    let paths: BTreeSet<&String> = synced
        .keys()
        .chain(local.keys())
        .chain(remote.keys())
        .collect();
    let mut actions = Vec::new();
    for path in paths {
        let (s, l, r) = (synced.get(path), local.get(path), remote.get(path));
        let p = path.clone();
        let download = |r: &Remote| match r.kind {
            Kind::File => Action::Download {
                path: p.clone(),
                remote: r.clone(),
            },
            Kind::Dir => Action::MakeLocalDir {
                path: p.clone(),
                remote: r.clone(),
            },
        };
        let upload = |l: &Local, base: Option<&Synced>| match l.kind {
            Kind::File => Action::Upload {
                path: p.clone(),
                base: base.map(|s| (s.id.clone(), s.version)),
            },
            Kind::Dir => Action::MakeRemoteDir { path: p.clone() },
        };
        let conflict = |r: &Remote| Action::Conflict {
            path: p.clone(),
            copy: conflict_copy(&p, |c| local.contains_key(c) || remote.contains_key(c)),
            remote: r.clone(),
        };
        let action = match (s, l, r) {
            (_, Some(l), Some(r)) if same(l, r) => {
                let agreed = s.is_some_and(|s| {
                    s.id == r.id && s.version == r.version && s.sha == r.sha && s.exec == r.exec
                });
                (!agreed).then(|| Action::Adopt {
                    path: p.clone(),
                    remote: r.clone(),
                })
            }
            (None, Some(l), None) => Some(upload(l, None)),
            (None, None, Some(r)) => Some(download(r)),
            (None, Some(_), Some(r)) => Some(conflict(r)),
            (Some(_), None, None) => Some(Action::Forget { path: p.clone() }),
            (None, None, None) => None,
            (Some(s), l, r) => match (local_changed(s, l), remote_changed(s, r), l, r) {
                (false, false, ..) => None,
                (true, false, None, Some(r)) => Some(Action::DeleteRemote {
                    path: p.clone(),
                    id: r.id.clone(),
                }),
                (true, false, Some(l), Some(r)) => Some(
                    if l.kind == Kind::File && s.kind == Kind::File && l.sha == s.sha {
                        Action::SetExec {
                            path: p.clone(),
                            id: r.id.clone(),
                            exec: l.exec,
                        }
                    } else if l.kind == s.kind {
                        upload(l, Some(s))
                    } else {
                        // A file became a folder or the reverse: the old one goes first,
                        // the next pass adds the new.
                        Action::DeleteRemote {
                            path: p.clone(),
                            id: r.id.clone(),
                        }
                    },
                ),
                (false, true, _, None) => Some(Action::DeleteLocal { path: p.clone() }),
                (false, true, _, Some(r)) => Some(if r.kind == s.kind {
                    download(r)
                } else {
                    Action::DeleteLocal { path: p.clone() }
                }),
                (true, true, None, None) => Some(Action::Forget { path: p.clone() }),
                (true, true, None, Some(r)) => Some(download(r)),
                (true, true, Some(l), None) => Some(upload(l, None)),
                (true, true, Some(_), Some(r)) => Some(conflict(r)),
                // An absent side is a changed one: not reached.
                (true, false, _, None) => None,
            },
        };
        actions.extend(action);
    }
    let actions = pair_moves(actions, synced, local);
    let mut actions = guard_folder_deletes(actions, synced, local, remote, protected);
    actions.sort_by_key(Action::rank);
    actions
}

/// A folder deleted on one side goes on the other only if nothing under it changed there
/// since; otherwise the folder is made again and what changed in it is kept. When it does
/// go, the actions for what was under it are moot.
fn guard_folder_deletes(
    actions: Vec<Action>,
    synced: &BTreeMap<String, Synced>,
    local: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, Remote>,
    protected: &BTreeSet<String>,
) -> Vec<Action> {
    let mut out = Vec::with_capacity(actions.len());
    let mut gone: Vec<String> = Vec::new();
    let copy = |p: &str| conflict_copy(p, |c| local.contains_key(c) || remote.contains_key(c));
    for a in actions {
        match &a {
            Action::DeleteRemote { path, .. }
                if synced.get(path).is_some_and(|s| s.kind == Kind::Dir) =>
            {
                let changed_inside = protected.contains(path)
                    || remote
                        .iter()
                        .any(|(p, r)| under(p, path) && remote_changed_or_new(synced.get(p), r));
                if changed_inside {
                    let dir = remote[path].clone();
                    // A file took the folder's place in the home: both are kept.
                    out.push(match local.get(path) {
                        Some(l) if l.kind == Kind::File => Action::Conflict {
                            path: path.clone(),
                            copy: copy(path),
                            remote: dir,
                        },
                        _ => Action::MakeLocalDir {
                            path: path.clone(),
                            remote: dir,
                        },
                    });
                } else {
                    gone.push(path.clone());
                    out.push(a);
                }
            }
            Action::DeleteLocal { path }
                if local.get(path).is_some_and(|l| l.kind == Kind::Dir) =>
            {
                let changed_inside = local.iter().any(|(p, l)| {
                    under(p, path) && synced.get(p).is_none_or(|s| local_changed(s, Some(l)))
                });
                if changed_inside {
                    // A file took the folder's place in the drive: both are kept.
                    out.push(match remote.get(path) {
                        Some(r) if r.kind == Kind::File => Action::Conflict {
                            path: path.clone(),
                            copy: copy(path),
                            remote: r.clone(),
                        },
                        _ => Action::MakeRemoteDir { path: path.clone() },
                    });
                } else {
                    gone.push(path.clone());
                    out.push(a);
                }
            }
            _ => out.push(a),
        }
    }
    // Under a folder that goes, every side's entries go with it: what is left to do is to
    // forget them.
    out.into_iter()
        .map(|a| match &a {
            Action::DeleteRemote { path, .. }
            | Action::DeleteLocal { path }
            | Action::Download { path, .. }
            | Action::Upload { path, .. }
            | Action::SetExec { path, .. }
            | Action::MakeLocalDir { path, .. }
            | Action::MakeRemoteDir { path }
            | Action::Adopt { path, .. }
                if gone.iter().any(|g| under(path, g)) =>
            {
                Action::Forget { path: path.clone() }
            }
            _ => a,
        })
        .collect()
}

fn remote_changed_or_new(s: Option<&Synced>, r: &Remote) -> bool {
    s.is_none_or(|s| remote_changed(s, Some(r)))
}

/// Pairs what vanished from the home with what appeared in it holding the same content:
/// a rename or a move, done as a move in the drive. A folder pairs when every file under
/// it is found under the new one, unchanged; a file pairs by its checksum.
fn pair_moves(
    actions: Vec<Action>,
    synced: &BTreeMap<String, Synced>,
    local: &BTreeMap<String, Local>,
) -> Vec<Action> {
    // A folder's signature: its files' relative paths and checksums.
    let signature = |dir: &str, files: &mut dyn Iterator<Item = (&String, Option<&String>)>| {
        let mut sig: Vec<(String, Option<String>)> = files
            .filter(|(p, _)| under(p, dir))
            .map(|(p, sha)| (p[dir.len()..].to_owned(), sha.cloned()))
            .collect();
        sig.sort();
        sig
    };
    let mut moves: Vec<(String, String, String)> = Vec::new();
    let made: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::MakeRemoteDir { path } => Some(path.clone()),
            _ => None,
        })
        .collect();
    let mut taken_new: BTreeSet<String> = BTreeSet::new();
    // Parents come before their children here (actions are in path order): a folder under
    // one that already moved moves with it, and a new folder under a move's target is part
    // of that move.
    for a in &actions {
        if let Action::DeleteRemote { path, id } = a {
            let Some(s) = synced.get(path) else { continue };
            if s.kind != Kind::Dir || moves.iter().any(|(f, _, _)| under(path, f)) {
                continue;
            }
            let old = signature(
                path,
                &mut synced
                    .iter()
                    .filter(|(_, s)| s.kind == Kind::File)
                    .map(|(p, s)| (p, s.sha.as_ref())),
            );
            if old.is_empty() {
                continue;
            }
            let found = made.iter().find(|m| {
                !taken_new.contains(*m)
                    && !taken_new.iter().any(|t| under(m, t))
                    && signature(
                        m,
                        &mut local
                            .iter()
                            .filter(|(_, l)| l.kind == Kind::File)
                            .map(|(p, l)| (p, l.sha.as_ref())),
                    ) == old
            });
            if let Some(m) = found {
                taken_new.insert(m.clone());
                moves.push((path.clone(), m.clone(), id.clone()));
            }
        }
    }
    let moved_from = |p: &str| moves.iter().any(|(f, _, _)| p == f || under(p, f));
    let moved_to = |p: &str| moves.iter().any(|(_, t, _)| p == t || under(p, t));
    let mut out: Vec<Action> = actions
        .into_iter()
        .filter(|a| match a {
            Action::DeleteRemote { path, .. } | Action::Forget { path } => !moved_from(path),
            Action::Upload { path, base: None } | Action::MakeRemoteDir { path } => !moved_to(path),
            _ => true,
        })
        .collect();
    out.extend(moves.iter().map(|(from, to, id)| Action::MoveRemote {
        from: from.clone(),
        to: to.clone(),
        id: id.clone(),
    }));
    // Files: a delete and a new upload of the same content.
    let mut deleted: Vec<(usize, String, String, Option<String>)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a {
            Action::DeleteRemote { path, id } => synced
                .get(path)
                .filter(|s| s.kind == Kind::File)
                .map(|s| (i, path.clone(), id.clone(), s.sha.clone())),
            _ => None,
        })
        .collect();
    let mut drop = BTreeSet::new();
    let mut file_moves = Vec::new();
    for (i, a) in out.iter().enumerate() {
        if let Action::Upload { path, base: None } = a {
            let sha = local.get(path).and_then(|l| l.sha.clone());
            if let Some(k) = deleted
                .iter()
                .position(|(_, _, _, s)| sha.is_some() && *s == sha)
            {
                let (j, from, id, _) = deleted.remove(k);
                drop.insert(i);
                drop.insert(j);
                file_moves.push(Action::MoveRemote {
                    from,
                    to: path.clone(),
                    id,
                });
            }
        }
    }
    let mut out: Vec<Action> = out
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, a)| a)
        .collect();
    out.extend(file_moves);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(s: &str) -> Option<String> {
        Some(format!("sha-{s}"))
    }
    fn synced(id: &str, v: i64, content: &str) -> Synced {
        Synced {
            id: id.into(),
            version: v,
            kind: Kind::File,
            sha: sha(content),
            exec: false,
            stamp: Stamp::default(),
        }
    }
    fn synced_dir(id: &str) -> Synced {
        Synced {
            kind: Kind::Dir,
            sha: None,
            ..synced(id, 1, "")
        }
    }
    fn local(content: &str) -> Local {
        Local {
            kind: Kind::File,
            sha: sha(content),
            exec: false,
        }
    }
    fn local_dir() -> Local {
        Local {
            kind: Kind::Dir,
            sha: None,
            exec: false,
        }
    }
    fn remote(id: &str, v: i64, content: &str) -> Remote {
        Remote {
            id: id.into(),
            version: v,
            kind: Kind::File,
            sha: sha(content),
            exec: false,
        }
    }
    fn remote_dir(id: &str) -> Remote {
        Remote {
            kind: Kind::Dir,
            sha: None,
            ..remote(id, 1, "")
        }
    }
    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }
    fn map<T>(items: Vec<(&str, T)>) -> BTreeMap<String, T> {
        items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn one_sided_changes_flow_to_the_other_side() {
        let s = map(vec![
            ("a.txt", synced("A", 1, "a")),
            ("b.txt", synced("B", 1, "b")),
        ]);
        let l = map(vec![
            ("a.txt", local("a2")),
            ("b.txt", local("b")),
            ("new.txt", local("n")),
        ]);
        let r = map(vec![
            ("a.txt", remote("A", 1, "a")),
            ("b.txt", remote("B", 2, "b2")),
            ("cloud.txt", remote("C", 1, "c")),
        ]);
        let got = plan(&s, &l, &r, &none());
        assert!(got.contains(&Action::Upload {
            path: "a.txt".into(),
            base: Some(("A".into(), 1))
        }));
        assert!(got.contains(&Action::Download {
            path: "b.txt".into(),
            remote: remote("B", 2, "b2")
        }));
        assert!(got.contains(&Action::Upload {
            path: "new.txt".into(),
            base: None
        }));
        assert!(got.contains(&Action::Download {
            path: "cloud.txt".into(),
            remote: remote("C", 1, "c")
        }));
        assert_eq!(got.len(), 4, "{got:?}");
    }

    #[test]
    fn a_change_on_both_sides_keeps_both() {
        let s = map(vec![("src/app.js", synced("A", 1, "a"))]);
        let l = map(vec![("src", local_dir()), ("src/app.js", local("mine"))]);
        let r = map(vec![
            ("src", remote_dir("S")),
            ("src/app.js", remote("A", 2, "theirs")),
        ]);
        let got = plan(&s, &l, &r, &none());
        assert!(
            got.contains(&Action::Conflict {
                path: "src/app.js".into(),
                copy: "src/app (conflict from terminal).js".into(),
                remote: remote("A", 2, "theirs"),
            }),
            "{got:?}"
        );
        // The same new content on both sides is no conflict.
        let l = map(vec![("src", local_dir()), ("src/app.js", local("theirs"))]);
        let got = plan(&s, &l, &r, &none());
        assert!(
            got.iter().all(|a| matches!(a, Action::Adopt { .. })),
            "{got:?}"
        );
        // A copy's name never overwrites what exists.
        let taken = |p: &str| p == "x (conflict from terminal).txt";
        assert_eq!(
            conflict_copy("x.txt", taken),
            "x (conflict from terminal 2).txt"
        );
    }

    #[test]
    fn deletes_follow_unless_the_other_side_changed_it() {
        let s = map(vec![
            ("a.txt", synced("A", 1, "a")),
            ("b.txt", synced("B", 1, "b")),
        ]);
        // a.txt deleted in the home, b.txt deleted in the drive.
        let l = map(vec![("b.txt", local("b"))]);
        let r = map(vec![("a.txt", remote("A", 1, "a"))]);
        let got = plan(&s, &l, &r, &none());
        assert!(got.contains(&Action::DeleteRemote {
            path: "a.txt".into(),
            id: "A".into()
        }));
        assert!(got.contains(&Action::DeleteLocal {
            path: "b.txt".into()
        }));
        // Deleted in the home but edited in the drive: the edit comes back.
        let r = map(vec![("a.txt", remote("A", 2, "a2"))]);
        let l = map(vec![]);
        let s = map(vec![("a.txt", synced("A", 1, "a"))]);
        assert_eq!(
            plan(&s, &l, &r, &none()),
            vec![Action::Download {
                path: "a.txt".into(),
                remote: remote("A", 2, "a2")
            }]
        );
        // Deleted in the drive but edited in the home: it goes back as a new file.
        let l = map(vec![("a.txt", local("a2"))]);
        assert_eq!(
            plan(&s, &l, &map(vec![]), &none()),
            vec![Action::Upload {
                path: "a.txt".into(),
                base: None
            }]
        );
    }

    #[test]
    fn a_removed_folder_goes_whole_unless_something_in_it_changed() {
        let s = map(vec![
            ("d", synced_dir("D")),
            ("d/a", synced("A", 1, "a")),
            ("d/b", synced("B", 1, "b")),
        ]);
        let r = map(vec![
            ("d", remote_dir("D")),
            ("d/a", remote("A", 1, "a")),
            ("d/b", remote("B", 1, "b")),
        ]);
        let got = plan(&s, &map(vec![]), &r, &none());
        assert_eq!(
            got[0],
            Action::DeleteRemote {
                path: "d".into(),
                id: "D".into()
            },
            "{got:?}"
        );
        assert!(
            got[1..].iter().all(|a| matches!(a, Action::Forget { .. })),
            "{got:?}"
        );
        // Someone added a file to it in the drive meanwhile: the folder stays, with it.
        let mut r2 = r.clone();
        r2.insert("d/new".into(), remote("N", 1, "n"));
        let got = plan(&s, &map(vec![]), &r2, &none());
        assert!(
            got.contains(&Action::MakeLocalDir {
                path: "d".into(),
                remote: remote_dir("D")
            }),
            "{got:?}"
        );
        assert!(got.contains(&Action::Download {
            path: "d/new".into(),
            remote: remote("N", 1, "n")
        }));
        assert!(got.contains(&Action::DeleteRemote {
            path: "d/a".into(),
            id: "A".into()
        }));
    }

    #[test]
    fn renames_and_moves_are_moves() {
        let s = map(vec![
            ("d", synced_dir("D")),
            ("d/a", synced("A", 1, "a")),
            ("x.txt", synced("X", 3, "x")),
        ]);
        let r = map(vec![
            ("d", remote_dir("D")),
            ("d/a", remote("A", 1, "a")),
            ("x.txt", remote("X", 3, "x")),
        ]);
        // `mv d e; mv x.txt e/y.txt`
        let l = map(vec![
            ("e", local_dir()),
            ("e/a", local("a")),
            ("e/y.txt", local("x")),
        ]);
        let got = plan(&s, &l, &r, &none());
        assert!(
            got.contains(&Action::MoveRemote {
                from: "x.txt".into(),
                to: "e/y.txt".into(),
                id: "X".into()
            }),
            "{got:?}"
        );
        // The folder's signature changed (y.txt joined it): its files move one by one
        // into a new folder, and the old one goes.
        assert!(
            got.contains(&Action::MoveRemote {
                from: "d/a".into(),
                to: "e/a".into(),
                id: "A".into()
            }),
            "{got:?}"
        );
        assert!(got.contains(&Action::MakeRemoteDir { path: "e".into() }));
        // A plain folder rename moves the folder itself.
        let l = map(vec![
            ("e", local_dir()),
            ("e/a", local("a")),
            ("x.txt", local("x")),
        ]);
        let got = plan(&s, &l, &r, &none());
        assert_eq!(
            got,
            vec![Action::MoveRemote {
                from: "d".into(),
                to: "e".into(),
                id: "D".into()
            }]
        );
    }

    #[test]
    fn a_folder_holding_what_the_sync_does_not_show_is_never_deleted_whole() {
        // `rm -rf Sales` in the home, while the drive's Sales also holds a `target/` the
        // rules keep out of the home: the synced files go one by one, the folder stays.
        let s = map(vec![
            ("Sales", synced_dir("S")),
            ("Sales/a", synced("A", 1, "a")),
        ]);
        let r = map(vec![
            ("Sales", remote_dir("S")),
            ("Sales/a", remote("A", 1, "a")),
        ]);
        let protected: BTreeSet<String> = ["Sales".to_owned()].into();
        let got = plan(&s, &map(vec![]), &r, &protected);
        assert!(
            got.contains(&Action::DeleteRemote {
                path: "Sales/a".into(),
                id: "A".into()
            }),
            "{got:?}"
        );
        assert!(got.contains(&Action::MakeLocalDir {
            path: "Sales".into(),
            remote: remote_dir("S")
        }));
        assert!(!got.contains(&Action::DeleteRemote {
            path: "Sales".into(),
            id: "S".into()
        }));
    }

    #[test]
    fn a_folder_replaced_by_a_file_on_one_side_while_the_other_changed_in_it_keeps_both() {
        let s = map(vec![("d", synced_dir("D")), ("d/a", synced("A", 1, "a"))]);
        // The home made d a file; the drive changed d/a meanwhile.
        let l = map(vec![("d", local("now a file"))]);
        let r = map(vec![("d", remote_dir("D")), ("d/a", remote("A", 2, "a2"))]);
        let got = plan(&s, &l, &r, &none());
        assert!(
            got.contains(&Action::Conflict {
                path: "d".into(),
                copy: "d (conflict from terminal)".into(),
                remote: remote_dir("D"),
            }),
            "{got:?}"
        );
    }

    #[test]
    fn a_folder_inside_a_moved_folder_moves_with_it() {
        // `mv d e; cp -r e/sub c`: d moves to e (sub with it); c is a new folder.
        let s = map(vec![
            ("d", synced_dir("D")),
            ("d/sub", synced_dir("SUB")),
            ("d/sub/x", synced("X", 1, "x")),
        ]);
        let r = map(vec![
            ("d", remote_dir("D")),
            ("d/sub", remote_dir("SUB")),
            ("d/sub/x", remote("X", 1, "x")),
        ]);
        let l = map(vec![
            ("c", local_dir()),
            ("c/x", local("x")),
            ("e", local_dir()),
            ("e/sub", local_dir()),
            ("e/sub/x", local("x")),
        ]);
        let got = plan(&s, &l, &r, &none());
        let moves: Vec<&Action> = got
            .iter()
            .filter(|a| matches!(a, Action::MoveRemote { .. }))
            .collect();
        assert_eq!(
            moves,
            vec![&Action::MoveRemote {
                from: "d".into(),
                to: "e".into(),
                id: "D".into()
            }],
            "{got:?}"
        );
        assert!(got.contains(&Action::MakeRemoteDir { path: "c".into() }));
        assert!(got.contains(&Action::Upload {
            path: "c/x".into(),
            base: None
        }));
    }

    #[test]
    fn the_executable_bit_is_a_change() {
        let s = map(vec![("run.sh", synced("R", 1, "r"))]);
        let r = map(vec![("run.sh", remote("R", 1, "r"))]);
        let mut exec = local("r");
        exec.exec = true;
        let got = plan(&s, &map(vec![("run.sh", exec)]), &r, &none());
        assert_eq!(
            got,
            vec![Action::SetExec {
                path: "run.sh".into(),
                id: "R".into(),
                exec: true
            }]
        );
        let mut r2 = remote("R", 1, "r");
        r2.exec = true;
        let got = plan(
            &s,
            &map(vec![("run.sh", local("r"))]),
            &map(vec![("run.sh", r2.clone())]),
            &none(),
        );
        assert_eq!(
            got,
            vec![Action::Download {
                path: "run.sh".into(),
                remote: r2
            }]
        );
    }

    #[test]
    fn nothing_to_do_when_both_sides_agree() {
        let s = map(vec![("d", synced_dir("D")), ("d/a", synced("A", 1, "a"))]);
        let l = map(vec![("d", local_dir()), ("d/a", local("a"))]);
        let r = map(vec![("d", remote_dir("D")), ("d/a", remote("A", 1, "a"))]);
        assert!(plan(&s, &l, &r, &none()).is_empty());
    }
}
