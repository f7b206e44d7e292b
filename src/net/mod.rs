//! Sockets, event loops, connections, buffers, timers and wakers.
//!
//! `net` runs N I/O threads, each with its own `mio::Poll`, its own
//! `SO_REUSEPORT` listener (Linux; FreeBSD's `SO_REUSEPORT_LB`; elsewhere
//! one listener the loops share), a slab of connections and a timer heap.
//! It moves bytes between sockets and per-connection buffers and hands them
//! to a [`Protocol`], which decides what to do with them. Everything that
//! differs by platform is in `sys`.
//!
//! Invariant: nothing in this module parses or knows HTTP; it moves bytes and reports readiness.
//! Invariant: `WouldBlock` never leaves this module.
//! Invariant: a message for a closed or reused connection slot is dropped, never misrouted.

mod buf_pool;
mod config;
mod error;
mod event_loop;
mod mailbox;
mod sys;
mod timer;

pub use buf_pool::BufPool;
pub use config::Config;
pub use error::Error;
pub use event_loop::{start, Server, ShutdownHandle};
pub use mailbox::{ConnId, Handle, SendError};

use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Instant;

/// A connection's protocol: one value per connection, living on its loop thread.
///
/// The loop calls it when bytes arrive, when a message for the connection
/// arrives from another thread, when its deadline passes and at shutdown. Each
/// call returns [`Next`], which tells the loop what the protocol wants now.
pub trait Protocol: 'static {
    /// What other threads send to this connection through a [`Handle`].
    type Msg: Send + 'static;

    /// New bytes are in `io.rbuf` (or `io.eof` is set). Consume what can be
    /// used and leave the rest.
    fn on_read(&mut self, io: &mut Io<'_, Self::Msg>) -> Next;
    /// A message sent through a [`Handle`] for this connection.
    fn on_message(&mut self, msg: Self::Msg, io: &mut Io<'_, Self::Msg>) -> Next;
    /// The deadline last returned in [`Next::deadline`] has passed.
    fn on_deadline(&mut self, io: &mut Io<'_, Self::Msg>) -> Next;
    /// The write backlog fell below its cap after having been over it, or
    /// was fully written; a protocol that paused producing can resume.
    fn on_drained(&mut self, io: &mut Io<'_, Self::Msg>) -> Next;
    /// The server is shutting down: finish what is in flight and close.
    fn on_shutdown(&mut self, io: &mut Io<'_, Self::Msg>) -> Next;
    /// The connection is gone (peer closed, error, timeout or our close).
    /// Called exactly once.
    fn on_close(&mut self);
    /// What the connection is doing at `now`, for the loop's decisions that
    /// depend on it: which connections a drain deadline cuts off
    /// mid-request, and which may be closed to admit new ones at
    /// `max_connections`.
    fn activity(&self, now: Instant) -> Activity;
}

/// What a connection is doing, as far as the loop needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Between requests: nothing received is waiting for an answer.
    Idle,
    /// Part of a request has arrived, but not yet all that is needed to act
    /// on it, or it arrives slower than the protocol's minimum rate.
    Arriving,
    /// A request is being read, handled or answered.
    Busy,
    /// A long-lived stream to the peer is open.
    Streaming,
}

/// Creates a [`Protocol`] value for each accepted connection.
pub trait Factory: Send + Sync + 'static {
    /// The protocol this factory makes.
    type Proto: Protocol;
    /// Called on the loop thread right after accept, with the peer's address.
    fn open(&self, now: Instant, peer: SocketAddr) -> Self::Proto;
}

/// What a protocol wants after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// Whether the loop should read more bytes (and call `on_read`) when they arrive.
    pub read: bool,
    /// Whether and how to close.
    pub close: Close,
    /// When to call `on_deadline`, if at all.
    pub deadline: Option<Instant>,
}

/// How a connection should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Keep the connection open.
    No,
    /// Write everything queued, shut down the write side, drain unread
    /// input for a short while, then close (RFC 9112 §9.6 staged close), so
    /// an error response reaches the peer before any TCP RST.
    AfterWrite,
    /// Drop the connection now; anything queued is discarded.
    Now,
}

impl Next {
    /// Keep reading; optional deadline.
    pub fn read(deadline: Option<Instant>) -> Next {
        Next {
            read: true,
            close: Close::No,
            deadline,
        }
    }
    /// Stop reading for now (waiting for a response, or backpressure).
    pub fn wait(deadline: Option<Instant>) -> Next {
        Next {
            read: false,
            close: Close::No,
            deadline,
        }
    }
    /// Flush and close.
    pub fn close_after_write() -> Next {
        Next {
            read: false,
            close: Close::AfterWrite,
            deadline: None,
        }
    }
    /// The same, with `read` set as given.
    pub fn reading(mut self, read: bool) -> Next {
        self.read = read;
        self
    }
    /// Close at once.
    pub fn close_now() -> Next {
        Next {
            read: false,
            close: Close::Now,
            deadline: None,
        }
    }
}

/// What a protocol callback may touch.
pub struct Io<'a, M: Send + 'static> {
    /// Bytes read and not yet consumed. Consume with `advance`/`split_to`.
    pub rbuf: &'a mut BytesMut,
    /// Bytes to write; the loop writes them after the callback returns.
    pub wbuf: &'a mut BytesMut,
    /// The loop's clock for this round of events.
    pub now: Instant,
    /// The peer has closed its side; no more bytes will arrive.
    pub eof: bool,
    /// The connection's write backlog cap (`max_write_backlog_bytes`): a
    /// protocol should stop producing when `wbuf` is past it; it hears
    /// `on_drained` when the backlog empties.
    pub write_backlog_cap: usize,
    handle: &'a dyn Fn() -> Handle<M>,
}

impl<M: Send + 'static> std::fmt::Debug for Io<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("rbuf", &self.rbuf.len())
            .field("wbuf", &self.wbuf.len())
            .field("eof", &self.eof)
            .finish()
    }
}

impl<M: Send + 'static> Io<'_, M> {
    /// A sendable handle that delivers messages to this connection's
    /// `on_message` on its own loop, from any thread.
    pub fn handle(&self) -> Handle<M> {
        (self.handle)()
    }
}
