//! Handlers, what they reply, and the handles that let work finish elsewhere.

use super::request::Request;
use super::response::Response;
use super::stream::{SseSender, SseStream};
use crate::net;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where a route's handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// On the I/O loop, right after parsing: for handlers cheaper than a
    /// thread hop (static responses, health, metrics, MCP `ping`). Must not block.
    Inline,
    /// On the rayon worker pool; the response comes back to the loop.
    Pool,
}

/// What a handler gives back.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// A complete response.
    Response(Response),
    /// A complete response that lives for the whole process, sent without
    /// a copy (PERF: the built-in `/plaintext`, a prerendered `static`;
    /// callgrind, benches/load/pipeline_client.py).
    Static(&'static Response),
    /// Start a Server-Sent Events stream (see [`Cx::sse`]).
    Sse(SseStream),
    /// The handler took a [`Responder`] from [`Cx::responder`] and will
    /// answer through it later, from any thread.
    Later,
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Response(r)
    }
}

/// Handles requests for a route. Panics are caught: the request gets a 500
/// and nothing else is disturbed.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request. `req` may be consumed (e.g. `take_body`).
    fn call(&self, req: &mut Request, cx: &mut Cx<'_>) -> Reply;
}

impl<F> Handler for F
where
    F: Fn(&mut Request, &mut Cx<'_>) -> Reply + Send + Sync + 'static,
{
    fn call(&self, req: &mut Request, cx: &mut Cx<'_>) -> Reply {
        self(req, cx)
    }
}

/// Messages other threads send to a connection.
#[derive(Debug)]
pub enum Msg {
    /// The reply to request `seq`.
    Reply {
        /// Which request on the connection this answers.
        seq: u32,
        /// The reply.
        reply: Reply,
    },
    /// Pre-encoded bytes for the SSE stream opened by request `seq`.
    SseData {
        /// The request that opened the stream.
        seq: u32,
        /// One or more encoded events or comments.
        bytes: bytes::Bytes,
    },
    /// Cut off the SSE stream opened by request `seq` (slow consumer): the
    /// connection is dropped, not ended cleanly.
    SseAbort {
        /// The request that opened the stream.
        seq: u32,
    },
    /// End the SSE stream opened by request `seq`.
    SseEnd {
        /// The request that opened the stream.
        seq: u32,
    },
}

pub(crate) enum HandleSrc<'a> {
    Lazy(&'a dyn Fn() -> net::Handle<Msg>),
    Owned(net::Handle<Msg>),
}

/// What a handler may use besides the request.
pub struct Cx<'a> {
    pub(crate) src: HandleSrc<'a>,
    pub(crate) seq: u32,
    pub(crate) sse_max_queued: usize,
    pub(crate) took_responder: bool,
    /// Set by the connection once the client is gone while a [`Responder`]
    /// of this request is unanswered; made on first use.
    pub(crate) gone: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx").field("seq", &self.seq).finish()
    }
}

impl Cx<'_> {
    fn handle(&self) -> net::Handle<Msg> {
        match &self.src {
            HandleSrc::Lazy(f) => f(),
            HandleSrc::Owned(h) => h.clone(),
        }
    }

    /// A handle to answer this request later from any thread; return
    /// [`Reply::Later`]. If the responder is dropped unanswered the client
    /// gets a 500.
    pub fn responder(&mut self) -> Responder {
        self.took_responder = true;
        let gone = self.gone.get_or_insert_with(Default::default).clone();
        Responder {
            handle: Some(self.handle()),
            seq: self.seq,
            sse_max_queued: self.sse_max_queued,
            gone,
        }
    }

    /// Opens an SSE stream: return the [`SseStream`] as `Reply::Sse`, and
    /// push events through the [`SseSender`] (cloneable, `Send`).
    pub fn sse(&mut self) -> (SseStream, SseSender) {
        SseStream::new(self.handle(), self.seq, self.sse_max_queued)
    }
}

/// Answers one request from any thread, once.
#[derive(Debug)]
pub struct Responder {
    handle: Option<net::Handle<Msg>>,
    seq: u32,
    sse_max_queued: usize,
    gone: Arc<AtomicBool>,
}

impl Responder {
    /// True once the client is known to be gone: its connection closed, or
    /// it shut its sending side (EOF with no further request) while this
    /// reply was pending. A producer may stop working on a reply no one
    /// will read; answering anyway is harmless. Never turns false again.
    pub fn is_closed(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Sends the response. Returns an error if the client is gone.
    pub fn respond(mut self, resp: Response) -> Result<(), net::SendError> {
        self.send(Reply::Response(resp))
    }

    /// Answers with an SSE stream and returns its sender. The stream takes
    /// no slot among the open streams (`http.max_streams_percent`): it
    /// carries this one reply, bounded by whatever bounds the work on it.
    pub fn sse(mut self, extra: Response) -> Result<SseSender, net::SendError> {
        let Some(h) = self.handle.clone() else {
            return Err(net::SendError);
        };
        let (mut stream, tx) =
            SseStream::answering(h, self.seq, self.sse_max_queued, Some(self.gone.clone()));
        stream.capped = false;
        self.send(Reply::Sse(stream.with_head(extra)))?;
        Ok(tx)
    }

    fn send(&mut self, reply: Reply) -> Result<(), net::SendError> {
        match self.handle.take() {
            Some(h) => h.send(Msg::Reply {
                seq: self.seq,
                reply,
            }),
            None => Err(net::SendError),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.send(Reply::Response(Response::text(
                500,
                "internal error: request was dropped unanswered\n",
            )));
        }
    }
}
