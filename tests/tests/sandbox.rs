//! The sandbox agent on its own: a real PTY in bubblewrap under cgroup limits, viewers,
//! reconnects, `/exec`, a persistent home with a size limit, and abuse that stays contained.
//! Markers are computed by the shell (`$((6*7))`), so the echo of a typed line never matches.

use std::time::Duration;

use cloudos_proto::terminal::SandboxNetwork;
use cloudos_proto::terminal::{NoticeKind, Role, ServerControl};
use cloudos_tests::agent::{refused, AgentOptions, Term, TestAgent};
use cloudos_tests::world::{loopback_listener, World, GREETING};

fn notice(t: &Term, kind: NoticeKind) -> bool {
    t.controls
        .iter()
        .any(|c| matches!(c, ServerControl::Notice { kind: k, .. } if *k == kind))
}

#[tokio::test]
async fn a_real_pty_whose_size_follows_the_window() {
    let agent = TestAgent::start(AgentOptions::default());
    let mut t = agent.attach(Role::Driver, "main").await;
    let out = t.run("tty; echo T-$((1+1))", "T-2").await;
    assert!(
        out.contains("/dev/pts/"),
        "tty names a pseudo-terminal: {out}"
    );
    t.resize(132, 43).await;
    let out = t.run("stty size; echo S-$((2+2))", "S-4").await;
    assert!(
        out.contains("43 132"),
        "stty size follows the resize: {out}"
    );
    // The terminal is the shell's controlling terminal: Ctrl+C interrupts the foreground job.
    t.type_keys("sleep 30; echo UNINTERRUPTED-$((2*4))\r").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.type_keys("\x03").await;
    let out = t.run("echo C-$((3+4))", "C-7").await;
    assert!(
        !out.contains("UNINTERRUPTED-8"),
        "Ctrl+C ends the foreground job and the rest of its line: {out}"
    );
    // An orphan (its parent gone) is reaped when it exits: no zombies pile up.
    let out = t
        .run(
            "(sleep 0.2 &); sleep 0.8; echo ZOMBIES-$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)-E$((1+1))",
            "-E2",
        )
        .await;
    assert!(out.contains("ZOMBIES-0-E2"), "{out}");
}

#[tokio::test]
async fn a_viewer_watches_live_but_cannot_type() {
    let agent = TestAgent::start(AgentOptions::default());
    let mut driver = agent.attach(Role::Driver, "main").await;
    driver.run("echo READY-$((1+2))", "READY-3").await;
    // A viewer's token, and a driver's token asking for view mode, both only watch.
    let mut viewer = agent.attach(Role::Viewer, "main").await;
    let url = agent.attach_url(&agent.token(Role::Driver), "main", "&mode=view");
    let mut asked_to_view = Term::connect(&url).await;
    for v in [&mut viewer, &mut asked_to_view] {
        assert!(matches!(
            v.hello(),
            Some(ServerControl::Hello {
                role: Role::Viewer,
                ..
            })
        ));
        v.type_keys("echo VIEWER-$((3+3))\r").await;
        v.wait_for("the view-only notice", Duration::from_secs(5), |t| {
            notice(t, NoticeKind::ViewOnly)
        })
        .await;
    }
    // What the driver runs, the viewer sees as it happens.
    let from = viewer.screen.len();
    driver.run("echo LIVE-$((4*4))", "LIVE-16").await;
    viewer.expect_from(from, "LIVE-16").await;
    assert!(
        !driver.text().contains("VIEWER-6"),
        "a viewer's keys never reach the shell"
    );
    // Viewers cannot resize either.
    viewer.resize(50, 10).await;
    let out = driver.run("stty size; echo Z-$((5+5))", "Z-10").await;
    assert!(out.contains("24 80"), "{out}");
}

#[tokio::test]
async fn a_viewer_never_starts_a_shell() {
    let agent = TestAgent::start(AgentOptions::default());
    let url = agent.attach_url(&agent.token(Role::Viewer), "nobody-here", "");
    assert_eq!(refused(&url).await, 404);
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", agent.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["sessions"], 0);
}

