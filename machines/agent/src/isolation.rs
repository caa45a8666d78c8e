//! What every process of a sandbox runs inside: bubblewrap namespaces (user, pid, mount,
//! ipc, uts) with only the system's read-only directories, a minimal /etc and the user's
//! home visible, the sandbox's network namespace, its cgroup, and a home with a size limit
//! (an ext4 image).

use std::path::{Path, PathBuf};

use cloudos_proto::terminal::SandboxNetwork;

use crate::cgroups::Cgroup;

/// Where the home appears inside the sandbox.
pub const HOME: &str = "/home/user";
/// Where the agent's own binary appears inside the sandbox (it opens terminals there).
pub const HELPER_INSIDE: &str = "/run/cloudos-agent";
/// The user's uid and gid inside the sandbox.
const UID: u32 = 1000;

/// How processes are confined.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The home directory on the host.
    pub home: PathBuf,
    /// Wrap processes in bubblewrap (off on a Fly Machine, which is the sandbox itself).
    pub bwrap: bool,
    /// The unprivileged host uid (and gid) sandboxed processes run as, when the agent is
    /// root: privileges are dropped (`setpriv`) before bubblewrap starts, so the sandbox's
    /// user namespace maps its user to this uid, never to host root.
    pub run_as: Option<u32>,
    /// What network the sandbox gets.
    pub network: SandboxNetwork,
    /// The sandbox's own network namespace, joined before bubblewrap starts (made by the
    /// agent when root; without root, `SandboxNetwork::None` is bubblewrap's own).
    pub netns: Option<PathBuf>,
    /// The sandbox's cgroup, if limits are on.
    pub cgroup: Option<Cgroup>,
    /// Files the agent wrote for the sandbox (its /etc/passwd, hosts, resolv.conf).
    pub state: PathBuf,
    /// The agent's binary, bound read-only at [`HELPER_INSIDE`].
    pub helper: PathBuf,
}

/// Why the sandbox could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("preparing the sandbox: {0}")]
    Io(#[from] std::io::Error),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
}

