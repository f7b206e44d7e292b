//! The HTTP/1.1 connection state machine: one value per connection,
//! driven by the event loop through [`net::Protocol`].

use super::chunked::{ChunkedDecoder, Progress};
use super::error::{ParseError, STREAM_RETRY_AFTER_SECS};
use super::framing::{BodyKind, Framing};
use super::handler::{Cx, HandleSrc, Mode, Msg, Reply};
use super::parse::parse_head;
use super::request::{Method, Request};
use super::response::{self, Response};
use super::router::Match;
use super::stream::{StreamCap, StreamSlot};
use super::{date, sse, Service, SseStream};
use crate::net::{self, Io, Next};
use bytes::Buf;
use std::cell::RefCell;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    /// The loop's reusable request: inline requests are parsed into it, so
    /// steady-state parsing allocates nothing.
    static SCRATCH: RefCell<Request> = RefCell::new(Request::default());
}

/// Facts about the request being answered that shape its response.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u32,
    head_only: bool,
    http10: bool,
    keep_alive: bool,
    /// Route index for metrics; `None` when no route matched.
    route: Option<usize>,
    started: Instant,
}

/// Which handler a request goes to, decided from its head.
#[derive(Debug)]
enum Target {
    Route(usize),
    NotFound,
    NotAllowed(String),
}

#[derive(Debug)]
enum Decoder {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// A request whose body is still arriving.
#[derive(Debug)]
struct Body {
    req: Request,
    target: Target,
    decoder: Decoder,
    max_body: u64,
    head_only: bool,
    started: Instant,
    last_progress: Instant,
    /// When the minimum body rate is next checked (L6).
    rate_check: Instant,
    received: u64,
}

impl Body {
    /// Whether it has come slower than `min_rate` bytes/s so far (judged
    /// from its first second on).
    fn is_slower_than(&self, min_rate: u64, now: Instant) -> bool {
        let secs = now.saturating_duration_since(self.started).as_secs_f64();
        secs >= 1.0 && (self.received as f64) < min_rate as f64 * secs
    }
}

/// An open SSE stream.
#[derive(Debug)]
struct Stream {
    info: InFlight,
    shared: Arc<super::stream::Shared>,
    chunked: bool,
    next_ping: Instant,
    /// Its place among the open streams, given back when the stream ends.
    _slot: Option<StreamSlot>,
}

/// What the connection is waiting for (STYLE.md §2).
#[derive(Debug)]
enum State {
    /// Waiting for the first byte of a request since `since`; closed
    /// silently `keep_alive_timeout` later (L7). PERF: the deadline is
    /// computed when the loop asks for it, one `Instant` add per batch of
    /// pipelined requests instead of one per request (callgrind,
    /// benches/load/pipeline_client.py).
    Idle { since: Instant },
    /// Head bytes arriving; the head must complete by `deadline` (L5).
    Head { deadline: Instant },
    /// Reading a body (L4, L6).
    Body(Box<Body>),
    /// A handler is working on the request elsewhere; one request at a time (L9).
    Waiting(InFlight),
    /// An SSE stream is open; heartbeats at `next_ping` (L13).
    Streaming(Box<Stream>),
    /// We decided to close; nothing more is read or answered.
    Closing,
}

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub struct Conn {
    svc: Arc<Service>,
    /// The server's count of open streams.
    streams: Arc<StreamCap>,
    /// The client's address (streams are capped per address).
    peer: IpAddr,
    state: State,
    served: u32,
    seq: u32,
    shutting_down: bool,
    /// During a drain, when an idle connection is closed if no request has
    /// come (`drain_idle_grace`).
    drain_idle_until: Option<Instant>,
    /// The error body builder of the route of the request being read.
    error_body: Option<super::router::ErrorBody>,
    /// What the responses of one batch share, taken lazily.
    batch: Option<Batch>,
    /// Requests answered but not yet counted in the metrics.
    tally: Tally,
    /// While `Waiting`: the flag a pending [`super::Responder`] reads as
    /// `is_closed`, set when the client goes away.
    gone: Option<Arc<AtomicBool>>,
}

/// Values shared by every response written in one batch (one call from the
/// loop). PERF: one clock read and one `Date` lookup per batch of pipelined
/// requests, not per request (perf: clock_gettime was 4.5% of pipelined
/// server CPU; callgrind, benches/load/pipeline_client.py: the date
/// lookup was ~75 instructions per request).
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// A fresh clock reading: when this batch's responses were queued.
    end: Instant,
    /// `end` less the loop's clock: the latency of every request that
    /// arrived in this batch, computed once.
    since_now: Duration,
    date: [u8; 29],
}

