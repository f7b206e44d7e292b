use crossbeam_channel::Sender;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A connection's identity: its slab slot plus a generation, so a late
/// message for a reused slot is recognised and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
}

impl ConnId {
    pub(crate) fn to_token(self) -> mio::Token {
        mio::Token(((self.gen as usize) << 32) | self.idx as usize)
    }
    pub(crate) fn from_token(t: mio::Token) -> ConnId {
        ConnId {
            idx: (t.0 & 0xffff_ffff) as u32,
            gen: (t.0 >> 32) as u32,
        }
    }
}

/// Wakes a loop; coalesces wake-ups so a burst of messages costs one syscall.
#[derive(Debug)]
pub(crate) struct Signal {
    waker: mio::Waker,
    pending: AtomicBool,
}

impl Signal {
    pub(crate) fn new(waker: mio::Waker) -> Self {
        Signal {
            waker,
            pending: AtomicBool::new(false),
        }
    }
    /// Wakes the loop unless a wake-up is already pending.
    pub(crate) fn wake(&self) {
        // PERF: one waker write (eventfd on Linux, EVFILT_USER on kqueue) per
        // burst, not per message.
        if !self.pending.swap(true, Ordering::AcqRel) {
            // A failed wake means the loop is gone; its messages are moot.
            let _ = self.waker.wake();
        }
    }
    /// Called by the loop before it drains its queue.
    pub(crate) fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }
}

/// The connection a message was sent to is gone (or its loop is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection closed")]
pub struct SendError;

/// Sends messages to one connection's protocol on its owning loop, from any thread.
pub struct Handle<M> {
    pub(crate) id: ConnId,
    pub(crate) tx: Sender<(ConnId, M)>,
    pub(crate) signal: Arc<Signal>,
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            id: self.id,
            tx: self.tx.clone(),
            signal: self.signal.clone(),
        }
    }
}

impl<M> fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("id", &self.id).finish()
    }
}

impl<M: Send + 'static> Handle<M> {
    /// Queues `msg` for the connection's `on_message`. Messages from one
    /// thread arrive in the order sent. A message for a connection that has
    /// closed by the time it arrives is dropped.
    pub fn send(&self, msg: M) -> Result<(), SendError> {
        self.tx.send((self.id, msg)).map_err(|_| SendError)?;
        self.signal.wake();
        Ok(())
    }

    /// The connection this handle points at.
    pub fn conn_id(&self) -> ConnId {
        self.id
    }
}
