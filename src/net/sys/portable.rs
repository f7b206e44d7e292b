//! Every other Unix (macOS and FreeBSD: kqueue through mio), and Linux
//! with `--features portable`: POSIX calls through libc, correct rather
//! than fast.

use bytes::{BufMut, BytesMut};
use mio::net::TcpStream;
use std::io;
use std::os::fd::AsRawFd;

/// FreeBSD's `SO_REUSEPORT_LB` balances listeners on one port as Linux's
/// `SO_REUSEPORT` does, so each loop binds its own. Elsewhere (macOS's
/// `SO_REUSEPORT` hands every connection to one of the sockets, not
/// spread) the loops share one listening socket: each registers its own
/// descriptor of it, every loop hears each new connection (edge-triggered)
/// and accepts until `WouldBlock`, so whichever loop is free takes it.
pub(crate) const LISTENER_PER_LOOP: bool = cfg!(target_os = "freebsd");

/// A short read is not taken to mean drained: the loop reads again until
/// `WouldBlock`, as mio documents for every platform.
pub(crate) const SHORT_READ_MEANS_DRAINED: bool = false;

/// Lets every loop's listener bind the same port, balanced by the kernel
/// (FreeBSD 12 and later).
#[cfg(target_os = "freebsd")]
pub(crate) fn balance_listener(sock: &socket2::Socket) -> io::Result<()> {
    sock.set_reuse_port_lb(true)
}

/// Never called: [`LISTENER_PER_LOOP`] is false here, one listener is shared.
#[cfg(not(target_os = "freebsd"))]
pub(crate) fn balance_listener(_sock: &socket2::Socket) -> io::Result<()> {
    Ok(())
}

/// `send` flags. `MSG_NOSIGNAL` (POSIX.1-2008; Linux, FreeBSD, NetBSD,
/// OpenBSD): a peer that has gone away is an `EPIPE` error, never a signal.
#[cfg(not(target_vendor = "apple"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
/// Apple's kernels take `SO_NOSIGPIPE` on the socket instead ([`prepare_stream`]).
#[cfg(target_vendor = "apple")]
const SEND_FLAGS: libc::c_int = 0;

/// Sets `SO_NOSIGPIPE`, so a write to a peer that has gone away is an
/// `EPIPE` error, never a signal.
#[cfg(target_vendor = "apple")]
pub(crate) fn prepare_stream(sock: &TcpStream) {
    if let Err(e) = socket2::SockRef::from(sock).set_nosigpipe(true) {
        tracing::warn!(error = %e, "cannot set SO_NOSIGPIPE");
    }
}

/// Nothing to set up per connection: [`send`] passes `MSG_NOSIGNAL`.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn prepare_stream(_sock: &TcpStream) {}

/// Reads into the spare capacity of `buf` without zeroing it first, with
/// recv(2). Returns the number of bytes read and how much room there was.
pub(crate) fn read_into(sock: &impl AsRawFd, buf: &mut BytesMut) -> io::Result<(usize, usize)> {
    let spare = buf.chunk_mut();
    let room = spare.len();
    // SAFETY: `spare` is valid for writes of `room` bytes; recv(2) writes
    // at most that many and never reads from the buffer. On success exactly
    // `n` bytes are initialised, which is what `advance_mut` is told.
    let n = unsafe { libc::recv(sock.as_raw_fd(), spare.as_mut_ptr().cast(), room, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised `n <= room` bytes (see above).
    unsafe { buf.advance_mut(n) };
    Ok((n, room))
}

/// Writes as much of `data` as the socket takes, with send(2).
pub(crate) fn send(sock: &impl AsRawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of `data.len()` bytes, and send(2)
    // only reads that many.
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            SEND_FLAGS,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