/// A run of requests with the same route, status and latency, counted in
/// the metrics at once when the batch ends. PERF: a batch of pipelined
/// requests costs three atomic adds instead of three per request
/// (callgrind, benches/load/pipeline_client.py).
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    route: Option<usize>,
    status: u16,
    elapsed: Duration,
    count: u32,
}

/// What one step of processing decided.
enum Step {
    /// Go on processing (more pipelined bytes may be waiting).
    Again,
    /// Return this to the loop.
    Done(Next),
}

impl Conn {
    pub(crate) fn new(
        svc: Arc<Service>,
        streams: Arc<StreamCap>,
        now: Instant,
        peer: IpAddr,
    ) -> Conn {
        svc.metrics.conn_opened();
        Conn {
            svc,
            streams,
            peer,
            state: State::Idle { since: now },
            served: 0,
            seq: 0,
            shutting_down: false,
            drain_idle_until: None,
            error_body: None,
            batch: None,
            tally: Tally::default(),
            gone: None,
        }
    }

    /// What to tell the loop when there is nothing more to process now.
    fn next(&self, io: &Io<'_, Msg>) -> Next {
        let read_cap = self.svc.limits.max_head_bytes;
        match &self.state {
            State::Idle { since } => {
                if io.eof {
                    Next::close_after_write()
                } else {
                    let idle_until = *since + self.svc.limits.keep_alive_timeout;
                    Next::read(Some(
                        self.drain_idle_until
                            .map_or(idle_until, |d| d.min(idle_until)),
                    ))
                }
            }
            State::Head { deadline } => Next::read(Some(*deadline)),
            State::Body(b) => Next::read(Some(self.body_deadline(b))),
            // Keep reading (bounded) while waiting, so pipelined bytes queue
            // up and a vanished peer is noticed.
            State::Waiting(_) => Next::wait(None).reading(io.rbuf.len() < read_cap && !io.eof),
            State::Streaming(s) => Next::wait(Some(s.next_ping)).reading(io.rbuf.len() < read_cap),
            State::Closing => Next::close_after_write(),
        }
    }

    fn body_deadline(&self, b: &Body) -> Instant {
        let l = &self.svc.limits;
        (b.last_progress + l.body_gap_timeout).min(b.rate_check)
    }

    /// Processes every complete request in `rbuf`, one at a time.
    fn process(&mut self, io: &mut Io<'_, Msg>) -> Next {
        loop {
            let step = match &mut self.state {
                State::Closing => return Next::close_after_write(),
                State::Waiting(_) => {
                    if io.eof && io.rbuf.is_empty() {
                        // The client closed (or shut its sending side with no
                        // request pipelined behind this one): no one will
                        // read the reply, so its producer may stop.
                        self.mark_gone();
                    }
                    return self.next(io);
                }
                State::Streaming(_) => {
                    if io.eof {
                        return self.end_stream_gone();
                    }
                    if io.rbuf.len() >= self.svc.limits.max_head_bytes {
                        // A client that sends a stream of bytes at an SSE stream is not an SSE client.
                        return self.end_stream_gone();
                    }
                    return self.next(io);
                }
                State::Body(_) => self.continue_body(io),
                State::Idle { .. } | State::Head { .. } => {
                    if io.rbuf.is_empty() {
                        return self.next(io);
                    }
                    if io.wbuf.len() >= io.write_backlog_cap {
                        // Backpressure: resume when the loop says the backlog drained.
                        return Next::wait(None);
                    }
                    self.start_request(io)
                }
            };
            match step {
                Step::Again => continue,
                Step::Done(n) => return n,
            }
        }
    }

