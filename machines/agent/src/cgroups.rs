//! Memory, process and CPU limits for everything a sandbox runs, through cgroups v2 or v1
//! (whichever controllers the host has), and the counters that tell the user why a process
//! died.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Limits of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids: u64,
    /// CPU time per wall-clock time (1.0 = one core).
    pub cpus: f64,
}

/// How often limits were hit so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Processes the kernel killed because the sandbox was out of memory.
    pub oom_kills: u64,
    /// Forks refused because the sandbox reached its process limit.
    pub pid_limit_hits: u64,
}

/// Why limits could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("this host has no usable cgroup controllers for memory and pids under {0}")]
    Unsupported(String),
    #[error("setting up cgroup {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The cgroup(s) of one sandbox.
#[derive(Debug, Clone)]
pub enum Cgroup {
    /// Unified hierarchy: one directory.
    V2 { dir: PathBuf },
    /// One directory per controller: memory, pids, cpu.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: Option<PathBuf>,
    },
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The number after `key` in a flat-keyed cgroup file (`oom_kill 3`).
fn counter(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

impl Cgroup {
    /// Creates (or reuses) the cgroup `name` under `root` (normally `/sys/fs/cgroup`) with
    /// `limits`, choosing v2 when its memory and pids controllers are available, else v1.
    pub fn create(root: &Path, name: &str, limits: &Limits) -> Result<Self, CgroupError> {
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        if has("memory") && has("pids") {
            return Self::create_v2(root, name, limits, has("cpu"));
        }
        if root.join("memory").is_dir() && root.join("pids").is_dir() {
            return Self::create_v1(root, name, limits);
        }
        Err(CgroupError::Unsupported(root.display().to_string()))
    }

    fn create_v2(root: &Path, name: &str, limits: &Limits, cpu: bool) -> Result<Self, CgroupError> {
        let parent = root.join("cloudos");
        let enable = if cpu {
            "+memory +pids +cpu"
        } else {
            "+memory +pids"
        };
        write(&root.join("cgroup.subtree_control"), enable)?;
        mkdir(&parent)?;
        write(&parent.join("cgroup.subtree_control"), enable)?;
        let dir = parent.join(name);
        mkdir(&dir)?;
        write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
        // Swapping would turn a memory bomb into a slow host instead of a killed process.
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        write(&dir.join("pids.max"), &limits.pids.to_string())?;
        if cpu {
            let period = 100_000u64;
            let quota = (limits.cpus * period as f64).max(1000.0) as u64;
            write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        Ok(Cgroup::V2 { dir })
    }

    fn create_v1(root: &Path, name: &str, limits: &Limits) -> Result<Self, CgroupError> {
        let memory = root.join("memory/cloudos").join(name);
        let pids = root.join("pids/cloudos").join(name);
        mkdir(&memory)?;
        mkdir(&pids)?;
        write(
            &memory.join("memory.limit_in_bytes"),
            &limits.memory_bytes.to_string(),
        )?;
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            write(&memsw, &limits.memory_bytes.to_string())?;
        }
        write(&pids.join("pids.max"), &limits.pids.to_string())?;
        let cpu_root = root.join("cpu");
        let cpu = if cpu_root.is_dir() {
            let dir = cpu_root.join("cloudos").join(name);
            mkdir(&dir)?;
            let period = 100_000u64;
            let quota = (limits.cpus * period as f64).max(1000.0) as u64;
            write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
            write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            Some(dir)
        } else {
            None
        };
        Ok(Cgroup::V1 { memory, pids, cpu })
    }

    /// The `cgroup.procs` files a process must join (one per v1 controller).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V2 { dir } => vec![dir.join("cgroup.procs")],
            Cgroup::V1 { memory, pids, cpu } => {
                let mut v = vec![memory.join("cgroup.procs"), pids.join("cgroup.procs")];
                v.extend(cpu.iter().map(|c| c.join("cgroup.procs")));
                v
            }
        }
    }

    /// The limit counters so far.
    pub fn counters(&self) -> Counters {
        match self {
            Cgroup::V2 { dir } => Counters {
                oom_kills: counter(&dir.join("memory.events"), "oom_kill"),
                pid_limit_hits: counter(&dir.join("pids.events"), "max"),
            },
            Cgroup::V1 { memory, pids, .. } => Counters {
                oom_kills: counter(&memory.join("memory.oom_control"), "oom_kill"),
                pid_limit_hits: counter(&pids.join("pids.events"), "max"),
            },
        }
    }

    fn pids_procs(&self) -> PathBuf {
        match self {
            Cgroup::V2 { dir } => dir.join("cgroup.procs"),
            Cgroup::V1 { pids, .. } => pids.join("cgroup.procs"),
        }
    }

    /// The processes in the sandbox now.
    pub fn processes(&self) -> Vec<i32> {
        std::fs::read_to_string(self.pids_procs())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process in the sandbox (a fork bomb included: it repeats until empty).
    pub async fn kill_all(&self) {
        if let Cgroup::V2 { dir } = self {
            if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for _ in 0..200 {
            let procs = self.processes();
            if procs.is_empty() {
                return;
            }
            for pid in procs {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Kills what is left and removes the cgroup directories.
    pub async fn remove(&self) {
        self.kill_all().await;
        let dirs: Vec<&PathBuf> = match self {
            Cgroup::V2 { dir } => vec![dir],
            Cgroup::V1 { memory, pids, cpu } => {
                let mut v = vec![memory, pids];
                v.extend(cpu.iter());
                v
            }
        };
        for dir in dirs {
            // The kernel needs a moment to reap the last processes.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_keyed_counters() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.events");
        std::fs::write(&f, "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n").unwrap();
        assert_eq!(counter(&f, "oom_kill"), 2);
        assert_eq!(counter(&f, "max"), 12);
        assert_eq!(counter(&f, "missing"), 0);
    }

    #[test]
    fn picks_v2_when_its_controllers_exist_and_writes_the_limits() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        let limits = Limits {
            memory_bytes: 256 << 20,
            pids: 64,
            cpus: 0.5,
        };
        let cg = Cgroup::create(root.path(), "sbx", &limits).unwrap();
        let dir = root.path().join("cloudos/sbx");
        assert!(matches!(&cg, Cgroup::V2 { dir: d } if *d == dir));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "268435456");
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("memory.swap.max"), "0");
    }

    #[test]
    fn falls_back_to_v1_controllers() {
        let root = tempfile::tempdir().unwrap();
        for c in ["memory", "pids", "cpu"] {
            std::fs::create_dir(root.path().join(c)).unwrap();
        }
        let limits = Limits {
            memory_bytes: 1 << 20,
            pids: 10,
            cpus: 2.0,
        };
        let cg = Cgroup::create(root.path(), "sbx", &limits).unwrap();
        assert_eq!(cg.procs_files().len(), 3);
        let read = |f: &str| std::fs::read_to_string(root.path().join(f)).unwrap();
        assert_eq!(read("memory/cloudos/sbx/memory.limit_in_bytes"), "1048576");
        assert_eq!(read("pids/cloudos/sbx/pids.max"), "10");
        assert_eq!(read("cpu/cloudos/sbx/cpu.cfs_quota_us"), "200000");
    }

    #[test]
    fn says_when_the_host_has_no_controllers() {
        let root = tempfile::tempdir().unwrap();
        let limits = Limits {
            memory_bytes: 1,
            pids: 1,
            cpus: 1.0,
        };
        assert!(matches!(
            Cgroup::create(root.path(), "x", &limits),
            Err(CgroupError::Unsupported(_))
        ));
    }
}
