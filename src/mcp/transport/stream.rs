//! Resumable SSE streams and the lazily upgraded reply of a deferred call.

use super::super::context::Outbox;
use super::super::session::Session;
use crate::http::sse::Event;
use crate::http::{Responder, Response, SseSender};
use crate::util::lock;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How events of a stream are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Streamable HTTP: `id: <stream>-<seq>` + `data:`; resumable.
    Resumable,
    /// Stateless era or clients without resumption: `data:` only.
    Plain,
    /// Legacy HTTP+SSE: `event: message` + `data:`.
    Legacy,
}

struct Inner {
    sender: Option<SseSender>,
    next_seq: u64,
    replay: VecDeque<(u64, String)>,
    finished: bool,
}

/// One SSE stream of a session: its events are numbered and the last
/// `max_replay` are kept, so a client that lost the connection can resume
/// with `Last-Event-ID` (M9). A message is only ever on one stream.
pub(crate) struct StreamState {
    pub(crate) id: u64,
    framing: Framing,
    max_replay: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for StreamState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamState").field("id", &self.id).finish()
    }
}

static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

impl StreamState {
    pub(crate) fn new(framing: Framing, max_replay: usize) -> Arc<StreamState> {
        Arc::new(StreamState {
            id: NEXT_STREAM.fetch_add(1, Ordering::Relaxed),
            framing,
            max_replay,
            inner: Mutex::new(Inner {
                sender: None,
                next_seq: 1,
                replay: VecDeque::new(),
                finished: false,
            }),
        })
    }

    fn event_id(&self, seq: u64) -> String {
        format!("{}-{}", self.id, seq)
    }

    fn emit(&self, tx: &SseSender, seq: u64, json: &str) -> bool {
        let id = self.event_id(seq);
        let ev = match self.framing {
            Framing::Resumable => Event {
                event: None,
                id: Some(&id),
                data: json,
                retry_ms: None,
            },
            Framing::Plain => Event {
                event: None,
                id: None,
                data: json,
                retry_ms: None,
            },
            Framing::Legacy => Event {
                event: Some("message"),
                id: None,
                data: json,
                retry_ms: None,
            },
        };
        tx.send(&ev).is_ok()
    }

    /// Attaches a live SSE connection; replays buffered events after `after`.
    /// A priming event (an id and empty data) comes first for resumable streams.
    pub(crate) fn attach(&self, tx: SseSender, after: Option<u64>, priming: bool) {
        let mut g = lock(&self.inner);
        if priming && self.framing == Framing::Resumable {
            // MCP 2025-11-25 SSE polling: the priming event gives the client an id to resume from.
            let id = self.event_id(after.unwrap_or(0));
            let _ = tx.send(&Event {
                event: None,
                id: Some(&id),
                data: "",
                retry_ms: None,
            });
        }
        for (seq, json) in &g.replay {
            if after.is_none_or(|a| *seq > a) && !self.emit(&tx, *seq, json) {
                return;
            }
        }
        if g.finished {
            tx.close();
            return;
        }
        g.sender = Some(tx);
    }

    /// Sends a raw SSE event (legacy `endpoint`).
    pub(crate) fn send_event(&self, ev: &Event<'_>) -> bool {
        match &lock(&self.inner).sender {
            Some(tx) => tx.send(ev).is_ok(),
            None => false,
        }
    }

    /// Ends the live connection (the client may resume); events keep buffering.
    pub(crate) fn detach(&self) {
        if let Some(tx) = lock(&self.inner).sender.take() {
            tx.close();
        }
    }

    /// No more events: the live connection (if any) ends after what is queued.
    pub(crate) fn finish(&self) {
        let mut g = lock(&self.inner);
        g.finished = true;
        if let Some(tx) = g.sender.take() {
            tx.close();
        }
    }

    /// True while a client connection is attached and open.
    pub(crate) fn is_attached(&self) -> bool {
        lock(&self.inner)
            .sender
            .as_ref()
            .is_some_and(|t| !t.is_closed())
    }
}

impl Outbox for StreamState {
    fn send(&self, json: String) -> bool {
        let mut g = lock(&self.inner);
        if g.finished {
            return false;
        }
        let seq = g.next_seq;
        g.next_seq += 1;
        let sent = match &g.sender {
            Some(tx) => self.emit(tx, seq, &json),
            None => false,
        };
        if !sent {
            g.sender = None;
        }
        if self.framing == Framing::Resumable {
            g.replay.push_back((seq, json));
            while g.replay.len() > self.max_replay {
                g.replay.pop_front();
            }
            // Buffered for a resuming client even when no connection is attached.
            return true;
        }
        sent
    }

    fn close_stream(&self) {
        self.detach();
    }

