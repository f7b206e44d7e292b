//! Linux (epoll): raw socket system calls and kernel-balanced listeners.
//! Declared only for `all(target_os = "linux", not(feature = "portable"))`.

use bytes::{BufMut, BytesMut};
use mio::net::TcpStream;
use std::io;
use std::os::fd::AsRawFd;

/// Each loop binds its own listener on the port: with `SO_REUSEPORT`,
/// Linux spreads new connections over them by a hash of the 4-tuple, so
/// loops share no lock on the accept path.
pub(crate) const LISTENER_PER_LOOP: bool = true;

/// On epoll a read that returns fewer bytes than there was room for has
/// drained the socket: the next bytes bring a new edge.
pub(crate) const SHORT_READ_MEANS_DRAINED: bool = true;

/// Lets every loop's listener bind the same port, balanced by the kernel.
pub(crate) fn balance_listener(sock: &socket2::Socket) -> io::Result<()> {
    sock.set_reuse_port(true)
}

/// Nothing to set up per connection: [`send`] passes `MSG_NOSIGNAL`.
#[inline(always)]
pub(crate) fn prepare_stream(_sock: &TcpStream) {}

/// Reads into the spare capacity of `buf` without zeroing it first.
/// Returns the number of bytes read and how much room there was.
pub(crate) fn read_into(sock: &impl AsRawFd, buf: &mut BytesMut) -> io::Result<(usize, usize)> {
    let spare = buf.chunk_mut();
    let room = spare.len();
    // PERF: recv(2), not read(2): it skips the VFS layer (loopback round
    // trips ~1.5 % cheaper, benches/load/recv_vs_read.c).
    // PERF: the raw system call, not glibc's recv(): that one is a
    // pthread cancellation point and brackets the call with two functions
    // (~30 instructions each per request; callgrind). Conduit never cancels
    // threads.
    // SAFETY: `spare` is valid for writes of `room` bytes; recvfrom(2) writes
    // at most that many and never reads from the buffer (no address is
    // asked for). On success exactly `n` bytes are initialised, which is what
    // `advance_mut` is told.
    let n = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            sock.as_raw_fd(),
            spare.as_mut_ptr(),
            room,
            0,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised `n <= room` bytes (see above).
    unsafe { buf.advance_mut(n) };
    Ok((n, room))
}

/// Writes as much of `data` as the socket takes, with send(2) (see
/// [`read_into`] for why not write(2), and why the raw system call).
/// `MSG_NOSIGNAL`: a peer that has gone away is an `EPIPE` error, never a
/// signal.
pub(crate) fn send(sock: &impl AsRawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of `data.len()` bytes, and sendto(2)
    // only reads that many (no destination address on a connected socket).
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            sock.as_raw_fd(),
            data.as_ptr(),
            data.len(),
            libc::MSG_NOSIGNAL,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
