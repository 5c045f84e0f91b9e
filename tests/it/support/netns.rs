//! Hosts of a fleet as Linux network namespaces (`ip netns`), each joined to this machine by a
//! veth pair of its own, where the machine allows it (root, iproute2): a host reaches the
//! servers of the test (PostgreSQL, the Telegram stand-in) only through its veth, at the
//! address of the other end, where a `Relay` forwards to the server on 127.0.0.1. Its commands
//! run in its namespace and in a UTS namespace of their own with the host's name
//! (`Host::command`), so orch takes that name from the system.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One namespace and its veth pair; removed (with the pair) when dropped.
pub struct Host {
    pub name: String,
    namespace: String,
    /// This machine's end of the veth: the address the host reaches the servers at.
    pub gateway: String,
}

/// `ip ARGS`, Ok when it succeeded, else what it said.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|err| format!("ip: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Host {
    /// Host `name`, number `n` of this test process's fleet, or why the machine cannot make it.
    pub fn new(name: &str, n: usize) -> Result<Host, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        let tag = std::process::id() % 10_000;
        let namespace = format!("orch-{tag}-{name}");
        // Interface names are at most 15 bytes; the subnet is this process's and host's own.
        let (outer, inner) = (format!("ov{tag}{n}a"), format!("ov{tag}{n}b"));
        let net = format!("10.{}.{}", 100 + tag % 100, n);
        let host = Host {
            name: name.to_string(),
            namespace: namespace.clone(),
            gateway: format!("{net}.1"),
        };
        ip(&["netns", "add", &namespace])?;
        // From here on, a failure removes the namespace (and the pair with it) as `host` drops.
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &namespace,
        ])?;
        ip(&["addr", "add", &format!("{net}.1/30"), "dev", &outer])?;
        ip(&["link", "set", &outer, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &namespace, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &format!("{net}.2/30"), "dev", &inner])?;
        inside(&["link", "set", &inner, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(host)
    }

    /// A command that runs `program` on this host: in its network namespace, under its own
    /// host name (the caller adds the environment and arguments).
    pub fn command(&self, base: Command, program: &str) -> Command {
        let mut command = base;
        command.args([
            "netns",
            "exec",
            &self.namespace,
            "unshare",
            "--uts",
            "sh",
            "-c",
            "hostname \"$0\" && exec \"$@\"",
            &self.name,
            program,
        ]);
        command
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.namespace]).ok();
    }
}

/// A TCP forwarder: connections to `listen` are carried to `target`, both ways, until dropped.
pub struct Relay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Relay {
    pub fn start(listen: &str, target: SocketAddr) -> Relay {
        let listener = TcpListener::bind(listen).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
                    continue;
                };
                client.set_nodelay(true).ok();
                server.set_nodelay(true).ok();
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || carry(from, to));
                }
            }
        });
        Relay { addr, stop }
    }
}

fn carry(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    to.shutdown(Shutdown::Write).ok();
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept so that it sees the stop.
        TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).ok();
    }
}