#[tokio::test]
async fn a_reconnect_gets_the_same_shell_and_its_scrollback() {
    let agent = TestAgent::start(AgentOptions::default());
    let mut t = agent.attach(Role::Driver, "work").await;
    t.run("export MARK=kept-$((5*5))", "$ ").await;
    t.run("echo SEEN-$((6*6))", "SEEN-36").await;
    let seq = t.seq;
    t.close().await;

    // The page reloads: the screen comes back from the scrollback, and the shell is the same.
    let mut again = agent.attach(Role::Driver, "work").await;
    again
        .wait_for("the scrollback", Duration::from_secs(5), |t| {
            t.text().contains("SEEN-36")
        })
        .await;
    let out = again.run("echo $MARK", "kept-25").await;
    assert!(out.contains("kept-25"));

    // A client that passes the offset it has only gets what it missed.
    let url = agent.attach_url(&agent.token(Role::Driver), "work", &format!("&since={seq}"));
    let mut resumed = Term::connect(&url).await;
    resumed
        .wait_for("the missed output", Duration::from_secs(5), |t| {
            t.text().contains("kept-25")
        })
        .await;
    assert!(
        !resumed.text().contains("SEEN-36"),
        "nothing before `since` is sent again"
    );

    // Another terminal of the same sandbox is another shell.
    let mut other = agent.attach(Role::Driver, "second").await;
    let out = other.run("echo [$MARK]-$((7+7))", "-14").await;
    assert!(out.contains("[]-14"), "{out}");
}