impl Isolation {
    /// Writes the files the sandbox's view of /etc needs and, when processes run as an
    /// unprivileged uid, gives the home to that uid and checks it can reach what bubblewrap
    /// binds.
    pub fn prepare(&self) -> Result<(), IsolationError> {
        std::fs::create_dir_all(&self.state)?;
        std::fs::create_dir_all(&self.home)?;
        if let Some(uid) = self.run_as {
            own_tree(&self.home, uid)?;
        }
        // The host's system accounts (what programs look up: root, daemon, nobody, …), not
        // its people, and none that would shadow the sandbox user.
        let keep = |file: &str| -> String {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    let id = f.get(2).and_then(|id| id.parse::<u32>().ok());
                    f.first() != Some(&"user") && id.is_some_and(is_system_id)
                })
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let passwd =
            keep("/etc/passwd") + &format!("user:x:{UID}:{UID}:Cloud OS user:{HOME}:/bin/bash\n");
        std::fs::write(self.state.join("passwd"), passwd)?;
        // Without their members: a member list names the host's people.
        let group: String = keep("/etc/group")
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ':').collect();
                format!("{}:\n", f[..f.len().min(3)].join(":"))
            })
            .collect::<String>()
            + &format!("user:x:{UID}:\n");
        std::fs::write(self.state.join("group"), group)?;
        std::fs::write(self.state.join("hostname"), "sandbox\n")?;
        std::fs::write(
            self.state.join("hosts"),
            "127.0.0.1\tlocalhost\n127.0.1.1\tsandbox\n::1\tlocalhost\n",
        )?;
        // slirp4netns forwards name lookups sent to 10.0.2.3 to the host's resolver; with
        // loopback only there is nothing to ask.
        let resolv = match self.network {
            SandboxNetwork::Outbound => "nameserver 10.0.2.3\n".to_owned(),
            SandboxNetwork::None => String::new(),
            SandboxNetwork::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        };
        std::fs::write(self.state.join("resolv.conf"), resolv)?;
        if let Some(uid) = self.run_as {
            self.check_reachable(uid)?;
        }
        Ok(())
    }

    /// Fails, naming the path, when `uid` cannot reach something bubblewrap binds (a data
    /// directory under a private parent such as /root): better at start than a terminal
    /// that never opens.
    fn check_reachable(&self, uid: u32) -> Result<(), IsolationError> {
        let mut paths: Vec<PathBuf> = GENERATED_ETC.iter().map(|f| self.state.join(f)).collect();
        paths.insert(0, self.home.clone());
        paths.push(self.helper.clone());
        let out = std::process::Command::new("setpriv")
            .args(drop_to(uid))
            .args([
                "/bin/sh",
                "-c",
                // The last path is the agent's binary, which must also be executable.
                r#"for p; do test -r "$p" || { echo "$p"; exit 1; }; done; test -x "$p" || { echo "$p"; exit 1; }"#,
                "sh",
            ])
            .args(&paths)
            .output()
            .map_err(|e| IsolationError::Command {
                what: "setpriv".into(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            return Err(IsolationError::Command {
                what: "checking the sandbox user's access".into(),
                detail: format!(
                    "uid {uid} cannot read {path:?}: every directory above it must be traversable by others (chmod o+x), or put the data and the build elsewhere {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        // Unprivileged bubblewrap needs user namespaces; some hosts forbid them (Ubuntu
        // 24.04's AppArmor default, user.max_user_namespaces=0). Better said at start than
        // by every terminal failing.
        let out = std::process::Command::new("setpriv")
            .args(drop_to(uid))
            .args(["bwrap", "--unshare-user", "--uid", "1000", "--gid", "1000"])
            .args(["--ro-bind", "/", "/", "--", "/bin/true"])
            .output()
            .map_err(|e| IsolationError::Command {
                what: "bwrap".into(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(IsolationError::Command {
                what: "starting bubblewrap as the sandbox user".into(),
                detail: format!(
                    "{} (unprivileged user namespaces must be allowed: sysctl user.max_user_namespaces > 0, and on Ubuntu 24.04 kernel.apparmor_restrict_unprivileged_userns=0)",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(())
    }

    /// The environment every sandboxed process starts with (nothing of the agent's leaks).
    pub fn base_env(&self) -> Vec<(String, String)> {
        let home = if self.bwrap {
            HOME.to_owned()
        } else {
            self.home.display().to_string()
        };
        vec![
            ("HOME".into(), home),
            ("USER".into(), "user".into()),
            ("SHELL".into(), "/bin/bash".into()),
            ("TERM".into(), "xterm-256color".into()),
            ("LANG".into(), "C.UTF-8".into()),
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        ]
    }

    /// The program and arguments that run `argv` in the sandbox, starting in `cwd` (a path
    /// inside the sandbox; the home when `None`).
    pub fn wrap(&self, argv: &[String], cwd: Option<&str>) -> Vec<String> {
        self.wrapped(argv, cwd, false, &[])
    }

    /// Like `wrap`, with variables for the sandboxed program only. Under bubblewrap they go
    /// in as `--setenv`, so the processes that run outside the sandbox (the cgroup join,
    /// `setpriv`, bubblewrap itself) never see them: a `LD_PRELOAD` or `PATH` pointing into
    /// the home would otherwise run the user's code there. Without bubblewrap the caller
    /// sets them on the process, which is the sandbox itself (a Fly Machine).
    pub fn wrap_with_env(
        &self,
        argv: &[String],
        cwd: Option<&str>,
        env: &[(String, String)],
    ) -> Vec<String> {
        self.wrapped(argv, cwd, false, env)
    }

    /// Like `wrap` for an interactive shell, which becomes the sandbox's process 1: a shell
    /// reaps the orphans it adopts, so bubblewrap's own init process per terminal is not
    /// needed (one process fewer for every open terminal).
    pub fn wrap_shell(&self, argv: &[String]) -> Vec<String> {
        self.wrapped(argv, None, true, &[])
    }

    fn wrapped(
        &self,
        argv: &[String],
        cwd: Option<&str>,
        as_pid_1: bool,
        env: &[(String, String)],
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(cg) = &self.cgroup {
            // Join the cgroup before bubblewrap starts, so nothing of the sandbox runs outside
            // its limits, even for a moment.
            let joins: Vec<String> = cg
                .procs_files()
                .iter()
                .map(|p| format!("echo $$ > '{}' || exit 125;", p.display()))
                .collect();
            out.extend([
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                format!("{} exec \"$@\"", joins.join(" ")),
                "sh".to_owned(),
            ]);
        }
        if self.bwrap {
            if let Some(ns) = &self.netns {
                // Needs root, so before privileges drop; bubblewrap then keeps this network.
                out.extend(["nsenter".to_owned(), format!("--net={}", ns.display())]);
                out.push("--".to_owned());
            }
            if let Some(uid) = self.run_as {
                // After the cgroup join (which needs root), before bubblewrap.
                out.push("setpriv".to_owned());
                out.extend(drop_to(uid));
            }
            out.extend(self.bwrap_args(cwd, as_pid_1, env));
        } else if let Some(cwd) = cwd {
            // Without bubblewrap, `cwd` is a host path; `env -C` changes to it.
            out.extend(["/usr/bin/env".to_owned(), "-C".to_owned(), cwd.to_owned()]);
        }
        out.extend(argv.iter().cloned());
        out
    }

    fn bwrap_args(
        &self,
        cwd: Option<&str>,
        as_pid_1: bool,
        env: &[(String, String)],
    ) -> Vec<String> {
        let s = |x: &str| x.to_owned();
        let mut a = vec![
            s("bwrap"),
            s("--unshare-user"),
            s("--uid"),
            UID.to_string(),
            s("--gid"),
            UID.to_string(),
            s("--unshare-pid"),
            s("--unshare-ipc"),
            s("--unshare-uts"),
            s("--unshare-cgroup-try"),
            s("--hostname"),
            s("sandbox"),
            s("--die-with-parent"),
            s("--cap-drop"),
            s("ALL"),
        ];
        // No namespace of the agent's: loopback only, unless the host's network was asked
        // for by name (fails closed should an outbound sandbox ever lack its namespace).
        if self.netns.is_none() && self.network != SandboxNetwork::Host {
            a.push(s("--unshare-net"));
        }
        if as_pid_1 {
            a.push(s("--as-pid-1"));
        } else {
            // A command gets a session of its own, so it has no controlling terminal to
            // push input into (TIOCSTI); a shell makes its own session on its PTY.
            a.push(s("--new-session"));
        }
        for (k, v) in env {
            a.extend([s("--setenv"), k.clone(), v.clone()]);
        }
        // The system, read-only; merged-/usr symlinks stay symlinks.
        let mut shown: Vec<String> = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/opt"]
            .iter()
            .map(|d| d.to_string())
            .collect();
        // Of the host's /etc, only what programs need to run: no shadow, ssh host keys,
        // sudoers, machine-id, network or service configuration.
        a.extend([s("--dir"), s("/etc")]);
        shown.extend(shown_etc().iter().cloned());
        for dir in shown {
            let p = Path::new(&dir);
            match std::fs::read_link(p) {
                Ok(target) => a.extend([s("--symlink"), target.display().to_string(), dir]),
                Err(_) if p.exists() => a.extend([s("--ro-bind"), dir.clone(), dir]),
                Err(_) => {}
            }
        }
        for file in GENERATED_ETC {
            a.extend([
                s("--ro-bind"),
                self.state.join(file).display().to_string(),
                format!("/etc/{file}"),
            ]);
        }
        a.extend([
            s("--symlink"),
            s("/proc/self/mounts"),
            s("/etc/mtab"),
            s("--proc"),
            s("/proc"),
            s("--dev"),
            s("/dev"),
            s("--tmpfs"),
            s("/tmp"),
            s("--tmpfs"),
            s("/run"),
            s("--ro-bind"),
            self.helper.display().to_string(),
            s(HELPER_INSIDE),
            s("--bind"),
            self.home.display().to_string(),
            s(HOME),
            s("--chdir"),
            s(cwd.unwrap_or(HOME)),
            s("--"),
        ]);
        a
    }
}

/// Whether a host uid or gid is a system account's (Debian: below 1000, and `nogroup`/
/// `nobody`), never a person's.
fn is_system_id(id: u32) -> bool {
    id < 1000 || id == 65534
}

/// The sandbox's own /etc files, written by [`Isolation::prepare`].
const GENERATED_ETC: &[&str] = &["passwd", "group", "hostname", "hosts", "resolv.conf"];

/// Entries of the host's /etc a sandbox sees (read-only), by name or by a prefix ending in
/// `*`: the dynamic linker's cache, certificates, shells' and editors' defaults, time zone,
/// locale and MIME data. Not the toolchains' system configuration (`gitconfig`, `npmrc`,
/// `pip.conf`, `maven`, `wgetrc`, `environment`), where an operator may keep proxy
/// credentials or registry tokens: a sandbox configures its tools in its own home.
const HOST_ETC: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "bash_completion",
    "bash_completion.d",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "host.conf",
    "inputrc",
    "java-*",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "locale.gen",
    "localtime",
    "login.defs",
    "magic",
    "magic.mime",
    "manpath.config",
    "mime.types",
    "nanorc",
    "networks",
    "nsswitch.conf",
    "os-release",
    "perl",
    "profile",
    "profile.d",
    "protocols",
    "python3*",
    "services",
    "shells",
    "skel",
    "ssl",
    "terminfo",
    "timezone",
    "vim",
    "xdg",
    "xml",
];

/// The paths of the host's /etc entries in [`HOST_ETC`] that exist here (read once: every
/// shell and command is wrapped with them).
fn shown_etc() -> &'static [String] {
    static SHOWN: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SHOWN.get_or_init(read_shown_etc)
}

fn read_shown_etc() -> Vec<String> {
    let names: Vec<String> = std::fs::read_dir("/etc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut shown: Vec<String> = names
        .into_iter()
        .filter(|n| {
            HOST_ETC.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => n.starts_with(prefix),
                None => n == p,
            })
        })
        .map(|n| format!("/etc/{n}"))
        .collect();
    shown.sort();
    shown
}

/// `setpriv` arguments that become `uid` with no supplementary groups, no capabilities
/// (none kept, none inheritable, none in the bounding set) and no way to gain privileges.
fn drop_to(uid: u32) -> Vec<String> {
    vec![
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".to_owned(),
        "--inh-caps=-all".to_owned(),
        "--bounding-set=-all".to_owned(),
        "--no-new-privs".to_owned(),
        "--".to_owned(),
    ]
}

/// Gives `root` and everything under it to `uid` (the home of a sandbox that ran as host
/// root before, or a fresh image); skipped when the top already belongs to it. Symlinks are
/// changed themselves, never followed.
fn own_tree(root: &Path, uid: u32) -> Result<(), IsolationError> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::symlink_metadata(root)?.uid() == uid {
        return Ok(());
    }
    // The top changes last: a walk cut short (an agent killed mid-way) is redone in full
    // at the next start, since the top still shows the old owner.
    let mut stack: Vec<PathBuf> = std::fs::read_dir(root)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        std::os::unix::fs::lchown(&path, Some(uid), Some(uid))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    std::os::unix::fs::lchown(root, Some(uid), Some(uid))?;
    Ok(())
}

/// Runs `cmd` to its end (with `input` on its stdin); its stderr is the error's detail.
pub(crate) fn run_with_input(
    what: &str,
    cmd: &mut std::process::Command,
    input: Option<&str>,
) -> Result<(), IsolationError> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| IsolationError::Command {
            what: what.to_owned(),
            detail: format!("{e} (cargo xtask setup installs what the agent runs)"),
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    if let Some(input) = input {
        // A program that exits before reading all of it says why on stderr, read below.
        match stdin.write_all(input.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
    }
    drop(stdin);
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(IsolationError::Command {
            what: what.to_owned(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Whether `path` is a mount point now.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    let canon = canon.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(canon.as_str()))
}

/// Mounts the home image at `home`, creating an empty ext4 image of `size_bytes` first if
/// there is none: the file system itself enforces the size, and the image persists across
/// sandbox stops. Needs root (a loop mount).
pub fn mount_home_image(image: &Path, size_bytes: u64, home: &Path) -> Result<(), IsolationError> {
    std::fs::create_dir_all(home)?;
    if is_mounted(home) {
        return Ok(());
    }
    use std::os::unix::fs::OpenOptionsExt;
    if !image.exists() {
        if let Some(dir) = image.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = image.with_extension("new");
        // The image holds the user's files: readable by its owner only, whatever the umask.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?
            .set_len(size_bytes)?;
        // -m 0: no blocks reserved for root, the user gets the whole size.
        run_with_input(
            "mkfs.ext4",
            std::process::Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0"])
                .arg(&tmp),
            None,
        )?;
        std::fs::rename(&tmp, image)?;
    } else if std::fs::metadata(image)?.len() < size_bytes {
        // The quota grew since the image was made: the home grows with it (never shrinks:
        // it may hold more than the new size). Offline, before the mount, as resize2fs
        // wants a checked file system.
        std::fs::OpenOptions::new()
            .write(true)
            .open(image)?
            .set_len(size_bytes)?;
        // Exit 1: errors were found and fixed (a sandbox that was killed), which is fine.
        let checked = std::process::Command::new("e2fsck")
            .args(["-f", "-p"])
            .arg(image)
            .output()?;
        if checked.status.code().is_none_or(|c| c > 1) {
            return Err(IsolationError::Command {
                what: "checking the home image before growing it".into(),
                detail: String::from_utf8_lossy(&checked.stderr).trim().to_owned(),
            });
        }
        run_with_input(
            "growing the home image",
            std::process::Command::new("resize2fs").arg(image),
            None,
        )?;
    }
    run_with_input(
        "mounting the home image",
        std::process::Command::new("mount")
            .args(["-o", "loop,nosuid,nodev"])
            .arg(image)
            .arg(home),
        None,
    )?;
    // The image's root (and lost+found) belongs to root outside, which is the sandbox user
    // inside its user namespace.
    Ok(())
}

/// Unmounts the home image (lazily: a process that is still dying may hold it briefly).
pub fn unmount_home(home: &Path) {
    if is_mounted(home) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(home)
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(bwrap: bool, network: SandboxNetwork) -> Isolation {
        Isolation {
            home: PathBuf::from("/data/sandboxes/u1/home"),
            bwrap,
            run_as: None,
            network,
            netns: None,
            cgroup: Some(Cgroup::V2 {
                dir: PathBuf::from("/sys/fs/cgroup/cloudos/s1"),
            }),
            state: PathBuf::from("/data/sandboxes/u1/state"),
            helper: PathBuf::from("/usr/local/bin/cloudos-agent"),
        }
    }

    #[test]
    fn joins_the_cgroup_then_enters_bubblewrap_with_only_the_home_writable() {
        let argv = iso(true, SandboxNetwork::None).wrap(&["bash".into(), "-l".into()], None);
        assert_eq!(argv[0], "/bin/sh");
        assert!(argv[2].contains("/sys/fs/cgroup/cloudos/s1/cgroup.procs"));
        let bwrap = argv.iter().position(|a| a == "bwrap").unwrap();
        let rest = &argv[bwrap..];
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--die-with-parent",
        ] {
            assert!(rest.iter().any(|a| a == flag), "{flag}");
        }
        let binds: Vec<&[String]> = rest.windows(3).filter(|w| w[0] == "--bind").collect();
        assert_eq!(binds.len(), 1, "the home is the only writable bind");
        let helper = rest.iter().position(|a| a == HELPER_INSIDE).unwrap();
        assert_eq!(
            rest[helper - 2],
            "--ro-bind",
            "the agent binary is read-only inside"
        );
        assert_eq!(binds[0][1], "/data/sandboxes/u1/home");
        assert_eq!(binds[0][2], HOME);
        assert_eq!(&argv[argv.len() - 2..], ["bash", "-l"]);
    }

    #[test]
    fn only_a_shell_is_the_sandboxs_process_1() {
        let options = |argv: Vec<String>| -> Vec<String> {
            let end = argv.iter().position(|a| a == "--").unwrap();
            argv[..end].to_vec()
        };
        let shell = options(iso(true, SandboxNetwork::None).wrap_shell(&["bash".into()]));
        assert!(shell.iter().any(|a| a == "--as-pid-1"));
        let command = options(iso(true, SandboxNetwork::None).wrap(&["ls".into()], None));
        assert!(!command.iter().any(|a| a == "--as-pid-1"));
    }

    #[test]
    fn as_root_privileges_are_dropped_after_the_cgroup_join_and_before_bubblewrap() {
        let mut as_root = iso(true, SandboxNetwork::None);
        as_root.run_as = Some(1_000_123);
        let argv = as_root.wrap(&["ls".into()], None);
        let setpriv = argv.iter().position(|a| a == "setpriv").unwrap();
        let bwrap = argv.iter().position(|a| a == "bwrap").unwrap();
        assert!(argv[2].contains("cgroup.procs") && setpriv > 2 && setpriv < bwrap);
        for flag in [
            "--reuid=1000123",
            "--regid=1000123",
            "--clear-groups",
            "--bounding-set=-all",
            "--no-new-privs",
        ] {
            assert!(argv[setpriv..bwrap].iter().any(|a| a == flag), "{flag}");
        }
        let unprivileged = iso(true, SandboxNetwork::None).wrap(&["ls".into()], None);
        assert!(!unprivileged.iter().any(|a| a == "setpriv"));
    }

    #[test]
    fn a_sandbox_network_namespace_is_joined_as_root_before_privileges_drop() {
        let mut as_root = iso(true, SandboxNetwork::Outbound);
        as_root.run_as = Some(1_000_123);
        as_root.netns = Some(PathBuf::from("/proc/42/ns/net"));
        let argv = as_root.wrap(&["true".into()], Some("/tmp"));
        let nsenter = argv.iter().position(|a| a == "nsenter").unwrap();
        let setpriv = argv.iter().position(|a| a == "setpriv").unwrap();
        assert_eq!(argv[nsenter + 1], "--net=/proc/42/ns/net");
        assert!(nsenter < setpriv);
        // bubblewrap keeps the namespace it starts in.
        assert!(!argv.iter().any(|a| a == "--unshare-net"));
        let chdir = argv.iter().position(|a| a == "--chdir").unwrap();
        assert_eq!(argv[chdir + 1], "/tmp");
        let host = iso(true, SandboxNetwork::Host).wrap(&["true".into()], None);
        assert!(!host.iter().any(|a| a == "--unshare-net" || a == "nsenter"));
    }

    #[test]
    fn the_sandbox_sees_a_minimal_etc() {
        let argv = iso(true, SandboxNetwork::None).wrap(&["true".into()], None);
        let shown: Vec<&str> = argv
            .windows(3)
            .filter(|w| w[0] == "--ro-bind" && w[2].starts_with("/etc"))
            .map(|w| w[2].as_str())
            .collect();
        assert!(!shown.contains(&"/etc"), "not the host's whole /etc");
        for own in [
            "/etc/passwd",
            "/etc/group",
            "/etc/hosts",
            "/etc/resolv.conf",
        ] {
            let bind = argv.windows(3).find(|w| w[2] == own).unwrap();
            assert!(bind[1].starts_with("/data/sandboxes/u1/state/"), "{own}");
        }
        for secret in [
            "/etc/shadow",
            "/etc/gshadow",
            "/etc/ssh",
            "/etc/sudoers",
            "/etc/machine-id",
        ] {
            assert!(!argv.iter().any(|a| a == secret), "{secret}");
        }
        if Path::new("/etc/ld.so.cache").exists() {
            assert!(shown.contains(&"/etc/ld.so.cache"));
        }
        for config in [
            "/etc/gitconfig",
            "/etc/npmrc",
            "/etc/pip.conf",
            "/etc/environment",
        ] {
            assert!(!shown.contains(&config), "{config}");
        }
    }

    #[test]
    fn only_system_accounts_are_listed() {
        assert!(is_system_id(0) && is_system_id(33) && is_system_id(65534));
        assert!(!is_system_id(1000) && !is_system_id(70_000));
    }

    #[test]
    fn without_bubblewrap_only_the_cgroup_applies() {
        let argv = iso(false, SandboxNetwork::Host).wrap(&["ls".into()], None);
        assert!(!argv.iter().any(|a| a == "bwrap"));
        assert_eq!(argv.last().unwrap(), "ls");
    }
}
