use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

use crate::util::duration_ms;

/// Network-layer settings: threads, connection caps, buffers and write limits.
/// Config keys under `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080` (loopback: SECURITY.md M3).
    pub listen: SocketAddr,
    /// Number of I/O threads, each with its own poller and listener. 0 = one per core.
    pub io_threads: usize,
    /// Open connections across all loops; at the cap the server stops
    /// accepting and new connections wait in the backlog (L10). Default 1024.
    pub max_connections: usize,
    /// Listen backlog. Default 1024.
    pub backlog: i32,
    /// Size of the buffers a loop lends to connections while they have bytes
    /// in flight. Default 16 KiB.
    pub buffer_bytes: usize,
    /// Write backlog per connection; above it the loop stops reading from
    /// that peer until it drains (L12). Default 256 KiB.
    pub max_write_backlog_bytes: usize,
    /// Slowest acceptable drain rate of a write backlog, after the grace
    /// period; a slower reader is disconnected (L12). Default 240 B/s.
    pub min_write_rate_bytes_per_sec: u64,
    /// Grace period before the write rate is enforced. Default 5 s.
    #[serde(with = "duration_ms", rename = "write_grace_ms")]
    pub write_grace: Duration,
    /// How long a closing connection drains unread input after an error
    /// response (S27). Default 2 s.
    #[serde(with = "duration_ms", rename = "linger_ms")]
    pub linger: Duration,
    /// How many unread bytes a closing connection drains at most (S27). Default 64 KiB.
    pub linger_max_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            io_threads: 0,
            max_connections: 1024,
            backlog: 1024,
            buffer_bytes: 16 * 1024,
            max_write_backlog_bytes: 256 * 1024,
            min_write_rate_bytes_per_sec: 240,
            write_grace: Duration::from_secs(5),
            linger: Duration::from_secs(2),
            linger_max_bytes: 64 * 1024,
        }
    }
}

impl Config {
    /// `io_threads`, with 0 resolved to the number of cores.
    pub fn resolved_io_threads(&self) -> usize {
        if self.io_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.io_threads
        }
    }
}