#[tokio::test]
async fn only_tokens_for_this_sandbox_are_accepted() {
    let agent = TestAgent::start(AgentOptions::default());
    let other = agent.attach_url(&agent.token_for("someone-elses", Role::Driver), "main", "");
    assert_eq!(refused(&other).await, 401);
    let none = format!("{}/attach", agent.base.replacen("http", "ws", 1));
    assert_eq!(refused(&none).await, 401);
    let res = cloudos_tests::http_client()
        .post(format!("{}/exec", agent.base))
        .bearer_auth(agent.token(Role::Viewer))
        .json(&serde_json::json!({"argv": ["true"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a view-only token cannot run commands");
}

/// Every socket rests on a grant: when the edge revokes it, the agent drops that grant's
/// sockets at once (close code 4403), keeps the others, and refuses the grant's tokens from
/// then on; a socket whose grant expires ends then (4401). Only a driver token revokes.
#[tokio::test]
async fn a_revoked_or_expired_grant_ends_its_sockets_and_nothing_else() {
    use cloudos_proto::terminal::{
        CLOSE_EXPIRED, CLOSE_REVOKED, MAX_SOCKETS_PER_SANDBOX, MAX_VIEWER_SOCKETS_PER_SANDBOX,
    };
    let agent = TestAgent::start(AgentOptions::default());
    let mut driver = agent.attach(Role::Driver, "main").await;
    driver.run("echo READY-$((1+2))", "READY-3").await;
    let link = |grants: &[&str], until: Option<u64>| {
        agent.attach_url(&agent.granted(Role::Viewer, grants, until), "main", "")
    };
    // A viewer rests on its link and its own session: revoking either ends it.
    let mut revoked = Term::connect(&link(&["share:a", "session:v:1"], None)).await;
    let mut signed_out = Term::connect(&link(&["share:a2", "session:w:1"], None)).await;
    let mut kept = Term::connect(&link(&["share:b", "session:x:1"], None)).await;
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let mut expiring = Term::connect(&link(&["share:c"], Some(soon))).await;

    let revoke = |token: String| {
        let base = agent.base.clone();
        async move {
            cloudos_tests::http_client()
                .post(format!("{base}/revoke"))
                .bearer_auth(token)
                .json(&serde_json::json!({"grants": ["share:a", "session:w:1"]}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(revoke(agent.token(Role::Viewer)).await, 403);
    let asked = std::time::Instant::now();
    assert_eq!(revoke(agent.token(Role::Driver)).await, 204);
    for t in [&mut revoked, &mut signed_out] {
        assert_eq!(
            t.ends_within(Duration::from_secs(2)).await,
            Some(CLOSE_REVOKED)
        );
    }
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        refused(&link(&["share:a"], None)).await,
        401,
        "no new socket on it"
    );

    let from = kept.screen.len();
    driver.run("echo STILL-$((2*3))", "STILL-6").await;
    kept.expect_from(from, "STILL-6").await;
    assert_eq!(
        expiring.ends_within(Duration::from_secs(5)).await,
        Some(CLOSE_EXPIRED)
    );
    assert!(!kept.closed(), "another grant's socket stays");
    let past = soon - 10;
    assert_eq!(
        refused(&link(&["share:d"], Some(past))).await,
        401,
        "an expired grant"
    );

    // The sockets of one sandbox are capped: a script cannot pile them up on the agent, and
    // viewers cannot take the owner's room. Open now: the driver and the kept viewer.
    let mut viewers = Vec::new();
    while viewers.len() + 1 < MAX_VIEWER_SOCKETS_PER_SANDBOX {
        viewers.push(agent.attach(Role::Viewer, "main").await);
    }
    let url = agent.attach_url(&agent.token(Role::Viewer), "main", "");
    assert_eq!(refused(&url).await, 429, "viewers are full");
    let mut drivers = Vec::new();
    while drivers.len() + 1 + MAX_VIEWER_SOCKETS_PER_SANDBOX < MAX_SOCKETS_PER_SANDBOX {
        drivers.push(agent.attach(Role::Driver, "main").await);
    }
    let owner = agent.attach_url(&agent.token(Role::Driver), "main", "");
    assert_eq!(refused(&owner).await, 429, "every place is taken");
    viewers.pop().unwrap().close().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Term::try_connect(&url).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "a closed socket frees its place"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the agent and the shells share one user (a Fly Machine: no bubblewrap, one uid),
/// a shell cannot read the agent's key from its environment or memory: the agent keeps its
/// /proc entries to root.
#[tokio::test]
async fn a_shell_of_the_same_user_cannot_read_the_agents_key() {
    let agent = TestAgent::start(AgentOptions {
        bwrap: false,
        limits: false,
        network: SandboxNetwork::Host,
        agent_uid: Some(65534),
        ..AgentOptions::default()
    });
    let pid = agent.pid();
    let who = agent.exec(&["id", "-u"]).await;
    assert_eq!(
        who.stdout.trim(),
        "65534",
        "the shell runs as the agent's user"
    );
    for file in ["environ", "mem"] {
        let read = agent
            .exec(&[
                "sh",
                "-c",
                &format!("head -c 4096 /proc/{pid}/{file} | tr '\\0' '\\n'"),
            ])
            .await;
        assert!(
            !read.stdout.contains("CLOUDOS_AGENT_KEY"),
            "/proc/{pid}/{file} shows the key: {}",
            read.stdout
        );
        assert!(
            read.stderr.contains("Permission denied"),
            "{file}: {}",
            read.stderr
        );
    }
}

#[tokio::test]
async fn exec_returns_exit_codes_output_and_timeouts() {
    let agent = TestAgent::start(AgentOptions::default());
    let ok = agent
        .exec(&["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await;
    assert_eq!(ok.exit_code, Some(3));
    assert_eq!(ok.stdout, "out\n");
    assert_eq!(ok.stderr, "err\n");
    assert!(!ok.timed_out);
    let missing = agent.exec(&["no-such-program"]).await;
    assert_ne!(missing.exit_code, Some(0));

    let res = cloudos_tests::http_client()
        .post(format!("{}/exec", agent.base))
        .bearer_auth(agent.token(Role::Driver))
        .json(&serde_json::json!({"argv": ["sleep", "30"], "timeout_secs": 1}))
        .send()
        .await
        .unwrap();
    let slow: cloudos_proto::terminal::ExecResponse = res.json().await.unwrap();
    assert!(slow.timed_out);
    assert_eq!(slow.exit_code, None);
    assert!(slow.duration_ms < 10_000);

    // The streaming variant sends output as it comes, then the exit.
    let res = cloudos_tests::http_client()
        .post(format!("{}/exec/stream", agent.base))
        .bearer_auth(agent.token(Role::Driver))
        .json(&serde_json::json!({"argv": ["sh", "-c", "echo one; sleep 0.2; echo two; exit 4"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let body = res.text().await.unwrap();
    let events: Vec<cloudos_proto::terminal::ExecEvent> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    use cloudos_proto::terminal::ExecEvent;
    assert_eq!(
        events[..2],
        [
            ExecEvent::Stdout {
                data: "one\n".into()
            },
            ExecEvent::Stdout {
                data: "two\n".into()
            }
        ]
    );
    assert!(matches!(
        events.last(),
        Some(ExecEvent::Exit {
            exit_code: Some(4),
            timed_out: false,
            ..
        })
    ));

    // Nothing to run is a typed error on both variants.
    for path in ["/exec", "/exec/stream"] {
        let res = cloudos_tests::http_client()
            .post(format!("{}{path}", agent.base))
            .bearer_auth(agent.token(Role::Driver))
            .json(&serde_json::json!({"argv": []}))
            .send()
            .await
            .unwrap();
        cloudos_tests::expect_problem(res, 400, "/errors/bad-request").await;
    }
}

#[tokio::test]
async fn the_sandbox_sees_only_its_own_home_and_no_network() {
    let agent = TestAgent::start(AgentOptions::default());
    let who = agent
        .exec(&["sh", "-c", "id -u; hostname; echo $HOME; ls /home"])
        .await;
    assert_eq!(who.stdout, "1000\nsandbox\n/home/user\nuser\n", "{who:?}");
    // The agent's own directory (where the home lives on the host) is not there.
    let dir = agent.dir.display().to_string();
    let hidden = agent.exec(&["ls", &dir]).await;
    assert_ne!(hidden.exit_code, Some(0), "{hidden:?}");
    let net = agent.exec(&["cat", "/proc/net/dev"]).await;
    let ifaces: Vec<&str> = net
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "network off: only loopback");
    // Its accounts are the host's system ones and its own: no person of the host, by
    // account or by group membership.
    let people = agent
        .exec(&[
            "sh",
            "-c",
            "awk -F: '($3 >= 1000 && $3 != 65534 && $1 != \"user\") \
             || (FILENAME == \"/etc/group\" && $4 != \"\")' /etc/passwd /etc/group",
        ])
        .await;
    assert_eq!(
        (people.exit_code, people.stdout.as_str()),
        (Some(0), ""),
        "{people:?}"
    );
    // Its /etc is its own: none of the host's secrets or machine identity is there.
    let etc = agent
        .exec(&["sh", "-c", "ls -A /etc; cat /etc/hostname /etc/resolv.conf"])
        .await;
    for secret in [
        "shadow",
        "gshadow",
        "ssh",
        "sudoers",
        "machine-id",
        "subuid",
    ] {
        assert!(
            !etc.stdout.lines().any(|l| l == secret),
            "{secret}: {etc:?}"
        );
    }
    assert!(etc.stdout.contains("sandbox\n"), "{etc:?}");
    // Programs still run: the linker cache, certificates and the shells' defaults are there.
    for needed in ["ld.so.cache", "ssl", "profile", "passwd"] {
        assert!(etc.stdout.lines().any(|l| l == needed), "{needed}: {etc:?}");
    }
    // What the sandbox writes belongs, on the host, to an unprivileged uid (its user
    // namespace shows 1000 inside; the file's owner outside is the truth).
    let probe = agent.exec(&["touch", "/home/user/.owner-probe"]).await;
    assert_eq!(probe.exit_code, Some(0), "{probe:?}");
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(agent.dir.join("home/.owner-probe"))
        .unwrap()
        .uid();
    assert_ne!(owner, 0, "the sandbox's user is host root");
    if cloudos_tests::running_as_root() {
        assert!(
            owner >= cloudos_proto::terminal::SANDBOX_UID_BASE,
            "owner {owner}"
        );
        // A file only host root may read, put where the sandbox can see it: its owner
        // checks fail, as for any host secret.
        use std::os::unix::fs::PermissionsExt;
        let secret = agent.dir.join("home/root-only");
        std::fs::write(&secret, "host secret").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let read = agent.exec(&["cat", "/home/user/root-only"]).await;
        assert!(read.stderr.contains("Permission denied"), "{read:?}");
        assert!(!read.stdout.contains("host secret"));
    }
    // Its own process tree only.
    let ps = agent
        .exec(&["sh", "-c", "ls /proc | grep -c '^[0-9]'"])
        .await;
    let n: u32 = ps.stdout.trim().parse().unwrap();
    assert!(n < 10, "{n} processes visible");
}

#[tokio::test]
async fn the_home_persists_across_restarts_and_has_a_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let opts = AgentOptions {
        home_size_mb: 32,
        dir: Some(dir.path().to_owned()),
        ..AgentOptions::default()
    };
    let mut first = TestAgent::start(opts.clone());
    let wrote = first
        .exec(&["sh", "-c", "echo kept > ~/note.txt && df -m ~ | tail -1"])
        .await;
    assert_eq!(wrote.exit_code, Some(0), "{wrote:?}");
    let full = first
        .exec(&["sh", "-c", "head -c 64M /dev/zero > ~/big"])
        .await;
    assert_ne!(full.exit_code, Some(0));
    assert!(full.stderr.contains("No space left"), "{full:?}");
    first.stop();

    let mut second = TestAgent::start(opts.clone());
    let read = second.exec(&["cat", "/home/user/note.txt"]).await;
    assert_eq!(read.stdout, "kept\n");
    second.stop();

    // The quota grew: the home grows with it, and keeps what it held.
    let third = TestAgent::start(AgentOptions {
        home_size_mb: 96,
        ..opts
    });
    let grown = third
        .exec(&[
            "sh",
            "-c",
            "cat ~/note.txt && head -c 64M /dev/zero > ~/big && echo fits",
        ])
        .await;
    assert_eq!(grown.stdout, "kept\nfits\n", "{grown:?}");
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_the_shell_recovers() {
    let agent = TestAgent::start(AgentOptions {
        pids_max: 64,
        ..AgentOptions::default()
    });
    let mut t = agent.attach(Role::Driver, "main").await;
    t.run("echo UP-$((2+3))", "UP-5").await;
    t.type_keys("bomb() { bomb | bomb & }; bomb\r").await;
    t.wait_for("the process-limit notice", Duration::from_secs(30), |t| {
        notice(t, NoticeKind::ProcessLimit)
    })
    .await;
    assert!(t.text().contains("process limit"), "the user is told why");
    // The agent is unaffected.
    let health = reqwest::get(format!("{}/healthz", agent.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // `kill` is a builtin, so it works with no process slots left. Not `kill %1`: bash may
    // already have reported the bomb's job Done while its children run on (CI saw
    // "no such job"). The shell is pid 1 of its own namespace, so `kill -1` reaches every
    // other process of this terminal and only those.
    let from = t.screen.len();
    t.type_keys("kill -9 -1; echo ALIVE-$((6*7))\r").await;
    t.expect_from(from, "ALIVE-42").await;
    let out = t.run("ls / | wc -l; echo LS-$((1+1))", "LS-2").await;
    assert!(!out.contains("fork"), "forks work again: {out}");
}

#[tokio::test]
async fn a_memory_bomb_is_killed_and_the_user_is_told_why() {
    let agent = TestAgent::start(AgentOptions {
        memory_mb: 64,
        ..AgentOptions::default()
    });
    let mut t = agent.attach(Role::Driver, "main").await;
    // `tail` keeps a line in memory, and /dev/zero has no newline.
    t.run(
        "head -c 1G /dev/zero | tail; echo AFTER-$((8*8))",
        "AFTER-64",
    )
    .await;
    t.wait_for("the memory notice", Duration::from_secs(10), |t| {
        notice(t, NoticeKind::MemoryLimit)
    })
    .await;
    assert!(t.text().contains("memory limit (64 MiB)"));
    let out = t.run("echo STILL-$((9*9))", "STILL-81").await;
    assert!(out.contains("STILL-81"));
}

/// A 4 MiB message (over the 1 MiB cap, under the WebSocket library's own 16 MiB frame
/// limit) is refused by closing the socket, not buffered; the agent and the shell stay fine
/// and a new attach finds the same shell.
#[tokio::test]
async fn an_oversized_message_closes_its_socket_and_nothing_else() {
    let agent = TestAgent::start(AgentOptions::default());
    let mut t = agent.attach(Role::Driver, "main").await;
    t.run("echo BEFORE-$((1+1))", "BEFORE-2").await;
    // Refused by the agent mid-send, or sent and then refused: either way the socket closes.
    let _ = t.try_send(vec![b'x'; 4 << 20]).await;
    t.wait_for("the socket to close", Duration::from_secs(20), Term::closed)
        .await;
    let mut again = agent.attach(Role::Driver, "main").await;
    let out = again.run("echo AFTER-$((2+2))", "AFTER-4").await;
    assert!(
        !out.contains("xxxxxxxxxxxxxxxx"),
        "the paste never reached the shell"
    );
}

/// `/exec`'s variables reach the sandboxed program only: the processes that set the sandbox
/// up outside it (cgroup join, setpriv, bubblewrap) never see them, so a `LD_PRELOAD` into
/// the home cannot run there. Names that cannot be variables are a 400.
#[tokio::test]
async fn exec_variables_reach_only_the_sandboxed_program() {
    let agent = TestAgent::start(AgentOptions::default());
    let send = |env: Vec<(&str, &str)>| {
        let req = cloudos_proto::terminal::ExecRequest {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo $GREETING; echo $LD_PRELOAD".into(),
            ],
            cwd: None,
            env: env
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            timeout_secs: Some(20),
            stdin: None,
        };
        cloudos_tests::http_client()
            .post(format!("{}/exec", agent.base))
            .bearer_auth(agent.token(Role::Driver))
            .json(&req)
            .send()
    };
    let res = send(vec![
        ("GREETING", "hi"),
        ("LD_PRELOAD", "/nonexistent/evil.so"),
    ])
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let out: cloudos_proto::terminal::ExecResponse = res.json().await.unwrap();
    assert_eq!(out.stdout, "hi\n/nonexistent/evil.so\n", "{out:?}");
    let tried = out.stderr.matches("cannot be preloaded").count();
    assert_eq!(
        tried, 1,
        "only the sandboxed sh tried to preload: {}",
        out.stderr
    );
    let res = send(vec![("A=B", "x")]).await.unwrap();
    assert_eq!(res.status(), 400);
}

/// As root, an agent whose home lies under a directory the sandbox's uid cannot pass
/// through refuses to start and names the path (better than terminals that never open).
/// Without root there is no uid to drop to and nothing to check: it starts.
#[test]
fn an_unreachable_home_stops_the_agent_at_start_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    // Private to its owner, as /root is: no other uid may pass through.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = tmp.path().join("sandbox");
    std::fs::create_dir_all(&dir).unwrap();
    // A file, not a pipe: a pipe nobody reads could fill and stall the agent.
    let log = tmp.path().join("agent.log");
    let mut child = Command::new(cloudos_tests::agent::agent_bin())
        .args(["--addr", "127.0.0.1:0", "--sandbox-id", "s-unreachable"])
        .args(["--key", &"ab".repeat(32), "--bwrap", "--home"])
        .arg(dir.join("home"))
        .arg("--state")
        .arg(dir.join("state"))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    if cloudos_tests::running_as_root() {
        let status = exited.unwrap_or_else(|| {
            panic!(
                "the agent did not refuse: {}",
                std::fs::read_to_string(&log).unwrap()
            )
        });
        assert!(!status.success());
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert!(
            stderr.contains("cannot read") && stderr.contains(&dir.display().to_string()),
            "{stderr}"
        );
    } else {
        assert!(exited.is_none(), "without root the agent starts");
    }
}

/// What a sandbox shell gets from connecting to `addr` and reading (bash's /dev/tcp, so no
/// tool is needed): the greeting when it got through.
async fn connect_from(agent: &TestAgent, addr: std::net::SocketAddr) -> String {
    let script = format!(
        "timeout 5 bash -c 'exec 3<>/dev/tcp/{}/{} && head -c 5 <&3'",
        addr.ip(),
        addr.port()
    );
    let out = agent.exec(&["sh", "-c", &script]).await;
    format!("{}{}", out.stdout, out.stderr)
}

/// A sandbox's network is its own: out to the internet through a user-mode stack, never to
/// the host's loopback services (the server, `cloudos db serve`, other sandboxes' agents),
/// the host's own addresses, link-local (cloud metadata) or private ranges. Proved against
/// listeners the test starts on loopback and in a namespace it makes, never a real network.
#[tokio::test]
async fn a_sandbox_reaches_the_internet_but_nothing_of_the_host_or_its_network() {
    if !cloudos_tests::running_as_root() {
        // Without root there is no namespace to make: the agent refuses outbound access
        // rather than give the host's network silently.
        let refused = TestAgent::try_start(AgentOptions {
            network: SandboxNetwork::Outbound,
            limits: false,
            ..AgentOptions::default()
        });
        let why = refused.err().expect("the agent refused").to_string();
        assert!(why.contains("needs root"), "{why}");
        return;
    }
    let world = World::start();
    let loopback = loopback_listener();
    let agent = TestAgent::start(AgentOptions {
        network: SandboxNetwork::Outbound,
        ..AgentOptions::default()
    });
    // The test's own plumbing works: from the host every listener answers. (Of the refusals
    // below, the private, link-local and host-address ones are the firewall's; loopback
    // is the sandbox's own and the gateway's is slirp4netns's host-loopback switch.)
    for addr in [
        world.public,
        world.private,
        world.link_local,
        world.host,
        loopback,
    ] {
        let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{addr} from the host: {e}"));
        let mut got = String::new();
        std::io::Read::read_to_string(&mut c, &mut got).ok();
        assert!(got.starts_with(GREETING), "{addr} from the host: {got:?}");
    }
    let out = connect_from(&agent, world.public).await;
    assert!(out.contains(GREETING), "the internet is reachable: {out}");
    let agent_port = agent.base.rsplit(':').next().unwrap().parse().unwrap();
    let gateway = |port| std::net::SocketAddr::from(([10, 0, 2, 2], port));
    for (what, addr) in [
        ("a private address", world.private),
        ("a link-local address", world.link_local),
        ("the host's own address", world.host),
        ("the host's loopback", loopback),
        (
            "the host's loopback through the gateway",
            gateway(loopback.port()),
        ),
        (
            "the agent itself",
            std::net::SocketAddr::from(([127, 0, 0, 1], agent_port)),
        ),
    ] {
        let out = connect_from(&agent, addr).await;
        assert!(!out.contains(GREETING), "{what} ({addr}) answered: {out}");
    }
    // The rules are the host's: the sandbox cannot lift them.
    let flush = agent.exec(&["nft", "flush", "ruleset"]).await;
    assert!(
        flush.exit_code != Some(0) && flush.stderr.contains("Operation not permitted"),
        "{flush:?}"
    );
    let out = connect_from(&agent, world.private).await;
    assert!(!out.contains(GREETING), "after a flush attempt: {out}");
    // One namespace for the whole sandbox (a server in one terminal answers another), not
    // the host's.
    let ns = "readlink /proc/self/ns/net";
    let first = agent.exec(&["sh", "-c", ns]).await.stdout;
    let second = agent.exec(&["sh", "-c", ns]).await.stdout;
    assert_eq!(first, second);
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(first.trim(), host_ns.display().to_string());
    let resolv = agent.exec(&["cat", "/etc/resolv.conf"]).await.stdout;
    assert_eq!(resolv, "nameserver 10.0.2.3\n");
}

/// An agent nobody uses stops by itself after its idle time (as on SIGTERM: cleanly), and
/// never while a terminal is attached.
#[tokio::test]
async fn an_unused_agent_stops_by_itself_and_never_while_attached() {
    let mut agent = TestAgent::start(AgentOptions {
        idle_secs: 1,
        ..AgentOptions::default()
    });
    let mut t = agent.attach(Role::Driver, "main").await;
    t.run("echo UP-$((2+3))", "UP-5").await;
    assert_eq!(
        agent.wait_exit(Duration::from_millis(2500)),
        None,
        "stopped with a terminal attached"
    );
    t.run("echo STILL-$((3*3))", "STILL-9").await;
    t.close().await;
    let status = agent
        .wait_exit(Duration::from_secs(10))
        .expect("the agent stops once unused");
    assert!(status.success(), "{status:?}");
    assert!(
        agent.logs().iter().any(|l| l.contains("idle time")),
        "it says why"
    );
}

/// A paste into a program that does not read its input waits in the socket (and TCP, back
/// to the browser), not in the agent: 64 MiB sent in 1 MiB messages while `sleep` holds the
/// terminal leaves the agent's peak memory a few MiB above where it was.
#[tokio::test]
async fn a_paste_nobody_reads_leaves_the_agents_memory_bounded() {
    let agent = TestAgent::start(AgentOptions::default());
    let mut t = agent.attach(Role::Driver, "main").await;
    t.run("echo UP-$((2+3))", "UP-5").await;
    let before = cloudos_tests::rss_kib(agent.pid(), "VmRSS:");
    t.type_keys("sleep 600\r").await;
    let paste = tokio::spawn(async move {
        let mut sent = 0;
        for _ in 0..64 {
            if t.try_send(vec![b'x'; 1 << 20]).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peak = cloudos_tests::rss_kib(agent.pid(), "VmHWM:");
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 24,
        "the agent grew {grew_mib} MiB holding input nobody reads"
    );
    // The sender is stuck, not refused: the socket is simply not read.
    assert!(!paste.is_finished(), "all 64 MiB went somewhere");
    paste.abort();
    let health = reqwest::get(format!("{}/healthz", agent.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// A client that never reads its socket is dropped once it is a full backlog behind (at most
/// 1,024 frames of at most 64 KiB, shared by every client of the terminal), not buffered for:
/// 200 MiB of output to a viewer that reads nothing leaves the agent's peak memory well
/// under what it sent, and the viewer finds its socket closed (it reconnects with `since`).
#[tokio::test]
async fn a_viewer_that_never_reads_is_dropped_not_buffered_for() {
    let agent = TestAgent::start(AgentOptions::default());
    let mut driver = agent.attach(Role::Driver, "main").await;
    driver.run("echo UP-$((2+3))", "UP-5").await;
    let mut viewer = agent.attach(Role::Viewer, "main").await;
    let before = cloudos_tests::rss_kib(agent.pid(), "VmRSS:");
    driver
        .type_keys("head -c 200M /dev/zero | tr '\\0' y; touch ~/.flood-done\r")
        .await;
    // Only the viewer is left, and it reads nothing.
    driver.close().await;
    let done = agent.dir.join("home/.flood-done");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !done.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the output never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grew_mib = cloudos_tests::rss_kib(agent.pid(), "VmHWM:").saturating_sub(before) / 1024;
    assert!(
        grew_mib < 100,
        "the agent grew {grew_mib} MiB for a viewer that reads nothing"
    );
    viewer
        .wait_for(
            "the agent to drop the viewer",
            Duration::from_secs(30),
            Term::closed,
        )
        .await;
}

/// The Fly Machine's entrypoint runs as root and seeds the home from /etc/skel on first
/// boot: as the user, so a symlink the user planted (`~/.profile -> a root-only file`)
/// cannot make root write through it. (Run as root, as on a Machine; the agent it then
/// starts is not there, which ends the script after the seeding.)
#[test]
fn the_machine_entrypoint_seeds_the_home_as_the_user() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    cloudos_tests::traversable(tmp.path());
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "original").unwrap();
    std::os::unix::fs::symlink(&victim, home.join(".profile")).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../machines/agent/entrypoint.sh");
    let out = std::process::Command::new("sh")
        .arg(&script)
        .env("CLOUDOS_AGENT_HOME", &home)
        .output()
        .unwrap();
    if cloudos_tests::running_as_root() {
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
        let bashrc = std::fs::metadata(home.join(".bashrc")).expect("the home was seeded");
        assert_eq!(bashrc.uid(), 1000, "seeded files belong to the user");
        assert_eq!(std::fs::metadata(&home).unwrap().uid(), 1000);
    } else {
        // Without root it stops at handing the home over, before any copy.
        assert!(
            !out.status.success(),
            "without root it cannot hand the home over"
        );
        assert!(!home.join(".bashrc").exists());
    }
}