    /// Parses a head from `rbuf` and starts handling its request.
    fn start_request(&mut self, io: &mut Io<'_, Msg>) -> Step {
        self.error_body = None;
        let (head, path) = match parse_head(io.rbuf, &self.svc.limits) {
            Ok(Some(h)) => h,
            Ok(None) => {
                if io.eof {
                    // S23: an incomplete request followed by EOF is dropped.
                    return Step::Done(Next::close_now());
                }
                let deadline = match self.state {
                    State::Head { deadline } => deadline,
                    _ => io.now + self.svc.limits.head_timeout,
                };
                self.state = State::Head { deadline };
                return Step::Done(Next::read(Some(deadline)));
            }
            Err(e) => {
                // R1: even an error answer to HEAD has no body.
                let head_only = io.rbuf.starts_with(b"HEAD ");
                return Step::Done(self.fail_with(e, head_only, io));
            }
        };
        let (fr, head_only) = (head.framing, head.method == Method::Head);
        // Only patterned routes write params; a fixed route never allocates.
        let mut params = Vec::new();
        let (target, fixed) = match self.svc.router.find(head.method, path, &mut params) {
            Match::Found(r) => {
                self.error_body = r.error_body;
                let open = r.public || self.svc.guard.is_none();
                (Target::Route(r.index), r.fixed.filter(|_| open))
            }
            Match::NotFound => (Target::NotFound, None),
            Match::MethodNotAllowed(allow) => (Target::NotAllowed(allow), None),
        };
        if let (Some(resp), BodyKind::None, Target::Route(i)) = (fixed, fr.body, &target) {
            // A fixed response needs neither the request nor a handler.
            let route = Some(*i);
            io.rbuf.advance(head.len);
            let mut info = self.begin(fr.keep_alive, fr.http10, head_only, route, io.now);
            return self.respond(resp, &mut info, io);
        }
        SCRATCH.with(|cell| {
            let Ok(mut req) = cell.try_borrow_mut() else {
                // Only reachable if a handler re-entered the loop; treat as an internal error.
                return Step::Done(self.fail_internal(io));
            };
            head.fill(io.rbuf, &mut req);
            // The router reports params relative to the path; requests index the head.
            let base = req.path.start;
            for (_, r) in params.iter_mut() {
                *r = r.start + base..r.end + base;
            }
            req.params = params;
            io.rbuf.advance(head.len);
            self.start_body(&mut req, target, fr, head_only, io)
        })
    }

    /// Goes on with a request whose head is in `req`: reads its body, if
    /// any, then dispatches it.
    fn start_body(
        &mut self,
        req: &mut Request,
        target: Target,
        fr: Framing,
        head_only: bool,
        io: &mut Io<'_, Msg>,
    ) -> Step {
        let decoder = match fr.body {
            BodyKind::None => return self.dispatch(req, target, head_only, io),
            BodyKind::Length(n) if n > self.max_body(&target) => {
                // L4: refuse before reading the body, and without 100 Continue.
                return Step::Done(self.fail_with(ParseError::BodyTooLarge, head_only, io));
            }
            BodyKind::Length(n) => {
                req.body.reserve(n.min(64 * 1024) as usize);
                Decoder::Length(n)
            }
            BodyKind::Chunked => Decoder::Chunked(ChunkedDecoder::new(
                self.svc.limits.max_chunk_ext_bytes,
                self.svc.limits.max_trailer_bytes,
            )),
        };
        if fr.expect_continue && io.rbuf.is_empty() {
            io.wbuf.extend_from_slice(response::CONTINUE);
        }
        let max_body = self.max_body(&target);
        let mut body = Body {
            req: Request::default(),
            target,
            decoder,
            max_body,
            head_only,
            started: io.now,
            last_progress: io.now,
            rate_check: io.now + self.svc.limits.body_rate_grace,
            received: 0,
        };
        match feed_body(req, &mut body, io) {
            Err(e) => Step::Done(self.fail(e, io)),
            Ok(true) => {
                let target = std::mem::replace(&mut body.target, Target::NotFound);
                self.dispatch(req, target, head_only, io)
            }
            Ok(false) => {
                if io.eof {
                    return Step::Done(Next::close_now());
                }
                // The body spans reads: the request leaves the shared scratch.
                body.req = std::mem::take(req);
                self.state = State::Body(Box::new(body));
                Step::Done(self.next(io))
            }
        }
    }

    /// The body cap of the request's route. PERF: looked up only for
    /// requests with a body (callgrind, benches/load/pipeline_client.py).
    fn max_body(&self, target: &Target) -> u64 {
        match target {
            Target::Route(i) => self
                .svc
                .router
                .routes()
                .get(*i)
                .and_then(|r| r.max_body_bytes),
            Target::NotFound | Target::NotAllowed(_) => None,
        }
        .unwrap_or(self.svc.limits.max_body_bytes)
    }

