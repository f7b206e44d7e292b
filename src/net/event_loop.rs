//! The per-thread event loop: accept, read, hand to the protocol, write, time out.

use super::buf_pool::BufPool;
use super::mailbox::{ConnId, Handle, Signal};
use super::timer::Timers;
use super::{sys, Activity, Close, Config, Error, Factory, Io, Next, Protocol};
use bytes::{Buf, BytesMut};
use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// Timer key for "retry accept" after the OS refused one (EMFILE and friends).
const ACCEPT_RETRY_KEY: u64 = u64::MAX;
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Spare buffers each loop keeps.
const POOL_MAX_FREE: usize = 256;
/// Most idle connections closed at once to admit new ones at the cap
/// (nginx's `ngx_drain_connections`: 32).
const EVICT_MAX: usize = 32;

/// State shared by all loops of one server.
#[derive(Debug)]
struct Shared {
    shutdown: AtomicBool,
    open: AtomicUsize,
    /// Connections the drain deadline closed with a request in progress.
    cut_off: AtomicUsize,
    max_connections: usize,
    signals: Vec<Arc<Signal>>,
}

impl Shared {
    fn try_reserve_conn(&self) -> bool {
        let mut cur = self.open.load(Ordering::Relaxed);
        loop {
            if cur >= self.max_connections {
                return false;
            }
            match self
                .open
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    fn release_conn(&self) {
        let before = self.open.fetch_sub(1, Ordering::AcqRel);
        if before >= self.max_connections {
            // Some loop may have stopped accepting at the cap: let them all retry.
            for s in &self.signals {
                s.wake();
            }
        }
    }

    fn wake_all(&self) {
        for s in &self.signals {
            s.wake();
        }
    }
}

/// A running server: N loops sharing one port.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts a graceful shutdown of a [`Server`] from any thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Stops accepting, lets every connection finish what it has in flight
    /// (up to the drain timeout), then the loops exit. Idempotent.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake_all();
    }
}

impl Server {
    /// The address the server listens on (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that can stop this server from another thread or a signal handler thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
        }
    }

    /// Open connections right now, across all loops.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Waits until every loop has exited (after a shutdown). Returns how
    /// many connections the drain deadline closed with a request still in
    /// progress (each is logged); 0 means nothing in flight was lost.
    pub fn join(self) -> usize {
        for t in self.threads {
            let _ = t.join();
        }
        self.shared.cut_off.load(Ordering::Acquire)
    }
}

fn bind(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_reuse_address(true)?;
    // Where the kernel balances them, each loop binds its own listener on
    // the same port, so loops share no lock on the accept path.
    if sys::LISTENER_PER_LOOP {
        sys::balance_listener(&sock)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog)?;
    Ok(sock.into())
}

