//! A sandbox's network: one namespace shared by all its processes (a server started in one
//! terminal answers `curl localhost` in another), with either loopback only or outbound
//! access through slirp4netns, a user-mode TCP/IP stack, behind a firewall inside the
//! namespace that refuses the host's loopback, link-local and private ranges and the host's
//! own addresses. The namespace belongs to the host's root, so the sandbox (an unprivileged
//! uid in a user namespace of its own, every capability dropped) cannot change its rules.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloudos_proto::terminal::SandboxNetwork;

use crate::isolation::{run_with_input, IsolationError};

/// slirp4netns's fixed addresses: the sandbox is 10.0.2.100, its DNS forwarder 10.0.2.3.
const SANDBOX_ADDR: &str = "10.0.2.100";
/// The only address in a refused range the sandbox may use (port 53: name lookups, which
/// slirp4netns forwards to the host's resolver).
const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// IPv4 ranges a sandbox never reaches: "this network", private (RFC 1918), shared address
/// space (carrier NAT), loopback, link-local (cloud metadata lives at 169.254.169.254),
/// Azure's host endpoint (WireServer), IETF protocol assignments, benchmarking, multicast
/// and reserved. IPv6 is refused whole (slirp4netns runs without it).
pub const REFUSED_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(168, 63, 129, 16), 32),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(224, 0, 0, 0), 3),
];

/// Whether the firewall refuses a connection from the sandbox to `ip:port` (`host` are the
/// host's own addresses, refused because a service listening on all of them would answer).
pub fn refused(ip: Ipv4Addr, port: u16, host: &[Ipv4Addr]) -> bool {
    if ip == DNS {
        return port != 53;
    }
    host.contains(&ip)
        || REFUSED_V4.iter().any(|&(net, bits)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        })
}

/// The nftables ruleset loaded into the sandbox's namespace: the same rule as [`refused`].
pub fn ruleset(host: &[Ipv4Addr]) -> String {
    let mut refused: Vec<String> = REFUSED_V4
        .iter()
        .map(|(net, bits)| format!("{net}/{bits}"))
        .collect();
    refused.extend(host.iter().map(|a| a.to_string()));
    format!(
        "table inet cloudos_sandbox {{\n\
         \tchain output {{\n\
         \t\ttype filter hook output priority filter; policy accept;\n\
         \t\toif \"lo\" accept\n\
         \t\tip daddr {DNS} udp dport 53 accept\n\
         \t\tip daddr {DNS} tcp dport 53 accept\n\
         \t\tip daddr {{ {} }} reject with icmpx admin-prohibited\n\
         \t\tmeta nfproto ipv6 reject with icmpx admin-prohibited\n\
         \t}}\n\
         }}\n",
        refused.join(", ")
    )
}

/// The sandbox's network namespace and what keeps it alive; ended with the agent.
#[derive(Debug)]
pub struct SandboxNet {
    /// `/proc/<holder>/ns/net`: what every sandboxed process joins (`nsenter --net=`).
    pub ns: PathBuf,
    holder: Child,
    slirp: Option<Child>,
}

