//! Session-era state: one [`Session`] per `initialize`, in a capped store
//! whose idle sessions expire.

use super::context::{out_id, Outbox};
use super::error::Busy;
use super::jsonrpc::{ErrorObject, RequestId};
use crate::util::{lock, read, write};
use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// An unguessable session id: 128 bits from the OS CSPRNG, as 32 hex digits
/// (SECURITY.md M4: visible ASCII, never sequential).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(pub String);

impl SessionId {
    /// A fresh random id.
    pub fn random() -> SessionId {
        let mut b = [0u8; 16];
        if getrandom::fill(&mut b).is_err() {
            // No CSPRNG means no safe ids; refusing to run is better than guessable ids.
            tracing::error!("the OS random number generator failed");
            std::process::abort();
        }
        SessionId(b.iter().map(|x| format!("{x:02x}")).collect())
    }
}

type Reply = Result<Value, ErrorObject>;

/// One client's session.
pub struct Session {
    /// The id (`Mcp-Session-Id`).
    pub id: SessionId,
    /// The negotiated protocol version.
    pub version: String,
    /// Opened through the 2024-11-05 HTTP+SSE transport.
    pub legacy: bool,
    /// Who opened it (with auth on): only the same principal may use it (M6).
    pub principal: Option<String>,
    client_caps: Mutex<Value>,
    client_info: Mutex<Value>,
    log_level: AtomicU8,
    last_used: Mutex<Instant>,
    created: Instant,
    /// The client has made a request (or opened a stream) since `initialize`.
    used: AtomicBool,
    /// The server's only client (stdio): no share of the tool pool applies.
    sole: AtomicBool,
    pub(crate) initialized: AtomicBool,
    pub(crate) subscriptions: Mutex<HashSet<String>>,
    pending: Mutex<HashMap<RequestId, Sender<Reply>>>,
    next_id: AtomicU64,
    running: Mutex<HashMap<RequestId, Arc<AtomicBool>>>,
    standalone: Mutex<Option<Arc<dyn Outbox>>>,
    /// Transport-specific state (streams and replay buffers).
    pub(crate) transport: Mutex<super::transport::SessionStreams>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("legacy", &self.legacy)
            .finish()
    }
}

impl Session {
    pub(crate) fn new(
        version: &str,
        client_caps: Value,
        client_info: Value,
        legacy: bool,
    ) -> Session {
        Session {
            id: SessionId::random(),
            version: version.to_string(),
            legacy,
            principal: None,
            client_caps: Mutex::new(client_caps),
            client_info: Mutex::new(client_info),
            log_level: AtomicU8::new(0),
            last_used: Mutex::new(Instant::now()),
            created: Instant::now(),
            used: AtomicBool::new(false),
            sole: AtomicBool::new(false),
            initialized: AtomicBool::new(false),
            subscriptions: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
            standalone: Mutex::new(None),
            transport: Mutex::new(Default::default()),
            closed: AtomicBool::new(false),
        }
    }

    /// Binds the session to the principal that opened it (M6).
    pub(crate) fn with_principal(mut self, principal: Option<String>) -> Session {
        self.principal = principal;
        self
    }

    /// The capabilities the client declared at `initialize`.
    pub fn client_caps(&self) -> Value {
        lock(&self.client_caps).clone()
    }

    /// The client's `clientInfo`.
    pub fn client_info(&self) -> Value {
        lock(&self.client_info).clone()
    }

    /// Legacy sessions exist before `initialize`; it fills these in.
    pub(crate) fn set_client(&self, caps: Value, info: Value) {
        *lock(&self.client_caps) = caps;
        *lock(&self.client_info) = info;
    }

    /// The minimum log level index the client wants (`logging/setLevel`).
    pub fn log_level(&self) -> u8 {
        self.log_level.load(Ordering::Relaxed)
    }