/// Binds the listeners and starts `cfg.io_threads` loops serving `factory`'s protocol.
///
/// `drain_timeout` bounds how long a shutdown waits for in-flight work.
pub fn start<F: Factory>(
    cfg: Config,
    drain_timeout: Duration,
    factory: Arc<F>,
) -> Result<Server, Error> {
    let n = cfg.resolved_io_threads().max(1);
    let first = bind(cfg.listen, cfg.backlog).map_err(|source| Error::Listen {
        addr: cfg.listen,
        source,
    })?;
    let addr = first.local_addr().map_err(Error::Setup)?;
    let mut listeners = Vec::with_capacity(n);
    for _ in 1..n {
        let l = if sys::LISTENER_PER_LOOP {
            bind(addr, cfg.backlog).map_err(|source| Error::Listen { addr, source })?
        } else {
            // One socket, a descriptor of it per loop: each loop registers
            // its own, hears every new connection and accepts until
            // `WouldBlock`; whichever loop is free takes it.
            first.try_clone().map_err(Error::Setup)?
        };
        listeners.push(l);
    }
    listeners.insert(0, first);

    let mut parts = Vec::with_capacity(n);
    let mut signals = Vec::with_capacity(n);
    for l in listeners {
        let poll = Poll::new().map_err(Error::Setup)?;
        let waker = mio::Waker::new(poll.registry(), WAKER).map_err(Error::Setup)?;
        let signal = Arc::new(Signal::new(waker));
        signals.push(signal.clone());
        parts.push((poll, l, signal));
    }
    let shared = Arc::new(Shared {
        shutdown: AtomicBool::new(false),
        open: AtomicUsize::new(0),
        cut_off: AtomicUsize::new(0),
        max_connections: cfg.max_connections.max(1),
        signals,
    });

    let mut threads = Vec::with_capacity(n);
    for (i, (poll, l, signal)) in parts.into_iter().enumerate() {
        let mut listener = TcpListener::from_std(l);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(Error::Setup)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let (shared, factory, cfg) = (shared.clone(), factory.clone(), cfg.clone());
        // The loop is built on its own thread: protocol values never cross threads.
        let t = std::thread::Builder::new()
            .name(format!("conduit-io-{i}"))
            .spawn(move || {
                let lp: Loop<F> = Loop {
                    poll,
                    listener: Some(listener),
                    accept_paused: false,
                    held: None,
                    accept_retry_at: None,
                    no_quiet_until: Instant::now(),
                    conns: Slab::new(),
                    next_gen: 0,
                    rx,
                    cx: LoopCx {
                        pool: BufPool::new(cfg.buffer_bytes, POOL_MAX_FREE),
                        timers: Timers::default(),
                        tx,
                        signal,
                        now: Instant::now(),
                        cfg,
                    },
                    shared,
                    factory,
                    drain_timeout,
                    draining_until: None,
                };
                lp.run()
            })
            .map_err(Error::Setup)?;
        threads.push(t);
    }
    Ok(Server {
        addr,
        shared,
        threads,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Write side shut; draining unread input until `until` or the byte cap (S27).
    Linger {
        until: Instant,
        drained: usize,
    },
}

struct Conn<P> {
    sock: TcpStream,
    gen: u32,
    /// When bytes last arrived (or the connection was accepted): at the
    /// connection cap, the idle connections quiet the longest go first.
    last_read: Instant,
    proto: P,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Edge-triggered readiness we have not consumed yet.
    readable: bool,
    writable: bool,
    /// The peer's FIN was reported with the readiness (EPOLLRDHUP): read
    /// until 0 instead of trusting a short read, or the EOF goes unseen.
    peer_hup: bool,
    eof: bool,
    want_read: bool,
    close: Close,
    phase: Phase,
    proto_deadline: Option<Instant>,
    /// The time of this connection's live timer-heap entry, if any.
    armed: Option<Instant>,
    /// A write hit `WouldBlock` and the backlog has not emptied since.
    write_blocked: bool,
    /// Write-rate window (L12): when it started, bytes written in it.
    write_window: Option<(Instant, u64)>,
}

impl<P> Conn<P> {
    fn key(&self, idx: usize) -> u64 {
        ((self.gen as u64) << 32) | idx as u64
    }

    fn write_check_at(&self, grace: Duration) -> Option<Instant> {
        self.write_window.map(|(start, _)| start + grace)
    }

    fn effective_deadline(&self, grace: Duration) -> Option<Instant> {
        // PERF: plain `if`s, not a flattened array's `min`: this runs after
        // every event (callgrind, pipeline_client.py --depth=1).
        let mut d = self.proto_deadline;
        if let Some(w) = self.write_check_at(grace) {
            d = Some(d.map_or(w, |d| d.min(w)));
        }
        if let Phase::Linger { until, .. } = self.phase {
            d = Some(d.map_or(until, |d| d.min(until)));
        }
        d
    }

    /// Puts this connection's earliest deadline in the timer heap unless an
    /// entry at or before it is already there (a later one is re-armed when
    /// the early entry fires).
    fn rearm(&mut self, idx: usize, timers: &mut Timers, grace: Duration) {
        if let Some(d) = self.effective_deadline(grace) {
            if self.armed.is_none_or(|a| d < a) {
                self.armed = Some(d);
                timers.arm(d, self.key(idx));
            }
        }
    }

    /// Whether closing it now loses nothing: nothing is queued to write,
    /// and it is idle between requests, still receiving one (an unfinished
    /// head, a body slower than the minimum rate), or already lingering.
    fn is_quiet(&self, now: Instant) -> bool
    where
        P: Protocol,
    {
        match self.phase {
            Phase::Linger { .. } => true,
            Phase::Open => {
                self.wbuf.is_empty()
                    && matches!(
                        self.proto.activity(now),
                        Activity::Idle | Activity::Arriving
                    )
            }
        }
    }

    /// Whether a request on it is under way: arriving, being handled, or
    /// its response not yet written. A lingering connection's is written.
    fn has_request_in_flight(&self, now: Instant) -> bool
    where
        P: Protocol,
    {
        match self.phase {
            Phase::Linger { .. } => false,
            Phase::Open => {
                !self.wbuf.is_empty()
                    || matches!(
                        self.proto.activity(now),
                        Activity::Arriving | Activity::Busy
                    )
            }
        }
    }

    fn apply(&mut self, next: Next) {
        self.want_read = next.read;
        self.proto_deadline = next.deadline;
        self.close = match (self.close, next.close) {
            (Close::Now, _) | (_, Close::Now) => Close::Now,
            (Close::AfterWrite, _) | (_, Close::AfterWrite) => Close::AfterWrite,
            (Close::No, Close::No) => Close::No,
        };
    }
}

/// Everything a loop owns except its connections, so a connection and the
/// loop's parts can be borrowed at the same time.
struct LoopCx<M> {
    pool: BufPool,
    timers: Timers,
    tx: Sender<(ConnId, M)>,
    signal: Arc<Signal>,
    now: Instant,
    cfg: Config,
}

enum Event<M> {
    Read,
    Message(M),
    Deadline,
    Drained,
    Shutdown,
}

struct Loop<F: Factory> {
    poll: Poll,
    listener: Option<TcpListener>,
    accept_paused: bool,
    /// A connection accepted at the cap with no idle one to close for it:
    /// admitted first when a slot frees.
    held: Option<(TcpStream, SocketAddr)>,
    /// When the accept-retry timer is due, if it is armed.
    accept_retry_at: Option<Instant>,
    /// A scan for quiet connections found none: none is made before this.
    no_quiet_until: Instant,
    conns: Slab<Conn<F::Proto>>,
    next_gen: u32,
    rx: Receiver<(ConnId, <F::Proto as Protocol>::Msg)>,
    cx: LoopCx<<F::Proto as Protocol>::Msg>,
    shared: Arc<Shared>,
    factory: Arc<F>,
    drain_timeout: Duration,
    draining_until: Option<Instant>,
}

/// What `drive` concluded.
enum Outcome {
    Keep,
    Closed,
}

impl<F: Factory> Loop<F> {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let next = [self.cx.timers.next(), self.draining_until]
                .into_iter()
                .flatten()
                .min();
            let timeout = next.map(|t| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "poll failed; event loop stops");
                break;
            }
            self.cx.now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => self.on_wake(),
                    t => {
                        let hup = ev.is_read_closed() || ev.is_error();
                        let readable = ev.is_readable() || hup;
                        let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                        self.on_io(ConnId::from_token(t), readable, writable, hup);
                    }
                }
            }
            self.fire_timers();
            if self.shared.shutdown.load(Ordering::Acquire) && self.draining_until.is_none() {
                self.begin_shutdown();
            }
            if let Some(until) = self.draining_until {
                if self.conns.is_empty() {
                    break;
                }
                if self.cx.now >= until {
                    self.cut_off_all();
                    break;
                }
            }
        }
    }

    fn on_wake(&mut self) {
        self.cx.signal.clear();
        if self.accept_paused && self.listener.is_some() {
            self.accept();
        }
        while let Ok((id, msg)) = self.rx.try_recv() {
            self.dispatch(id, Event::Message(msg));
        }
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            // A connection accepted while at the cap goes before new ones.
            let (sock, peer) = match self.held.take() {
                Some(held) => held,
                None => match listener.accept() {
                    Ok(accepted) => accepted,
                    Err(e) => match e.kind() {
                        io::ErrorKind::WouldBlock => {
                            self.accept_paused = false;
                            return;
                        }
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                        _ => {
                            // EMFILE/ENFILE/ENOMEM: the pending connection stays in the
                            // backlog and no new edge will come for it, so retry on a timer.
                            tracing::warn!(error = %e, "accept failed; retrying shortly");
                            self.accept_paused = true;
                            self.arm_accept_retry();
                            return;
                        }
                    },
                },
            };
            // At the cap, quiet connections make room for a waiting one (as
            // nginx does); if none is quiet, it waits for a slot, and so
            // does the backlog behind it. A scan that found nothing is not
            // repeated before the next retry tick, however many edges come.
            let admitted = self.shared.try_reserve_conn()
                || (self.cx.now >= self.no_quiet_until
                    && self.evict_quiet()
                    && self.shared.try_reserve_conn());
            if !admitted {
                self.held = Some((sock, peer));
                self.accept_paused = true;
                // A busy connection that turns quiet frees nothing by
                // itself: look again shortly.
                self.arm_accept_retry();
                return;
            }
            self.accept_paused = false;
            self.add_conn(sock, peer);
        }
    }

    /// Arms the one accept-retry timer, unless it is armed already.
    fn arm_accept_retry(&mut self) {
        if self.accept_retry_at.is_none() {
            let at = self.cx.now + ACCEPT_RETRY_DELAY;
            self.accept_retry_at = Some(at);
            self.cx.timers.arm(at, ACCEPT_RETRY_KEY);
        }
    }

    /// At the connection cap, closes the quiet connections (see
    /// [`Conn::is_quiet`]) that have been so the longest: as nginx drains
    /// its reusable connections, an eighth of them, 1 to 32. Returns whether
    /// any was closed; if none was, no scan is made before the next retry.
    fn evict_quiet(&mut self) -> bool {
        let now = self.cx.now;
        // Connections accepted in one round share its clock; the generation
        // (one more per accept) orders them.
        let mut quiet: Vec<(Instant, u32, usize)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_quiet(now))
            .map(|(i, c)| (c.last_read, c.gen, i))
            .collect();
        let n = (quiet.len() / 8).clamp(1, EVICT_MAX);
        quiet.sort_unstable();
        let mut closed = 0;
        for (last_read, gen, i) in quiet {
            if closed == n {
                break;
            }
            // Bytes that arrived unread make a connection busy, not quiet,
            // and one that just read them is no longer the quietest.
            self.read_pending(i, gen);
            if self
                .conns
                .get(i)
                .is_some_and(|c| c.gen == gen && c.last_read == last_read && c.is_quiet(now))
            {
                self.close_conn(i);
                closed += 1;
            }
        }
        if closed > 0 {
            tracing::debug!(
                closed,
                "connection cap: closed quiet connections to admit new ones"
            );
        } else {
            self.no_quiet_until = now + ACCEPT_RETRY_DELAY;
        }
        closed > 0
    }

    /// Reads what reached connection `idx`'s socket since its last read
    /// and lets the protocol act on it, so a decision to close (a deadline,
    /// the cap) never drops a request already in the kernel.
    fn read_pending(&mut self, idx: usize, gen: u32) {
        if let Some(c) = self.conns.get_mut(idx).filter(|c| c.gen == gen) {
            if c.phase == Phase::Open && c.want_read && !c.eof {
                c.readable = true;
                self.drive(idx, None);
            }
        }
    }

    fn add_conn(&mut self, mut sock: TcpStream, peer: SocketAddr) {
        // Small responses must not wait for Nagle's algorithm.
        let _ = sock.set_nodelay(true);
        sys::prepare_stream(&sock);
        let entry = self.conns.vacant_entry();
        let idx = entry.key();
        self.next_gen = self.next_gen.wrapping_add(1);
        let gen = self.next_gen;
        let Ok(idx32) = u32::try_from(idx) else {
            self.shared.release_conn();
            return;
        };
        let id = ConnId { idx: idx32, gen };
        // Registered once for both directions, edge-triggered: no epoll_ctl
        // (kevent) per request.
        if let Err(e) = self.poll.registry().register(
            &mut sock,
            id.to_token(),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(error = %e, "register failed");
            self.shared.release_conn();
            return;
        }
        let proto = self.factory.open(self.cx.now, peer);
        entry.insert(Conn {
            sock,
            gen,
            last_read: self.cx.now,
            proto,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            readable: false,
            writable: true,
            peer_hup: false,
            eof: false,
            want_read: true,
            close: Close::No,
            phase: Phase::Open,
            proto_deadline: None,
            armed: None,
            write_blocked: false,
            write_window: None,
        });
        // Let the protocol set its first deadline (idle timeout) without waiting for bytes.
        self.dispatch(id, Event::Deadline);
    }

    fn on_io(&mut self, id: ConnId, readable: bool, writable: bool, hup: bool) {
        let Some(c) = self.conns.get_mut(id.idx as usize) else {
            return;
        };
        if c.gen != id.gen {
            return;
        }
        c.readable |= readable;
        c.writable |= writable;
        c.peer_hup |= hup;
        self.drive(id.idx as usize, None);
    }

    /// Delivers an event to a live connection; drops it if the slot was reused.
    fn dispatch(&mut self, id: ConnId, ev: Event<<F::Proto as Protocol>::Msg>) {
        let idx = id.idx as usize;
        match self.conns.get(idx) {
            Some(c) if c.gen == id.gen => {}
            _ => return,
        }
        self.drive(idx, Some(ev));
    }

    fn fire_timers(&mut self) {
        let now = self.cx.now;
        while let Some((at, key)) = self.cx.timers.pop_due(now) {
            if key == ACCEPT_RETRY_KEY {
                self.accept_retry_at = None;
                if self.accept_paused {
                    self.accept();
                }
                continue;
            }
            let idx = (key & 0xffff_ffff) as usize;
            let gen = (key >> 32) as u32;
            let Some(c) = self.conns.get_mut(idx) else {
                continue;
            };
            if c.gen != gen || c.armed != Some(at) {
                continue; // stale entry: the deadline moved or the slot was reused
            }
            c.armed = None;
            let grace = self.cx.cfg.write_grace;
            if let Phase::Linger { until, .. } = c.phase {
                if now >= until {
                    self.close_conn(idx);
                    continue;
                }
            }
            if let Some((start, written)) = c.write_window {
                if now >= start + grace {
                    let secs = now.duration_since(start).as_secs_f64();
                    let min = self.cx.cfg.min_write_rate_bytes_per_sec as f64 * secs;
                    if (written as f64) < min {
                        tracing::debug!(conn = idx, written, "slow reader disconnected");
                        self.close_conn(idx);
                        continue;
                    }
                    c.write_window = Some((now, 0));
                }
            }
            let due = c.proto_deadline.is_some_and(|d| d <= now);
            if !due {
                c.rearm(idx, &mut self.cx.timers, grace);
                continue;
            }
            // A deadline (keep-alive, the drain's idle grace) acts only
            // after what reached the socket has been read.
            self.read_pending(idx, gen);
            match self.conns.get_mut(idx) {
                Some(c) if c.gen == gen && c.proto_deadline.is_some_and(|d| d <= now) => {
                    c.proto_deadline = None;
                }
                _ => continue,
            }
            self.drive(idx, Some(Event::Deadline));
        }
    }

    /// The drain deadline passed: closes every connection, counting and
    /// logging those with a request in progress.
    fn cut_off_all(&mut self) {
        let idxs: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        let now = self.cx.now;
        for i in idxs {
            let Some(c) = self.conns.get(i) else { continue };
            if c.has_request_in_flight(now) {
                self.shared.cut_off.fetch_add(1, Ordering::AcqRel);
                tracing::warn!(
                    conn = i,
                    activity = ?c.proto.activity(now),
                    unsent_bytes = c.wbuf.len(),
                    "drain deadline passed: request cut off"
                );
            }
            self.close_conn(i);
        }
    }

    fn begin_shutdown(&mut self) {
        // Connections the kernel completed but no loop accepted yet carry
        // requests their clients already sent: take them all in to be
        // answered, past the cap if need be (the backlog bounds them), since
        // closing the listener would reset them.
        let mut waiting: Vec<(TcpStream, SocketAddr)> = self.held.take().into_iter().collect();
        if let Some(l) = &self.listener {
            loop {
                match l.accept() {
                    Ok(accepted) => waiting.push(accepted),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                    Err(_) => break,
                }
            }
        }
        for (sock, peer) in waiting {
            self.shared.open.fetch_add(1, Ordering::AcqRel);
            self.add_conn(sock, peer);
        }
        // Dropping the listener closes it (a shared one once the last loop
        // drops its descriptor): the kernel hands new connections to no one.
        // Deregistered first: epoll keeps watching a socket while any
        // descriptor of it is open.
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.draining_until = Some(self.cx.now + self.drain_timeout);
        let idxs: Vec<(usize, u32)> = self.conns.iter().map(|(i, c)| (i, c.gen)).collect();
        for (idx, gen) in idxs {
            if let Ok(idx32) = u32::try_from(idx) {
                self.dispatch(ConnId { idx: idx32, gen }, Event::Shutdown);
            }
        }
    }

    fn close_conn(&mut self, idx: usize) {
        if !self.conns.contains(idx) {
            return;
        }
        let mut c = self.conns.remove(idx);
        let _ = self.poll.registry().deregister(&mut c.sock);
        c.proto.on_close();
        c.rbuf.clear();
        c.wbuf.clear();
        self.cx.pool.give_back(&mut c.rbuf);
        self.cx.pool.give_back(&mut c.wbuf);
        drop(c);
        self.shared.release_conn();
    }

    /// Runs one connection until it has nothing more to do for now.
    fn drive(&mut self, idx: usize, first: Option<Event<<F::Proto as Protocol>::Msg>>) {
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        match drive_conn(c, idx, &mut self.cx, first) {
            // PERF: the connection already in hand, not a second slab lookup.
            Outcome::Keep => c.rearm(idx, &mut self.cx.timers, self.cx.cfg.write_grace),
            Outcome::Closed => self.close_conn(idx),
        }
    }
}