    fn continue_body(&mut self, io: &mut Io<'_, Msg>) -> Step {
        let State::Body(b) = &mut self.state else {
            return Step::Again;
        };
        let before = b.received;
        let mut req = std::mem::take(&mut b.req);
        let r = feed_body(&mut req, b, io);
        if b.received > before {
            b.last_progress = io.now;
        }
        match r {
            Err(e) => Step::Done(self.fail(e, io)),
            Ok(true) => {
                let target = std::mem::replace(&mut b.target, Target::NotFound);
                let head_only = b.head_only;
                // A placeholder: dispatch always sets the state it leaves in.
                self.state = State::Idle { since: io.now };
                self.dispatch(&mut req, target, head_only, io)
            }
            Ok(false) => {
                b.req = req;
                if io.eof {
                    return Step::Done(Next::close_now());
                }
                Step::Done(self.next(io))
            }
        }
    }

    /// Counts a request about to be answered and describes it.
    fn begin(
        &mut self,
        keep_alive: bool,
        http10: bool,
        head_only: bool,
        route: Option<usize>,
        started: Instant,
    ) -> InFlight {
        self.served = self.served.saturating_add(1);
        self.seq = self.seq.wrapping_add(1);
        // L8: the last allowed request's response says `Connection: close`.
        let keep_alive = keep_alive
            && !self.shutting_down
            && self.served < self.svc.limits.max_requests_per_conn;
        InFlight {
            seq: self.seq,
            head_only,
            http10,
            keep_alive,
            route,
            started,
        }
    }

    /// Runs the handler for a complete request.
    fn dispatch(
        &mut self,
        req: &mut Request,
        target: Target,
        head_only: bool,
        io: &mut Io<'_, Msg>,
    ) -> Step {
        let index = match &target {
            Target::Route(i) => Some(*i),
            Target::NotFound | Target::NotAllowed(_) => None,
        };
        let mut info = self.begin(req.keep_alive, req.http10, head_only, index, io.now);
        req.keep_alive = info.keep_alive;
        let limits = &self.svc.limits;
        // PERF: borrow the service, no Arc clone per request (two atomic RMWs).
        let route = index.and_then(|i| self.svc.router.routes().get(i));
        let Some(route) = route else {
            let resp = match target {
                Target::NotAllowed(allow) => {
                    Response::text(405, "method not allowed\n").header("Allow", allow)
                }
                Target::NotFound | Target::Route(_) => Response::text(404, "not found\n"),
            };
            return self.respond(&resp, &mut info, io);
        };
        // Authentication runs before any handler, on every route not marked public.
        let denied = match (&self.svc.guard, route.public) {
            (Some(guard), false) => match guard.check(req) {
                Ok(principal) => {
                    req.principal = principal;
                    None
                }
                Err(resp) => Some(resp),
            },
            (Some(_), true) | (None, _) => None,
        };
        if let Some(resp) = denied {
            // The body was read; the connection stays usable.
            return self.respond(&resp, &mut info, io);
        }
        match route.mode {
            Mode::Inline => {
                let handle = || io.handle();
                let mut cx = Cx {
                    src: HandleSrc::Lazy(&handle),
                    seq: self.seq,
                    sse_max_queued: limits.sse_max_queued_events,
                    took_responder: false,
                    gone: None,
                };
                let reply = catch_unwind(AssertUnwindSafe(|| route.handler.call(req, &mut cx)));
                let took = cx.took_responder;
                self.gone = cx.gone.take();
                drop(cx);
                // PERF: the common replies are written here, without the
                // move through `on_reply` (callgrind, pipeline_client.py);
                // `keep_alive` already reflects `shutting_down`.
                match reply {
                    Ok(Reply::Static(r)) => self.respond(r, &mut info, io),
                    Ok(Reply::Response(r)) => self.respond(&r, &mut info, io),
                    Ok(Reply::Later) if !took => self.on_reply(
                        internal_error("handler returned Later without a responder"),
                        info,
                        io,
                    ),
                    Ok(r) => self.on_reply(r, info, io),
                    Err(_) => self.on_reply(internal_error("handler panicked"), info, io),
                }
            }
            Mode::Pool => {
                // What this batch answered so far is counted before a pool
                // handler (e.g. `/metrics`) can look.
                flush(&mut self.tally, &self.svc.metrics);
                let mut owned = std::mem::take(req);
                let handler = route.handler.clone();
                let handle = io.handle();
                let seq = self.seq;
                let max_queued = limits.sse_max_queued_events;
                let gone = Arc::new(AtomicBool::new(false));
                self.gone = Some(gone.clone());
                rayon::spawn(move || {
                    let mut cx = Cx {
                        src: HandleSrc::Owned(handle.clone()),
                        seq,
                        sse_max_queued: max_queued,
                        took_responder: false,
                        gone: Some(gone),
                    };
                    let reply =
                        catch_unwind(AssertUnwindSafe(|| handler.call(&mut owned, &mut cx)));
                    let took = cx.took_responder;
                    drop(cx);
                    let reply = match reply {
                        Ok(Reply::Later) if took => return,
                        Ok(Reply::Later) => {
                            internal_error("handler returned Later without a responder")
                        }
                        Ok(r) => r,
                        Err(_) => internal_error("handler panicked"),
                    };
                    // The client may be gone; then there is no one to tell.
                    let _ = handle.send(Msg::Reply { seq, reply });
                });
                self.state = State::Waiting(info);
                Step::Done(self.next(io))
            }
        }
    }

