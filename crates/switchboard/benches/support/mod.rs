//! What the benches that run the simulator as a process of their own share.

use std::net::SocketAddr;
use std::process::Child;

/// A figure from /proc/self/status, in MiB.
pub fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// The simulator in a process of its own, stopped when dropped.
pub struct SimProcess(pub Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    socket.local_addr().expect("an address")
}