    fn is_open(&self) -> bool {
        self.is_attached()
    }
}

/// A session's resumable streams, by id.
#[derive(Debug, Default)]
pub struct SessionStreams {
    streams: HashMap<u64, Arc<StreamState>>,
    order: VecDeque<u64>,
}

/// Streams kept per session for resumption; older finished ones are dropped first.
const MAX_STREAMS_PER_SESSION: usize = 64;

impl SessionStreams {
    pub(crate) fn add(&mut self, s: Arc<StreamState>) {
        self.order.push_back(s.id);
        self.streams.insert(s.id, s);
        while self.order.len() > MAX_STREAMS_PER_SESSION {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(st) = self.streams.remove(&old) {
                st.finish();
            }
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<StreamState>> {
        self.streams.get(&id).cloned()
    }

    /// True while a client connection is attached to any of the streams.
    pub(crate) fn any_attached(&self) -> bool {
        self.streams.values().any(|s| s.is_attached())
    }

    pub(crate) fn close_all(&mut self) {
        for s in self.streams.values() {
            s.finish();
        }
        self.streams.clear();
        self.order.clear();
    }
}

/// Parses a `Last-Event-ID` of ours: `<stream>-<seq>`.
pub fn parse_event_id(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.trim().split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The reply of a deferred call: plain JSON if nothing is sent before the
/// result, upgraded to an SSE stream the moment the tool sends progress, a
/// log message or a request to the client (if the client accepts SSE).
pub(crate) struct CallSink {
    responder: Mutex<Option<Responder>>,
    stream: Mutex<Option<Arc<StreamState>>>,
    session: Option<Arc<Session>>,
    sse_ok: bool,
    json_ok: bool,
    framing: Framing,
    priming: bool,
    max_replay: usize,
}

impl CallSink {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        responder: Responder,
        session: Option<Arc<Session>>,
        sse_ok: bool,
        json_ok: bool,
        framing: Framing,
        priming: bool,
        max_replay: usize,
    ) -> Arc<CallSink> {
        Arc::new(CallSink {
            responder: Mutex::new(Some(responder)),
            stream: Mutex::new(None),
            session,
            sse_ok,
            json_ok,
            framing,
            priming,
            max_replay,
        })
    }

    /// The call's stream, opening it (and answering the HTTP request with it) if needed.
    fn stream(&self) -> Option<Arc<StreamState>> {
        let mut st = lock(&self.stream);
        if let Some(s) = st.as_ref() {
            return Some(s.clone());
        }
        if !self.sse_ok {
            return None;
        }
        let responder = lock(&self.responder).take()?;
        let tx = responder.sse(Response::new(200)).ok()?;
        let s = StreamState::new(self.framing, self.max_replay);
        s.attach(tx, None, self.priming);
        if let Some(sess) = &self.session {
            lock(&sess.transport).add(s.clone());
        }
        *st = Some(s.clone());
        Some(s)
    }

    /// Delivers the final response: as JSON if no stream was opened, else as
    /// the stream's last event.
    pub(crate) fn finish(&self, json: String, status: u16) {
        let existing = lock(&self.stream).clone();
        if let Some(s) = existing {
            if !json.is_empty() {
                s.send(json);
            }
            s.finish();
            return;
        }
        if json.is_empty() {
            // Cancelled before anything was streamed: end the POST without a response.
            if let Some(r) = lock(&self.responder).take() {
                let _ = r.respond(Response::new(202));
            }
            return;
        }
        if !self.json_ok {
            if let Some(s) = self.stream() {
                s.send(json);
                s.finish();
            }
            return;
        }
        if let Some(r) = lock(&self.responder).take() {
            let _ = r.respond(Response::json(status, json));
        }
    }
}

impl Outbox for CallSink {
    fn send(&self, json: String) -> bool {
        match self.stream() {
            Some(s) => s.send(json),
            // The client takes JSON only: interim messages have nowhere to go.
            None => true,
        }
    }

    fn close_stream(&self) {
        // Open the stream first, so the client has a primed event id to resume from.
        if let Some(s) = self.stream() {
            s.detach();
        }
    }

    fn is_open(&self) -> bool {
        lock(&self.stream).as_ref().is_none_or(|s| s.is_attached())
    }

    fn is_abandoned(&self) -> bool {
        let stream = lock(&self.stream);
        match stream.as_ref() {
            // Still a plain reply: abandoned once its connection is gone.
            None => lock(&self.responder)
                .as_ref()
                .is_some_and(|r| r.is_closed()),
            // Without event ids the client cannot resume: gone is gone.
            Some(s) => self.framing != Framing::Resumable && !s.is_attached(),
        }
    }
}