    /// Acts on a handler's reply for the request described by `info`.
    fn on_reply(&mut self, reply: Reply, info: InFlight, io: &mut Io<'_, Msg>) -> Step {
        let mut info = info;
        // A shutdown that began while the handler ran closes the connection after this reply.
        info.keep_alive &= !self.shutting_down;
        match reply {
            Reply::Response(r) => self.respond(&r, &mut info, io),
            Reply::Static(r) => self.respond(r, &mut info, io),
            Reply::Later => {
                self.state = State::Waiting(info);
                Step::Done(self.next(io))
            }
            Reply::Sse(stream) => self.start_stream(stream, info, io),
        }
    }

    /// Writes an SSE stream's head, `retry` and the events known up front.
    /// A stream that stays open first takes a slot among the open streams;
    /// without one it is refused with 503 (its producers see it closed).
    fn start_stream(
        &mut self,
        stream: SseStream,
        mut info: InFlight,
        io: &mut Io<'_, Msg>,
    ) -> Step {
        let slot = if info.head_only || stream.end || !stream.capped {
            None
        } else {
            match self.streams.try_open(self.peer) {
                Ok(slot) => Some(slot),
                Err(e) => {
                    stream.shared.closed.store(true, Ordering::Release);
                    let resp = self
                        .error_response(e.status(), &e.to_string())
                        .header("Retry-After", STREAM_RETRY_AFTER_SECS.to_string());
                    return self.respond(&resp, &mut info, io);
                }
            }
        };
        let f = response::Framing {
            head_only: false,
            keep_alive: info.keep_alive,
            http10: info.http10,
        };
        let date = batch_of(&mut self.batch, io.now).date;
        let chunked = response::encode_stream_head(&stream.head, f, &date, io.wbuf);
        if !chunked {
            info.keep_alive = false;
        }
        let elapsed = io.now.saturating_duration_since(info.started);
        self.count(info.route, stream.head.status, elapsed);
        if info.head_only {
            // R1: HEAD gets the stream's head and no body; producers see the
            // stream closed, and the connection is reusable.
            stream.shared.closed.store(true, Ordering::Release);
            return self.finish(info.keep_alive, io);
        }
        // PERF: retry, the events known up front and (for a one-shot
        // stream) the end go out with the head in one write
        // (benches/mcp: SSE replies went from ~3 sendto per call to 1).
        let mut first = bytes::BytesMut::new();
        sse::encode_retry(self.svc.limits.sse_retry_ms, &mut first);
        first.extend_from_slice(&stream.initial);
        put_stream_bytes(chunked, &first, io.wbuf);
        if stream.end {
            if chunked {
                io.wbuf.extend_from_slice(response::LAST_CHUNK);
            }
            return self.finish(info.keep_alive && chunked && !self.shutting_down, io);
        }
        self.state = State::Streaming(Box::new(Stream {
            info,
            shared: stream.shared,
            chunked,
            next_ping: io.now + self.svc.limits.sse_heartbeat,
            _slot: slot,
        }));
        Step::Done(self.next(io))
    }