impl SandboxNet {
    /// Makes the namespace: loopback up, and for [`SandboxNetwork::Outbound`] the firewall
    /// first, then slirp4netns (so there is never a moment with a route and no rules).
    /// Needs root. `log` receives slirp4netns's output.
    pub fn create(mode: SandboxNetwork, log: &Path) -> Result<Self, IsolationError> {
        // `setpriv --pdeathsig` ties these helpers to the agent: even a SIGKILLed agent
        // leaves no namespace or user-mode stack behind. (The signal follows the thread that
        // spawned them; the agent prepares on its main thread, which lives as long as it.)
        let holder = Command::new("unshare")
            .args(["--net", "--", "setpriv", "--pdeathsig", "KILL", "--"])
            .args(["sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| command_error("unshare", e))?;
        let mut net = SandboxNet {
            ns: PathBuf::from(format!("/proc/{}/ns/net", holder.id())),
            holder,
            slirp: None,
        };
        let own = std::fs::read_link("/proc/self/ns/net")?;
        wait_until("the sandbox's network namespace", || {
            std::fs::read_link(&net.ns).is_ok_and(|ns| ns != own)
        })?;
        net.inside("ip", &["link", "set", "lo", "up"], None)?;
        if mode != SandboxNetwork::Outbound {
            return Ok(net);
        }
        net.inside("nft", &["-f", "-"], Some(&ruleset(&host_addresses()?)))?;
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log_file = std::fs::File::create(log)?;
        let slirp = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "slirp4netns"])
            .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
            .args(["--enable-sandbox", "--enable-seccomp"])
            .arg(net.holder.id().to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| command_error("slirp4netns", e))?;
        net.slirp = Some(slirp);
        let ns = net.ns.clone();
        wait_until("slirp4netns to configure the sandbox's network", || {
            Command::new("nsenter")
                .arg(format!("--net={}", ns.display()))
                .args(["ip", "-o", "-4", "addr", "show", "dev", "tap0"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(SANDBOX_ADDR))
        })
        .map_err(|e| IsolationError::Command {
            what: "slirp4netns".into(),
            detail: format!(
                "{e}: {}",
                std::fs::read_to_string(log).unwrap_or_default().trim()
            ),
        })?;
        Ok(net)
    }

    /// Runs `program args` inside the namespace (with `input` on its stdin).
    fn inside(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<(), IsolationError> {
        run_with_input(
            &format!("{program} {}", args.join(" ")),
            Command::new("nsenter")
                .arg(format!("--net={}", self.ns.display()))
                .arg(program)
                .args(args),
            input,
        )
    }
}

impl Drop for SandboxNet {
    fn drop(&mut self) {
        for child in self.slirp.iter_mut().chain([&mut self.holder]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The host's own IPv4 addresses (`ip -o -4 addr`): a service bound to all addresses
/// answers on each, private or not. A list without loopback means `ip` did not answer
/// as expected: better no sandbox than one whose rules miss the host.
fn host_addresses() -> Result<Vec<Ipv4Addr>, IsolationError> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map_err(|e| command_error("ip", e))?;
    let found = parse_addresses(&String::from_utf8_lossy(&out.stdout));
    if !out.status.success() || !found.contains(&Ipv4Addr::LOCALHOST) {
        return Err(IsolationError::Command {
            what: "listing the host's addresses (ip -o -4 addr show)".into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(found)
}

/// The addresses in `ip -o -4 addr` lines ("2: eth0    inet 192.0.2.2/24 brd …").
fn parse_addresses(out: &str) -> Vec<Ipv4Addr> {
    out.lines()
        .filter_map(|l| {
            // The third word, after the index and the interface's name (which may be
            // anything, even "inet").
            let mut words = l.split_whitespace().skip(2);
            (words.next()? == "inet").then_some(())?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) -> Result<(), IsolationError> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(IsolationError::Command {
                what: what.to_owned(),
                detail: "not ready after 10 s".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn command_error(what: &str, e: std::io::Error) -> IsolationError {
    IsolationError::Command {
        what: what.to_owned(),
        detail: format!("{e} (cargo xtask setup installs it)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_host_and_its_neighbours_are_refused() {
        let host = [ip("203.0.113.7")];
        for (addr, port) in [
            ("127.0.0.1", 8080),
            ("10.0.2.2", 8080), // slirp4netns's gateway: the host itself
            ("169.254.169.254", 80),
            ("168.63.129.16", 80), // Azure's WireServer
            ("10.1.2.3", 22),
            ("172.16.0.1", 5432),
            ("172.31.255.255", 5432),
            ("192.168.1.1", 80),
            ("100.64.0.1", 80),
            ("0.0.0.0", 80),
            ("224.0.0.1", 5353),
            ("255.255.255.255", 67),
            ("203.0.113.7", 443), // the host's own address
            ("10.0.2.3", 80),     // the DNS forwarder, on any port but 53
        ] {
            assert!(refused(ip(addr), port, &host), "{addr}:{port}");
        }
    }

    #[test]
    fn the_internet_and_names_are_allowed() {
        for (addr, port) in [
            ("10.0.2.3", 53),
            ("1.1.1.1", 443),
            ("172.32.0.1", 443), // just past 172.16.0.0/12
            ("198.51.100.2", 80),
            ("100.128.0.1", 80), // just past 100.64.0.0/10
        ] {
            assert!(!refused(ip(addr), port, &[]), "{addr}:{port}");
        }
    }

    #[test]
    fn the_hosts_addresses_are_read_from_ip() {
        let out = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                   2: inet    inet 192.0.2.2/24 brd 192.0.2.255 scope global inet\n";
        assert_eq!(parse_addresses(out), [ip("127.0.0.1"), ip("192.0.2.2")]);
    }

    #[test]
    fn the_ruleset_names_every_refused_range_and_the_host() {
        let rules = ruleset(&[ip("203.0.113.7")]);
        for (net, bits) in REFUSED_V4 {
            assert!(rules.contains(&format!("{net}/{bits}")), "{net}/{bits}");
        }
        assert!(rules.contains("203.0.113.7 }"));
        assert!(rules.contains("meta nfproto ipv6 reject"));
        // Name lookups come before the refusal that would otherwise catch 10.0.2.3.
        assert!(rules.find("dport 53 accept") < rules.find("reject"));
    }
}
