//! The one place that calls the OS directly, in two implementations with
//! one interface, chosen at compile time.
//!
//! - `linux` (Linux, unless the `portable` feature is on): the fast paths.
//!   Raw `recvfrom`/`sendto` system calls with `MSG_NOSIGNAL`; a short read
//!   is trusted to mean drained (epoll); one `SO_REUSEPORT` listener per
//!   loop, which the kernel balances.
//! - `portable` (macOS, FreeBSD and other Unix systems, and Linux with
//!   `--features portable`, which is how CI runs this code): POSIX
//!   `recv`/`send` through libc; reads go on until `WouldBlock`; the loops
//!   share one listening socket, except on FreeBSD, whose
//!   `SO_REUSEPORT_LB` balances per-loop listeners.
//!
//! Rule (checked by `scripts/lint-platform`): Linux-only items live only in
//! files named `linux.rs`, each declared by a `mod linux;` line right after
//! a `#[cfg(...)]` that names `target_os = "linux"` and
//! `not(feature = "portable")`.

#[cfg(all(target_os = "linux", not(feature = "portable")))]
mod linux;
#[cfg(all(target_os = "linux", not(feature = "portable")))]
use linux as imp;
#[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
mod portable;
#[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
use portable as imp;

pub(crate) use imp::{
    balance_listener, prepare_stream, read_into, send, LISTENER_PER_LOOP, SHORT_READ_MEANS_DRAINED,
};