    fn respond(&mut self, resp: &Response, info: &mut InFlight, io: &mut Io<'_, Msg>) -> Step {
        let f = response::Framing {
            head_only: info.head_only,
            keep_alive: info.keep_alive,
            http10: info.http10,
        };
        let batch = batch_of(&mut self.batch, io.now);
        if !response::encode(resp, f, &batch.date, io.wbuf) {
            tracing::error!(
                route = info.route,
                "handler set a header with CR, LF or NUL, or a framing header; answered 500"
            );
        }
        let elapsed = if info.started == io.now {
            batch.since_now
        } else {
            batch.end.saturating_duration_since(info.started)
        };
        self.count(info.route, resp.status, elapsed);
        self.finish(info.keep_alive, io)
    }

    /// Counts one answered request; runs of equal ones reach the metrics
    /// together in [`Conn::end_batch`].
    fn count(&mut self, route: Option<usize>, status: u16, elapsed: Duration) {
        let t = &mut self.tally;
        if t.count > 0 && t.route == route && t.status == status && t.elapsed == elapsed {
            t.count += 1;
            return;
        }
        flush(&mut self.tally, &self.svc.metrics);
        self.tally = Tally {
            route,
            status,
            elapsed,
            count: 1,
        };
    }

    /// Ends a batch: the next one reads the clock afresh, and what this one
    /// answered is counted (before the loop writes, so a client that sees
    /// a response and then scrapes `/metrics` finds it counted).
    fn end_batch(&mut self, next: Next) -> Next {
        self.batch = None;
        flush(&mut self.tally, &self.svc.metrics);
        next
    }

    // PERF: inlined into every answer path (callgrind, pipeline_client.py).
    #[inline(always)]
    fn finish(&mut self, keep_alive: bool, io: &Io<'_, Msg>) -> Step {
        if keep_alive {
            self.state = State::Idle { since: io.now };
            Step::Again
        } else {
            self.state = State::Closing;
            Step::Done(Next::close_after_write())
        }
    }

    /// Answers a framing or limit error and closes (SECURITY.md §2).
    fn fail(&mut self, e: ParseError, io: &mut Io<'_, Msg>) -> Next {
        self.fail_with(e, false, io)
    }

    fn fail_with(&mut self, e: ParseError, head_only: bool, io: &mut Io<'_, Msg>) -> Next {
        self.count(None, e.status(), Duration::ZERO);
        tracing::debug!(error = %e, status = e.status(), "rejected request");
        let resp = self.error_response(e.status(), &e.to_string());
        self.close_with(&resp, head_only, io)
    }

    /// The connection layer's own error answer, in the body shape the
    /// request's route prefix chose (`Router::error_bodies`), else text.
    fn error_response(&self, status: u16, msg: &str) -> Response {
        match self.error_body {
            Some(body) => body(status, msg),
            None => Response::text(status, format!("{msg}\n")),
        }
    }

    fn fail_internal(&mut self, io: &mut Io<'_, Msg>) -> Next {
        self.close_with(&Response::text(500, "internal error\n"), false, io)
    }

    /// Writes `resp` with `Connection: close` (R4) and closes after it.
    fn close_with(&mut self, resp: &Response, head_only: bool, io: &mut Io<'_, Msg>) -> Next {
        let f = response::Framing {
            head_only,
            keep_alive: false,
            http10: false,
        };
        let date = batch_of(&mut self.batch, io.now).date;
        response::encode(resp, f, &date, io.wbuf);
        self.state = State::Closing;
        Next::close_after_write()
    }

    /// The client of a pending reply went away: its responder says so.
    fn mark_gone(&mut self) {
        if let Some(g) = self.gone.take() {
            g.store(true, Ordering::Release);
        }
    }

    /// The SSE client went away: tell producers and drop the connection.
    fn end_stream_gone(&mut self) -> Next {
        if let State::Streaming(s) = &self.state {
            s.shared.closed.store(true, Ordering::Release);
        }
        self.state = State::Closing;
        Next::close_now()
    }

    /// Ends an SSE stream cleanly: last chunk, then keep-alive or close.
    fn end_stream(&mut self, io: &mut Io<'_, Msg>) -> Step {
        let State::Streaming(s) = &self.state else {
            return Step::Again;
        };
        s.shared.closed.store(true, Ordering::Release);
        let (chunked, keep_alive) = (s.chunked, s.info.keep_alive && !self.shutting_down);
        if chunked {
            io.wbuf.extend_from_slice(response::LAST_CHUNK);
        }
        self.finish(keep_alive && chunked, io)
    }

