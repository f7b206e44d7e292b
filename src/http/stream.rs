//! SSE streams: the reply that opens one, and the sender that feeds it.

use super::error::ParseError;
use super::handler::Msg;
use super::response::Response;
use super::sse::{self, Event, SseError};
use crate::net;
use crate::util::lock;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// State shared between a stream's connection and its senders.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The client went away or the stream ended; senders stop.
    pub(crate) closed: AtomicBool,
    /// Events sent but not yet written by the loop (bounded: slow consumer).
    pub(crate) queued: AtomicUsize,
    senders: AtomicUsize,
}

/// Starts an SSE response; returned from a handler as [`super::Reply::Sse`].
#[derive(Debug)]
pub struct SseStream {
    pub(crate) shared: Arc<Shared>,
    pub(crate) head: Response,
    /// Events known when the stream starts; written with its head.
    pub(crate) initial: BytesMut,
    /// End the stream right after `initial` (a one-shot stream).
    pub(crate) end: bool,
    /// Whether it takes a slot among the open streams (`StreamCap`). A
    /// stream that carries a deferred reply does not: what bounds the work
    /// answering it bounds it, and refusing it would lose an admitted call.
    pub(crate) capped: bool,
}

impl SseStream {
    pub(crate) fn new(
        handle: net::Handle<Msg>,
        seq: u32,
        max_queued: usize,
    ) -> (SseStream, SseSender) {
        SseStream::answering(handle, seq, max_queued, None)
    }

    /// A stream that answers a pending request whose client may already be
    /// gone: `gone` is its responder's flag, so a stream started after the
    /// connection closed is closed for its senders from the start.
    pub(crate) fn answering(
        handle: net::Handle<Msg>,
        seq: u32,
        max_queued: usize,
        gone: Option<Arc<AtomicBool>>,
    ) -> (SseStream, SseSender) {
        let shared = Arc::new(Shared {
            closed: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            senders: AtomicUsize::new(1),
        });
        let head = Response::with_body(200, "text/event-stream", bytes::Bytes::new())
            .header("Cache-Control", "no-cache")
            .header("X-Accel-Buffering", "no");
        (
            SseStream {
                shared: shared.clone(),
                head,
                initial: BytesMut::new(),
                end: false,
                capped: true,
            },
            SseSender {
                handle,
                seq,
                shared,
                max_queued,
                gone,
            },
        )
    }

    /// Adds an event sent together with the head: a stream whose first
    /// events are known when it starts costs one write, not one per event.
    pub fn push(&mut self, ev: &Event<'_>) -> Result<(), SendError> {
        sse::encode(ev, &mut self.initial).map_err(SendError::Invalid)
    }

    /// Ends the stream right after its head and pushed events (a one-shot
    /// stream: head, events and end in a single write).
    pub fn end(mut self) -> SseStream {
        self.end = true;
        self.shared.closed.store(true, Ordering::Release);
        self
    }

    /// Uses `extra`'s status and headers for the stream's head (its body is
    /// ignored); `Content-Type: text/event-stream` and `Cache-Control` stay.
    pub fn with_head(mut self, extra: Response) -> SseStream {
        self.head.status = extra.status;
        self.head.pre = None;
        for (n, v) in extra.headers {
            self.head
                .headers
                .retain(|(h, _)| !h.eq_ignore_ascii_case(&n));
            self.head.headers.push((n, v));
        }
        self
    }
}

/// Encodes an event once, to be sent to many streams with
/// [`SseSender::send_encoded`].
pub fn encode_shared(ev: &Event<'_>) -> Result<Bytes, SseError> {
    let mut buf = BytesMut::with_capacity(ev.data.len() + 32);
    sse::encode(ev, &mut buf)?;
    Ok(buf.freeze())
}

/// Why an event was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The client is gone, the stream ended, or it was cut off as a slow consumer.
    #[error("stream closed")]
    Closed,
    /// `event` or `id` contained CR, LF or NUL (R3).
    #[error("invalid event: {0}")]
    Invalid(SseError),
}

/// Pushes events to one SSE stream from any thread. Cloneable; when the last
/// clone is dropped the stream ends cleanly.
#[derive(Debug)]
pub struct SseSender {
    handle: net::Handle<Msg>,
    seq: u32,
    shared: Arc<Shared>,
    max_queued: usize,
    /// The responder's flag, for a stream that answers a pending request.
    gone: Option<Arc<AtomicBool>>,
}

impl Clone for SseSender {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        SseSender {
            handle: self.handle.clone(),
            seq: self.seq,
            shared: self.shared.clone(),
            max_queued: self.max_queued,
            gone: self.gone.clone(),
        }
    }
}

