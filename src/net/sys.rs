//! The one place that calls the OS directly.

use bytes::{BufMut, BytesMut};
use std::io;
use std::os::fd::AsRawFd;

/// Reads into the spare capacity of `buf` without zeroing it first.
/// Returns the number of bytes read and how much room there was.
pub(crate) fn read_into(sock: &impl AsRawFd, buf: &mut BytesMut) -> io::Result<(usize, usize)> {
    let spare = buf.chunk_mut();
    let room = spare.len();
    // SAFETY: `spare` is valid for writes of `room` bytes; read(2) writes at
    // most that many and never reads from the buffer. On success exactly `n`
    // bytes are initialised, which is what `advance_mut` is told.
    let n = unsafe { libc::read(sock.as_raw_fd(), spare.as_mut_ptr().cast(), room) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised `n <= room` bytes (see above).
    unsafe { buf.advance_mut(n) };
    Ok((n, room))
}