    fn on_stream_msg(&mut self, msg: Msg, io: &mut Io<'_, Msg>) -> Step {
        match msg {
            Msg::SseData { seq, bytes } => {
                let State::Streaming(s) = &mut self.state else {
                    return Step::Done(self.next(io));
                };
                s.shared.queued.fetch_sub(1, Ordering::AcqRel);
                if s.info.seq != seq {
                    return Step::Done(self.next(io));
                }
                put_stream_bytes(s.chunked, &bytes, io.wbuf);
                s.next_ping = io.now + self.svc.limits.sse_heartbeat;
                if io.wbuf.len() > io.write_backlog_cap {
                    // Slow consumer: cut it off rather than buffer without bound.
                    tracing::debug!("SSE consumer too slow; disconnecting");
                    return Step::Done(self.end_stream_gone());
                }
                Step::Done(self.next(io))
            }
            Msg::SseAbort { seq } => match &self.state {
                State::Streaming(s) if s.info.seq == seq => {
                    tracing::debug!("SSE producer outran its consumer; disconnecting");
                    Step::Done(self.end_stream_gone())
                }
                _ => Step::Done(self.next(io)),
            },
            Msg::SseEnd { seq } => match &self.state {
                State::Streaming(s) if s.info.seq == seq => self.end_stream(io),
                _ => Step::Done(self.next(io)),
            },
            Msg::Reply { seq, reply } => match &self.state {
                State::Waiting(info) if info.seq == seq => {
                    let info = *info;
                    self.gone = None;
                    self.on_reply(reply, info, io)
                }
                // A reply for a request this connection no longer waits for.
                _ => Step::Done(self.next(io)),
            },
        }
    }
}

/// This batch's shared values, taken on first use; `now` is the loop's
/// clock for the batch. A borrow, not a copy per response.
#[inline(always)]
fn batch_of(slot: &mut Option<Batch>, now: Instant) -> &Batch {
    // PERF: only the check is inlined; the batch is built once per batch
    // (callgrind, benches/load/pipeline_client.py).
    slot.get_or_insert_with(
        #[cold]
        || new_batch(now),
    )
}

#[cold]
fn new_batch(now: Instant) -> Batch {
    let end = Instant::now();
    Batch {
        end,
        since_now: end.saturating_duration_since(now),
        date: date::now(now),
    }
}

/// Counts a tally's requests in the metrics and empties it.
fn flush(tally: &mut Tally, metrics: &super::metrics::Metrics) {
    let t = std::mem::take(tally);
    if t.count > 0 {
        metrics.record(t.route, t.status, t.elapsed, t.count);
    }
}

fn internal_error(why: &str) -> Reply {
    tracing::error!("{why}; answered 500");
    Reply::Response(Response::text(500, "internal error\n"))
}

fn put_stream_bytes(chunked: bool, bytes: &[u8], out: &mut bytes::BytesMut) {
    if chunked {
        response::encode_chunk(bytes, out);
    } else {
        out.extend_from_slice(bytes);
    }
}

/// Feeds body bytes from `rbuf` into `req.body`. Returns whether the body is complete.
fn feed_body(req: &mut Request, b: &mut Body, io: &mut Io<'_, Msg>) -> Result<bool, ParseError> {
    match &mut b.decoder {
        Decoder::Length(rem) => {
            let take = (*rem).min(io.rbuf.len() as u64) as usize;
            req.body
                .extend_from_slice(io.rbuf.get(..take).unwrap_or_default());
            io.rbuf.advance(take);
            *rem -= take as u64;
            b.received += take as u64;
            Ok(*rem == 0)
        }
        Decoder::Chunked(dec) => {
            let (used, progress) = dec.decode(io.rbuf, &mut req.body, b.max_body)?;
            io.rbuf.advance(used);
            b.received += used as u64;
            Ok(matches!(progress, Progress::Done))
        }
    }
}

impl net::Protocol for Conn {
    type Msg = Msg;

    fn on_read(&mut self, io: &mut Io<'_, Msg>) -> Next {
        let n = self.process(io);
        self.end_batch(n)
    }

    fn on_message(&mut self, msg: Msg, io: &mut Io<'_, Msg>) -> Next {
        let n = match self.on_stream_msg(msg, io) {
            Step::Again => self.process(io),
            Step::Done(n) => n,
        };
        self.end_batch(n)
    }

    fn on_deadline(&mut self, io: &mut Io<'_, Msg>) -> Next {
        let n = self.deadline(io);
        self.end_batch(n)
    }

