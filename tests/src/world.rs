//! A stand-in for the world outside a sandbox, made by the test and removed with it: a
//! network namespace joined to the host by a veth pair, with listeners on an address from a
//! documentation range (standing for the internet), on a private address and on a
//! link-local one, plus one on the host's end of the pair (one of the host's own
//! addresses). Packets from a test go only here or to loopback, never to a real network.
//! Needs root.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::process::Command;

/// What every listener answers.
pub const GREETING: &str = "HELLO";

/// The namespace, its listeners' addresses, and the cleanup.
pub struct World {
    name: String,
    host_link: String,
    /// Stands for a public address (198.51.100.0/24, documentation): reachable.
    pub public: SocketAddr,
    /// A private (RFC 1918) address, as a LAN or a cloud's VPC would have.
    pub private: SocketAddr,
    /// A link-local address, where clouds put their metadata service.
    pub link_local: SocketAddr,
    /// The host's own end of the pair: one of the host's addresses.
    pub host: SocketAddr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Accepts forever on `listener`, greeting each connection.
fn greet(listener: TcpListener) {
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(GREETING.as_bytes());
        }
    });
}

impl World {
    /// Makes the namespace and starts the listeners.
    pub fn start() -> World {
        // Distinct per run, so runs side by side do not collide.
        let k: u8 = rand_byte() % 60 + 1;
        let tag = format!("{:06x}", u32::from(k) << 16 | std::process::id() & 0xffff);
        let name = format!("cloudos-world-{tag}");
        let (host_link, world_link) = (format!("cw{tag}h"), format!("cw{tag}w"));
        let base = 4 * k;
        let host_addr = Ipv4Addr::new(198, 51, 100, base + 1);
        let public = Ipv4Addr::new(198, 51, 100, base + 2);
        let private = Ipv4Addr::new(10, 213, k, 2);
        let link_local = Ipv4Addr::new(169, 254, 213, k);
        ip(&["netns", "add", &name]);
        let world = World {
            name: name.clone(),
            host_link: host_link.clone(),
            public: SocketAddr::from((public, 0)),
            private: SocketAddr::from((private, 0)),
            link_local: SocketAddr::from((link_local, 0)),
            host: SocketAddr::from((host_addr, 0)),
        };
        ip(&[
            "link",
            "add",
            &host_link,
            "type",
            "veth",
            "peer",
            "name",
            &world_link,
        ]);
        ip(&["link", "set", &world_link, "netns", &name]);
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_link]);
        ip(&["link", "set", &host_link, "up"]);
        for a in [
            format!("{public}/30"),
            format!("{private}/32"),
            format!("{link_local}/32"),
        ] {
            ip(&["-n", &name, "addr", "add", &a, "dev", &world_link]);
        }
        ip(&["-n", &name, "link", "set", &world_link, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &name,
            "route",
            "add",
            "default",
            "via",
            &host_addr.to_string(),
        ]);
        for a in [private, link_local] {
            ip(&["route", "add", &format!("{a}/32"), "dev", &host_link]);
        }
        let mut world = world;
        let ns = std::fs::File::open(format!("/run/netns/{name}")).expect("the namespace");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // setns moves this thread only; its sockets stay in the world afterwards.
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("entering the world");
            let ports: Vec<u16> = [public, private, link_local]
                .into_iter()
                .map(|a| {
                    let l = TcpListener::bind((a, 0)).expect("listening in the world");
                    let port = l.local_addr().unwrap().port();
                    greet(l);
                    port
                })
                .collect();
            tx.send(ports).unwrap();
        });
        let ports = rx.recv().expect("the world's listeners");
        world.public.set_port(ports[0]);
        world.private.set_port(ports[1]);
        world.link_local.set_port(ports[2]);
        let l = TcpListener::bind(world.host).expect("listening on the host's end");
        world.host.set_port(l.local_addr().unwrap().port());
        greet(l);
        world
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Deleting one end of the pair deletes the other and the routes through it.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

/// Starts a listener on the host's loopback that greets like the world's.
pub fn loopback_listener() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    greet(l);
    addr
}
