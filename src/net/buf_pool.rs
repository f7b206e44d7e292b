use bytes::BytesMut;

/// A loop's pool of I/O buffers.
///
/// Connections borrow a buffer only while they have bytes in flight and give
/// it back when it is empty, so an idle keep-alive connection holds none.
/// Buffers that grew past twice the chunk size are dropped rather than kept,
/// so one large response does not pin memory forever.
#[derive(Debug)]
pub struct BufPool {
    free: Vec<BytesMut>,
    chunk: usize,
    max_free: usize,
}

impl BufPool {
    /// A pool of `chunk`-byte buffers that keeps at most `max_free` spare ones.
    pub fn new(chunk: usize, max_free: usize) -> Self {
        BufPool {
            free: Vec::new(),
            chunk,
            max_free,
        }
    }

    /// The buffer size this pool hands out.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Makes sure `buf` has a pooled allocation with at least one chunk of room.
    // PERF: inlined, as `give_back`: both run twice per event (callgrind,
    // pipeline_client.py --depth=1: the calls' entry and exit were ~50
    // instructions of their ~190).
    #[inline(always)]
    pub fn fill(&mut self, buf: &mut BytesMut) {
        if buf.capacity() == 0 {
            *buf = self
                .free
                .pop()
                .unwrap_or_else(|| BytesMut::with_capacity(self.chunk));
        }
        if buf.capacity() - buf.len() < self.chunk / 4 {
            buf.reserve(self.chunk);
        }
    }

    /// Takes back `buf` if it is empty, leaving an unallocated buffer in its place.
    #[inline(always)]
    pub fn give_back(&mut self, buf: &mut BytesMut) {
        if !buf.is_empty() || buf.capacity() == 0 {
            return;
        }
        let b = std::mem::take(buf);
        if self.free.len() < self.max_free && b.capacity() <= 2 * self.chunk {
            self.free.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_buffers_return_and_are_reused() {
        let mut pool = BufPool::new(1024, 4);
        let mut b = BytesMut::new();
        pool.fill(&mut b);
        assert!(b.capacity() >= 1024);
        b.extend_from_slice(b"abc");
        pool.give_back(&mut b);
        assert!(b.capacity() > 0, "non-empty buffer stays with its owner");
        b.clear();
        pool.give_back(&mut b);
        assert_eq!(b.capacity(), 0);
        assert_eq!(pool.free.len(), 1);
    }

    #[test]
    fn oversized_buffers_are_not_kept() {
        let mut pool = BufPool::new(1024, 4);
        let mut b = BytesMut::with_capacity(1 << 20);
        pool.give_back(&mut b);
        assert!(pool.free.is_empty());
    }
}