    fn on_drained(&mut self, io: &mut Io<'_, Msg>) -> Next {
        let n = self.process(io);
        self.end_batch(n)
    }

    fn on_shutdown(&mut self, io: &mut Io<'_, Msg>) -> Next {
        self.shutting_down = true;
        let n = self.shut_down(io);
        self.end_batch(n)
    }

    fn on_close(&mut self) {
        if let State::Streaming(s) = &self.state {
            s.shared.closed.store(true, Ordering::Release);
        }
        self.mark_gone();
        flush(&mut self.tally, &self.svc.metrics);
        self.svc.metrics.conn_closed();
    }

    fn activity(&self, now: Instant) -> net::Activity {
        match &self.state {
            State::Idle { .. } => net::Activity::Idle,
            State::Head { .. } => net::Activity::Arriving,
            // A body slower than the minimum rate (L6) has not arrived in any
            // useful sense: at the connection cap it may be closed for a
            // client that is ready. Judged from its first second, not after
            // `body_rate_grace`: at the cap, a ready client goes first.
            State::Body(b)
                if b.is_slower_than(self.svc.limits.body_min_rate_bytes_per_sec, now) =>
            {
                net::Activity::Arriving
            }
            State::Body(_) | State::Waiting(_) | State::Closing => net::Activity::Busy,
            State::Streaming(_) => net::Activity::Streaming,
        }
    }
}

/// The loop's callbacks, each one batch (see [`Conn::end_batch`]).
impl Conn {
    fn deadline(&mut self, io: &mut Io<'_, Msg>) -> Next {
        let now = io.now;
        match &mut self.state {
            State::Idle { since } => {
                let drained = self.drain_idle_until.is_some_and(|d| now >= d);
                if drained || now >= *since + self.svc.limits.keep_alive_timeout {
                    // L7: an idle keep-alive connection is closed without a
                    // response. The loop has just read the socket, so no
                    // request sent before now is lost with it; a response
                    // still being written is finished first.
                    if io.wbuf.is_empty() {
                        return Next::close_now();
                    }
                    self.state = State::Closing;
                    return Next::close_after_write();
                }
            }
            State::Head { deadline } => {
                if now >= *deadline {
                    return self.fail(ParseError::HeadTimeout, io);
                }
            }
            State::Body(b) => {
                let l = &self.svc.limits;
                let stalled = now >= b.last_progress + l.body_gap_timeout;
                let mut too_slow = false;
                if now >= b.rate_check {
                    too_slow = b.is_slower_than(l.body_min_rate_bytes_per_sec, now);
                    // Checked once a second after the grace period.
                    b.rate_check = now + Duration::from_secs(1);
                }
                if stalled || too_slow {
                    return self.fail(ParseError::BodyTimeout, io);
                }
            }
            State::Streaming(s) => {
                if now >= s.next_ping {
                    let mut buf = bytes::BytesMut::new();
                    sse::encode_comment("keepalive", &mut buf);
                    put_stream_bytes(s.chunked, &buf, io.wbuf);
                    s.next_ping = now + self.svc.limits.sse_heartbeat;
                }
            }
            State::Waiting(_) | State::Closing => {}
        }
        self.next(io)
    }

    fn shut_down(&mut self, io: &mut Io<'_, Msg>) -> Next {
        match &self.state {
            State::Idle { .. } if io.rbuf.is_empty() => {
                // A keep-alive client may have a request on its way (or in
                // the socket already): it is answered, with `Connection:
                // close`, if it comes within the grace.
                self.drain_idle_until = Some(io.now + self.svc.limits.drain_idle_grace);
                self.next(io)
            }
            State::Idle { .. } => self.process(io),
            State::Streaming(_) => match self.end_stream(io) {
                Step::Again => self.process(io),
                Step::Done(n) => n,
            },
            // In-flight requests finish; their responses say `Connection: close`.
            State::Head { .. } | State::Body(_) | State::Waiting(_) | State::Closing => {
                self.next(io)
            }
        }
    }
}

/// Makes a [`Conn`] per accepted connection.
#[derive(Debug)]
pub(crate) struct Factory {
    pub(crate) svc: Arc<Service>,
    pub(crate) streams: Arc<StreamCap>,
}

impl net::Factory for Factory {
    type Proto = Conn;
    fn open(&self, now: Instant, peer: std::net::SocketAddr) -> Conn {
        Conn::new(self.svc.clone(), self.streams.clone(), now, peer.ip())
    }
}