fn call<P: Protocol>(c: &mut Conn<P>, idx: usize, cx: &mut LoopCx<P::Msg>, ev: Event<P::Msg>) {
    cx.pool.fill(&mut c.wbuf);
    let id = ConnId {
        idx: idx as u32,
        gen: c.gen,
    };
    let handle = || Handle {
        id,
        tx: cx.tx.clone(),
        signal: cx.signal.clone(),
    };
    let mut io = Io {
        rbuf: &mut c.rbuf,
        wbuf: &mut c.wbuf,
        now: cx.now,
        eof: c.eof,
        write_backlog_cap: cx.cfg.max_write_backlog_bytes,
        handle: &handle,
    };
    let next = match ev {
        Event::Read => c.proto.on_read(&mut io),
        Event::Message(m) => c.proto.on_message(m, &mut io),
        Event::Deadline => c.proto.on_deadline(&mut io),
        Event::Drained => c.proto.on_drained(&mut io),
        Event::Shutdown => c.proto.on_shutdown(&mut io),
    };
    c.apply(next);
}

/// Flushes `wbuf`. Returns whether the protocol should hear `on_drained`:
/// the backlog emptied and either it had blocked or the protocol had paused.
fn flush<P>(c: &mut Conn<P>, now: Instant) -> io::Result<bool> {
    if c.wbuf.is_empty() {
        return Ok(false);
    }
    while !c.wbuf.is_empty() {
        if !c.writable {
            return Ok(false);
        }
        match sys::send(&c.sock, &c.wbuf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                c.wbuf.advance(n);
                if let Some((_, w)) = &mut c.write_window {
                    *w += n as u64;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.writable = false;
                c.write_blocked = true;
                if c.write_window.is_none() {
                    c.write_window = Some((now, 0));
                }
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    c.write_window = None;
    let was_blocked = std::mem::take(&mut c.write_blocked);
    Ok(was_blocked || !c.want_read)
}

fn drive_conn<P: Protocol>(
    c: &mut Conn<P>,
    idx: usize,
    cx: &mut LoopCx<P::Msg>,
    first: Option<Event<P::Msg>>,
) -> Outcome {
    if let Some(ev) = first {
        if c.phase == Phase::Open {
            call(c, idx, cx, ev);
        }
    }
    loop {
        if c.close == Close::Now {
            return Outcome::Closed;
        }
        match flush(c, cx.now) {
            Ok(true) if c.phase == Phase::Open && c.close == Close::No => {
                call(c, idx, cx, Event::Drained);
                continue;
            }
            Ok(_) => {}
            Err(_) => return Outcome::Closed,
        }
        if let Phase::Linger { .. } = c.phase {
            return linger(c, cx);
        }
        if c.close == Close::AfterWrite {
            if !c.wbuf.is_empty() {
                break; // wait for writable
            }
            // RFC 9112 §9.6: close the write side first, then drain what the
            // peer still sends, so our response is not lost to a TCP RST.
            let _ = c.sock.shutdown(Shutdown::Write);
            c.phase = Phase::Linger {
                until: cx.now + cx.cfg.linger,
                drained: 0,
            };
            c.proto_deadline = None;
            c.write_window = None;
            return linger(c, cx);
        }
        let can_read =
            c.want_read && c.readable && !c.eof && c.wbuf.len() < cx.cfg.max_write_backlog_bytes;
        if !can_read {
            break;
        }
        cx.pool.fill(&mut c.rbuf);
        match sys::read_into(&c.sock, &mut c.rbuf) {
            Ok((0, _)) => {
                c.eof = true;
                c.readable = false;
            }
            Ok((n, room)) => {
                c.last_read = cx.now;
                // PERF: on epoll a short read means the socket is drained; a new
                // edge comes with the next bytes, so skip the read that would
                // fail with WouldBlock (syscalls/request, benches/load/run.sh).
                // The portable build reads until WouldBlock.
                if sys::SHORT_READ_MEANS_DRAINED && n < room && !c.peer_hup {
                    c.readable = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.readable = false;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Outcome::Closed,
        }
        call(c, idx, cx, Event::Read);
    }
    cx.pool.give_back(&mut c.rbuf);
    cx.pool.give_back(&mut c.wbuf);
    Outcome::Keep
}

/// Drains and discards input on a closing connection (S27).
fn linger<P: Protocol>(c: &mut Conn<P>, cx: &mut LoopCx<P::Msg>) -> Outcome {
    let Phase::Linger { until, mut drained } = c.phase else {
        return Outcome::Keep;
    };
    if cx.now >= until {
        return Outcome::Closed;
    }
    c.rbuf.clear();
    let mut scratch = [0u8; 4096];
    loop {
        match c.sock.read(&mut scratch) {
            Ok(0) => return Outcome::Closed,
            Ok(n) => {
                drained += n;
                if drained > cx.cfg.linger_max_bytes {
                    return Outcome::Closed;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Closed,
        }
    }
    c.phase = Phase::Linger { until, drained };
    cx.pool.give_back(&mut c.rbuf);
    cx.pool.give_back(&mut c.wbuf);
    Outcome::Keep
}