    pub(crate) fn set_log_level(&self, i: u8) {
        self.log_level.store(i, Ordering::Relaxed);
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Records that the client made a request (or opened a stream) in this
    /// session: it is no longer subject to `mcp.unused_session_timeout_ms`.
    pub(crate) fn mark_used(&self) {
        self.used.store(true, Ordering::Relaxed);
    }

    /// Marks the session as the server's only client (stdio), which shares
    /// the tool pool with no one.
    pub(crate) fn set_sole_client(&self) {
        self.sole.store(true, Ordering::Relaxed);
    }

    /// True for the server's only client (see [`Session::set_sole_client`]).
    pub(crate) fn is_sole_client(&self) -> bool {
        self.sole.load(Ordering::Relaxed)
    }

    /// In use: a stream is open, a call runs, or a request of ours awaits
    /// the client's answer. A busy session is never evicted or expired.
    pub(crate) fn is_busy(&self) -> bool {
        self.has_live_standalone()
            || !lock(&self.running).is_empty()
            || !lock(&self.pending).is_empty()
            || lock(&self.transport).any_attached()
    }

    fn idle_since(&self) -> Instant {
        *lock(&self.last_used)
    }

    /// True after DELETE or expiry.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn register_pending(&self) -> (RequestId, Receiver<Reply>) {
        let id = out_id(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = crossbeam_channel::bounded(1);
        lock(&self.pending).insert(id.clone(), tx);
        (id, rx)
    }

    pub(crate) fn forget_pending(&self, id: &RequestId) {
        lock(&self.pending).remove(id);
    }

    /// Routes a client's response to the tool waiting for it. False if none waits.
    pub(crate) fn deliver(&self, id: &RequestId, reply: Reply) -> bool {
        match lock(&self.pending).remove(id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    pub(crate) fn start_call(&self, id: &RequestId, flag: Arc<AtomicBool>) {
        lock(&self.running).insert(id.clone(), flag);
    }

    pub(crate) fn end_call(&self, id: &RequestId) {
        lock(&self.running).remove(id);
    }

    /// `notifications/cancelled`: flags the running call, if any.
    pub(crate) fn cancel(&self, id: &RequestId) {
        if let Some(f) = lock(&self.running).get(id) {
            f.store(true, Ordering::Release);
        }
    }

    /// Sets the stream for messages not tied to a request (GET stream, legacy stream).
    pub(crate) fn set_standalone(&self, out: Option<Arc<dyn Outbox>>) {
        *lock(&self.standalone) = out;
    }

    /// Sets the standalone stream unless a live one is already attached.
    pub(crate) fn set_standalone_if_free(&self, out: Arc<dyn Outbox>) -> bool {
        let mut g = lock(&self.standalone);
        if g.as_ref().is_some_and(|o| o.is_open()) {
            return false;
        }
        *g = Some(out);
        true
    }

    /// True while the session's standalone stream (GET or legacy SSE) is attached and open.
    pub(crate) fn has_live_standalone(&self) -> bool {
        lock(&self.standalone).as_ref().is_some_and(|o| o.is_open())
    }

    /// Sends a message not tied to a request; dropped if no stream is open.
    pub fn notify(&self, json: String) -> bool {
        let out = lock(&self.standalone).clone();
        match out {
            Some(o) => o.send(json),
            None => false,
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for f in lock(&self.running).values() {
            f.store(true, Ordering::Release);
        }
        lock(&self.pending).clear();
        *lock(&self.standalone) = None;
        lock(&self.transport).close_all();
    }
}

/// All sessions: capped in number (in total and per principal), idle ones
/// expire. At a cap, the least recently used idle session makes room
/// (SECURITY.md M18).
#[derive(Debug)]
pub struct SessionStore {
    map: RwLock<HashMap<SessionId, Arc<Session>>>,
    max: usize,
    max_per_principal: usize,
    idle: Duration,
    unused: Duration,
}

impl SessionStore {
    /// A store holding at most `max` sessions, each expiring after `idle`
    /// unused, or `unused` after `initialize` if the client never makes a
    /// request in it.
    pub fn new(max: usize, idle: Duration, unused: Duration) -> SessionStore {
        SessionStore {
            map: RwLock::new(HashMap::new()),
            max,
            max_per_principal: usize::MAX,
            idle,
            unused,
        }
    }

    /// Caps the sessions one principal may hold (M6).
    pub fn with_max_per_principal(mut self, n: usize) -> SessionStore {
        self.max_per_principal = n;
        self
    }

    /// True if `s` has expired at `now`: not busy, and idle past the idle
    /// timeout, or never used and past the unused timeout.
    fn is_expired(&self, s: &Session, now: Instant) -> bool {
        let idle = now.saturating_duration_since(s.idle_since()) >= self.idle;
        let unused = !s.used.load(Ordering::Relaxed)
            && now.saturating_duration_since(s.created) >= self.unused;
        (idle || unused) && !s.is_busy()
    }

    /// Removes and closes the least recently used session among those
    /// `pick` selects that is not busy (a dead legacy session counts as
    /// idle); a session never used since `initialize` goes before any used
    /// one, so a flood of bare `initialize`s evicts itself, not the
    /// sessions of working clients. False if every one is busy.
    fn evict_lru(
        m: &mut HashMap<SessionId, Arc<Session>>,
        pick: impl Fn(&Session) -> bool,
    ) -> bool {
        let victim = m
            .values()
            .filter(|s| pick(s) && !s.is_busy())
            .min_by_key(|s| (s.used.load(Ordering::Relaxed), s.idle_since()))
            .map(|s| s.id.clone());
        match victim.and_then(|id| m.remove(&id)) {
            Some(s) => {
                tracing::debug!(version = %s.version, "session table full: least recently used idle session evicted");
                s.close();
                true
            }
            None => false,
        }
    }

    /// Creates a session. At the cap (in total, or for its principal), the
    /// expired sessions go first, then the least recently used idle one;
    /// refused only if every session in the way is busy.
    pub(crate) fn create(&self, s: Session) -> Result<Arc<Session>, Busy> {
        let s = Arc::new(s);
        let mut m = write(&self.map);
        if let Some(p) = &s.principal {
            let mine = |x: &Session| x.principal.as_ref() == Some(p);
            let held = m.values().filter(|x| mine(x)).count();
            // M6: a principal holds at most its cap; its own idle sessions make room.
            if held >= self.max_per_principal && !Self::evict_lru(&mut m, mine) {
                return Err(Busy::PrincipalSessions {
                    max: self.max_per_principal,
                });
            }
        }
        if m.len() >= self.max {
            let now = Instant::now();
            m.retain(|_, x| {
                let keep = !self.is_expired(x, now);
                if !keep {
                    x.close();
                }
                keep
            });
            if m.len() >= self.max && !Self::evict_lru(&mut m, |_| true) {
                return Err(Busy::Sessions { max: self.max });
            }
        }
        m.insert(s.id.clone(), s.clone());
        Ok(s)
    }

    /// A live session by id; touching it keeps it alive.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        // The read lock is released at the end of this statement, before
        // `remove` takes the write lock.
        let s = read(&self.map).get(&SessionId(id.to_string())).cloned()?;
        if self.is_expired(&s, Instant::now()) {
            self.remove(id);
            return None;
        }
        s.touch();
        Some(s)
    }

    /// Ends a session (DELETE). Returns whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        let mut m = write(&self.map);
        match m.remove(&SessionId(id.to_string())) {
            Some(s) => {
                s.close();
                true
            }
            None => false,
        }
    }

    /// Drops sessions idle for longer than the idle timeout, and those
    /// never used within the unused timeout. A session with a live stream
    /// or a running call is in use and is kept.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut m = write(&self.map);
        m.retain(|_, s| {
            // A legacy session lives exactly as long as its SSE stream (M16).
            if s.legacy && !s.has_live_standalone() {
                s.close();
                return false;
            }
            if s.is_busy() {
                s.touch();
                return true;
            }
            let keep = !self.is_expired(s, now);
            if !keep {
                s.close();
            }
            keep
        });
    }

    /// How many legacy (HTTP+SSE) sessions are open.
    pub fn legacy_count(&self) -> usize {
        read(&self.map)
            .values()
            .filter(|s| s.legacy && s.has_live_standalone())
            .count()
    }

    /// Every live session (for broadcasts such as `list_changed`).
    pub fn all(&self) -> Vec<Arc<Session>> {
        read(&self.map).values().cloned().collect()
    }

    /// How many sessions exist.
    pub fn len(&self) -> usize {
        read(&self.map).len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_distinct() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
        assert_eq!(a.0.len(), 32);
        assert!(a.0.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    fn new_session() -> Session {
        Session::new("2025-11-25", Value::Null, Value::Null, false)
    }

    /// Marks `s` busy, as a call in progress does.
    fn busy(s: &Session) {
        s.start_call(&RequestId::String("x".into()), Arc::default());
    }

    #[test]
    fn idle_and_unused_sessions_expire() {
        let store = SessionStore::new(10, Duration::from_millis(80), Duration::from_millis(40));
        let used = store.create(new_session()).unwrap();
        used.mark_used();
        let unused = store.create(new_session()).unwrap();
        let busy_unused = store.create(new_session()).unwrap();
        busy(&busy_unused);
        std::thread::sleep(Duration::from_millis(50));
        assert!(store.get(&unused.id.0).is_none(), "never used: expired");
        assert!(unused.is_closed());
        assert!(store.get(&used.id.0).is_some());
        assert!(store.get(&busy_unused.id.0).is_some(), "busy: kept");
        std::thread::sleep(Duration::from_millis(90));
        store.sweep();
        assert!(store.get(&used.id.0).is_none(), "idle: expired");
        assert!(store.get(&busy_unused.id.0).is_some());
    }

    #[test]
    fn at_the_cap_the_least_recently_used_idle_session_makes_room() {
        let long = Duration::from_secs(60);
        let store = SessionStore::new(3, long, long);
        let a = store.create(new_session()).unwrap();
        let b = store.create(new_session()).unwrap();
        let c = store.create(new_session()).unwrap();
        busy(&a);
        std::thread::sleep(Duration::from_millis(2));
        // b is now the least recently used; a is older but busy.
        store.get(&c.id.0).unwrap();
        let d = store.create(new_session()).unwrap();
        assert!(b.is_closed() && store.get(&b.id.0).is_none());
        assert!(!a.is_closed() && !c.is_closed());
        busy(&c);
        busy(&d);
        assert_eq!(
            store.create(new_session()).unwrap_err(),
            Busy::Sessions { max: 3 }
        );
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn at_the_cap_sessions_never_used_go_before_used_ones() {
        let long = Duration::from_secs(60);
        let store = SessionStore::new(2, long, long);
        let worker = store.create(new_session()).unwrap();
        worker.mark_used();
        let bare = store.create(new_session()).unwrap();
        // `worker` is the least recently used, but it has done work.
        store.get(&bare.id.0).unwrap();
        store.create(new_session()).unwrap();
        assert!(bare.is_closed(), "the bare initialize made room");
        assert!(!worker.is_closed());
    }

    #[test]
    fn a_principal_at_its_cap_makes_room_from_its_own_idle_sessions() {
        let long = Duration::from_secs(60);
        let store = SessionStore::new(10, long, long).with_max_per_principal(2);
        let of = |p: &str| new_session().with_principal(Some(p.to_string()));
        let a1 = store.create(of("alice")).unwrap();
        let b1 = store.create(of("bob")).unwrap();
        let a2 = store.create(of("alice")).unwrap();
        let a3 = store.create(of("alice")).unwrap();
        assert!(a1.is_closed(), "alice's oldest idle session made room");
        assert!(!b1.is_closed(), "never another principal's");
        busy(&a2);
        busy(&a3);
        assert_eq!(
            store.create(of("alice")).unwrap_err(),
            Busy::PrincipalSessions { max: 2 }
        );
        store.create(of("bob")).unwrap();
    }
}