impl SseSender {
    /// Queues an event. Events from one thread arrive in order. Fails once the
    /// client has gone; a producer that runs more than the stream's backlog
    /// ahead of the client gets the stream closed (slow consumer) so memory
    /// stays bounded.
    pub fn send(&self, ev: &Event<'_>) -> Result<(), SendError> {
        let mut buf = BytesMut::with_capacity(ev.data.len() + 32);
        sse::encode(ev, &mut buf).map_err(SendError::Invalid)?;
        self.send_raw(buf)
    }

    /// Queues a `data:`-only event.
    pub fn send_data(&self, data: &str) -> Result<(), SendError> {
        self.send(&Event {
            event: None,
            id: None,
            data,
            retry_ms: None,
        })
    }

    /// Queues a comment line (ignored by clients; keeps proxies from timing out).
    pub fn comment(&self, text: &str) -> Result<(), SendError> {
        let mut buf = BytesMut::new();
        sse::encode_comment(text, &mut buf);
        self.send_raw(buf)
    }

    /// Queues an event encoded once with [`encode_shared`] — for fan-out:
    /// every stream shares the same bytes (no per-stream encoding or copy).
    pub fn send_encoded(&self, event: &Bytes) -> Result<(), SendError> {
        self.send_bytes(event.clone())
    }

    fn send_raw(&self, buf: BytesMut) -> Result<(), SendError> {
        self.send_bytes(buf.freeze())
    }

    fn send_bytes(&self, bytes: Bytes) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        if self.shared.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            // Slow consumer: cut it off rather than buffer without limit.
            self.shared.closed.store(true, Ordering::Release);
            let _ = self.handle.send(Msg::SseAbort { seq: self.seq });
            return Err(SendError::Closed);
        }
        self.handle
            .send(Msg::SseData {
                seq: self.seq,
                bytes,
            })
            .map_err(|_| SendError::Closed)
    }

    /// Ends the stream after the events already queued.
    pub fn close(&self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            let _ = self.handle.send(Msg::SseEnd { seq: self.seq });
        }
    }

    /// True once the client has gone or the stream has ended: stop producing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
            || self
                .gone
                .as_ref()
                .is_some_and(|g| g.load(Ordering::Acquire))
    }
}

impl Drop for SseSender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}

/// Counts open SSE streams, in total and per client address, so that
/// long-lived streams cannot take every connection slot (SECURITY.md L10).
#[derive(Debug)]
pub(crate) struct StreamCap {
    max_total: usize,
    max_per_client: usize,
    open: AtomicUsize,
    by_client: Mutex<HashMap<IpAddr, usize>>,
}

/// One open stream's place in a [`StreamCap`]; given back on drop.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    cap: Arc<StreamCap>,
    client: Option<IpAddr>,
}

impl StreamCap {
    /// `max_per_client` 0 means no per-client limit.
    pub(crate) fn new(max_total: usize, max_per_client: usize) -> StreamCap {
        StreamCap {
            max_total,
            max_per_client,
            open: AtomicUsize::new(0),
            by_client: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a slot for a stream to `peer`. Loopback peers have no
    /// per-client limit: on loopback the address names no one (a local
    /// proxy, or every local client alike).
    pub(crate) fn try_open(self: &Arc<Self>, peer: IpAddr) -> Result<StreamSlot, ParseError> {
        let peer = peer.to_canonical();
        let client = (self.max_per_client > 0 && !peer.is_loopback()).then_some(peer);
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(ParseError::TooManyStreams { per_client: false });
        }
        let mut slot = StreamSlot {
            cap: self.clone(),
            client: None,
        };
        let Some(ip) = client else {
            return Ok(slot);
        };
        let mut map = lock(&self.by_client);
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_client {
            drop(map);
            // `slot` drops: the total goes back.
            return Err(ParseError::TooManyStreams { per_client: true });
        }
        *n += 1;
        drop(map);
        slot.client = Some(ip);
        Ok(slot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.cap.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.client {
            let mut map = lock(&self.cap.by_client);
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_in_total_and_per_client_but_not_on_loopback() {
        let cap = Arc::new(StreamCap::new(3, 1));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let s1 = cap.try_open(a).unwrap();
        assert_eq!(
            cap.try_open(a).unwrap_err(),
            ParseError::TooManyStreams { per_client: true }
        );
        let _s2 = cap.try_open(lo).unwrap();
        let s3 = cap.try_open(lo).unwrap();
        assert_eq!(
            cap.try_open(b).unwrap_err(),
            ParseError::TooManyStreams { per_client: false }
        );
        drop(s1);
        let s4 = cap.try_open(b).unwrap();
        assert_eq!(cap.open.load(Ordering::Acquire), 3);
        drop(s3);
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        assert_eq!(
            cap.try_open(mapped).unwrap_err(),
            ParseError::TooManyStreams { per_client: true },
            "an IPv4-mapped address is the same client"
        );
        drop(s4);
        assert!(cap.try_open(mapped).is_ok());
    }
}
