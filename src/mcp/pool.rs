//! The tool thread pool: tools may block (waiting for a client's answer,
//! sleeping, I/O), so they run on threads of their own, not on the CPU pool.
//!
//! The pool is bounded three ways (SECURITY.md M17): `threads` run calls;
//! at most `max_queued` more wait for a thread; and one owner (a session, or
//! an authenticated principal's stateless calls) has at most `max_per_owner`
//! calls in progress, running or waiting. A call past a bound is refused at
//! once ([`Busy`]), never left hanging. A waiting call whose client went
//! away is dropped without running.

use super::error::Busy;
use crate::util::{lock, wait};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

/// A queued call. Called once: with `true` if its client went away before
/// it started (it must then only report the cancellation), else `false`.
pub(crate) type Job = Box<dyn FnOnce(bool) + Send>;

/// Tells whether a call's client has gone away (the call is abandoned).
pub(crate) type Abandoned = Arc<dyn Fn() -> bool + Send + Sync>;

struct Queued {
    job: Job,
    owner: Option<String>,
    abandoned: Abandoned,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    /// Calls in progress (waiting or running) per owner.
    per_owner: HashMap<String, usize>,
    /// Threads blocked waiting for a call.
    idle: usize,
    /// Admitted calls not yet queued.
    reserved: usize,
    stopped: bool,
}

impl State {
    fn release(&mut self, owner: Option<&String>) {
        let Some(o) = owner else { return };
        if let Some(n) = self.per_owner.get_mut(o) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_owner.remove(o);
            }
        }
    }

    /// Takes the waiting calls whose clients went away out of the queue.
    fn purge(&mut self) -> Vec<Job> {
        let mut gone = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for q in self.queue.drain(..) {
            if (q.abandoned)() {
                gone.push(q);
            } else {
                kept.push_back(q);
            }
        }
        self.queue = kept;
        gone.into_iter()
            .map(|q| {
                self.release(q.owner.as_ref());
                q.job
            })
            .collect()
    }
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

/// The pool. Dropping it lets its threads finish the calls they run, then exit.
pub(crate) struct ToolPool {
    shared: Arc<Shared>,
    max_queued: usize,
    max_per_owner: usize,
}

impl ToolPool {
    pub(crate) fn new(threads: usize, max_queued: usize, max_per_owner: usize) -> ToolPool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let sh = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("conduit-tool-{i}"))
                .spawn(move || work(&sh));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a tool thread");
            }
        }
        ToolPool {
            shared,
            max_queued,
            max_per_owner: max_per_owner.max(1),
        }
    }

    /// Admits a call for `owner`, or refuses it: the permit holds the
    /// call's place (in its owner's share and in the queue) until it is
    /// submitted or dropped. When a bound is reached, waiting calls whose
    /// clients went away are dropped first (their jobs are told so, on this
    /// thread).
    pub(crate) fn admit(&self, owner: Option<String>) -> Result<Permit<'_>, Busy> {
        let mut purged = Vec::new();
        let verdict = {
            let mut st = lock(&self.shared.state);
            let owner_full = |st: &State| {
                owner.as_ref().is_some_and(|o| {
                    st.per_owner.get(o).copied().unwrap_or(0) >= self.max_per_owner
                })
            };
            let queue_full = |st: &State| st.queue.len() + st.reserved >= st.idle + self.max_queued;
            if owner_full(&st) || queue_full(&st) {
                purged = st.purge();
            }
            if owner_full(&st) {
                Err(Busy::Owner {
                    max: self.max_per_owner,
                })
            } else if queue_full(&st) {
                Err(Busy::Queue {
                    max: self.max_queued,
                })
            } else {
                if let Some(o) = &owner {
                    *st.per_owner.entry(o.clone()).or_insert(0) += 1;
                }
                st.reserved += 1;
                Ok(())
            }
        };
        for j in purged {
            run(j, true);
        }
        verdict.map(|()| Permit {
            pool: self,
            owner,
            used: false,
        })
    }

    /// Calls waiting for a thread now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        let st = lock(&self.shared.state);
        st.queue.len().saturating_sub(st.idle)
    }

    #[cfg(test)]
    fn submit(&self, owner: Option<String>, abandoned: Abandoned, job: Job) -> Result<(), Busy> {
        self.admit(owner).map(|p| p.submit(abandoned, job))
    }
}

/// An admitted call's place in the pool; [`Permit::submit`] queues it.
/// Dropped unused, it gives the place back.
pub(crate) struct Permit<'a> {
    pool: &'a ToolPool,
    owner: Option<String>,
    used: bool,
}

impl Permit<'_> {
    /// Queues the call; a thread runs `job` (or tells it to skip, if the
    /// client went away while it waited).
    pub(crate) fn submit(mut self, abandoned: Abandoned, job: Job) {
        self.used = true;
        let sh = &self.pool.shared;
        {
            let mut st = lock(&sh.state);
            st.reserved = st.reserved.saturating_sub(1);
            st.queue.push_back(Queued {
                job,
                owner: self.owner.take(),
                abandoned,
            });
        }
        sh.ready.notify_one();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.used {
            let mut st = lock(&self.pool.shared.state);
            st.reserved = st.reserved.saturating_sub(1);
            st.release(self.owner.as_ref());
        }
    }
}

impl Drop for ToolPool {
    fn drop(&mut self) {
        lock(&self.shared.state).stopped = true;
        self.shared.ready.notify_all();
    }
}

fn run(job: Job, skip: bool) {
    // A panicking tool is answered by its own catch_unwind; this keeps the thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || job(skip)));
}

/// One tool thread: takes calls in order until the pool is dropped.
fn work(sh: &Shared) {
    loop {
        let q = {
            let mut st = lock(&sh.state);
            loop {
                if let Some(q) = st.queue.pop_front() {
                    break q;
                }
                if st.stopped {
                    return;
                }
                st.idle += 1;
                st = wait(&sh.ready, st);
                st.idle -= 1;
            }
        };
        let skip = (q.abandoned)();
        run(q.job, skip);
        lock(&sh.state).release(q.owner.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    fn never() -> Abandoned {
        Arc::new(|| false)
    }

    /// A job that blocks until `gate` opens, then reports (skip) on `done`.
    fn gated(
        gate: &crossbeam_channel::Receiver<()>,
        done: &crossbeam_channel::Sender<bool>,
    ) -> Job {
        let (gate, done) = (gate.clone(), done.clone());
        Box::new(move |skip| {
            if !skip {
                let _ = gate.recv_timeout(Duration::from_secs(5));
            }
            let _ = done.send(skip);
        })
    }

    fn wait_until(f: impl Fn() -> bool) {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(std::time::Instant::now() < end, "condition never held");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn the_queue_is_bounded_and_a_full_queue_refuses() {
        let pool = ToolPool::new(1, 1, 10);
        let (open, gate) = crossbeam_channel::unbounded();
        let (done, finished) = crossbeam_channel::unbounded();
        pool.submit(None, never(), gated(&gate, &done)).unwrap();
        // The thread has taken the first call; the second waits.
        wait_until(|| lock(&pool.shared.state).queue.is_empty());
        pool.submit(None, never(), gated(&gate, &done)).unwrap();
        assert_eq!(pool.waiting(), 1);
        assert_eq!(
            pool.submit(None, never(), gated(&gate, &done)),
            Err(Busy::Queue { max: 1 })
        );
        open.send(()).unwrap();
        open.send(()).unwrap();
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(false));
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(false));
    }

    #[test]
    fn one_owner_gets_its_share_and_others_still_run() {
        let pool = ToolPool::new(4, 10, 2);
        let (open, gate) = crossbeam_channel::unbounded();
        let (done, finished) = crossbeam_channel::unbounded();
        let a = || Some("a".to_string());
        pool.submit(a(), never(), gated(&gate, &done)).unwrap();
        pool.submit(a(), never(), gated(&gate, &done)).unwrap();
        assert_eq!(
            pool.submit(a(), never(), gated(&gate, &done)),
            Err(Busy::Owner { max: 2 })
        );
        pool.submit(Some("b".into()), never(), gated(&gate, &done))
            .unwrap();
        pool.submit(None, never(), gated(&gate, &done)).unwrap();
        for _ in 0..4 {
            open.send(()).unwrap();
        }
        for _ in 0..4 {
            assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(false));
        }
        // Finished calls give the owner its share back.
        wait_until(|| lock(&pool.shared.state).per_owner.is_empty());
        pool.submit(a(), never(), gated(&gate, &done)).unwrap();
        open.send(()).unwrap();
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(false));
    }

    #[test]
    fn abandoned_waiting_calls_never_run_and_free_their_place() {
        let pool = ToolPool::new(1, 1, 10);
        let (open, gate) = crossbeam_channel::unbounded();
        let (done, finished) = crossbeam_channel::unbounded();
        pool.submit(None, never(), gated(&gate, &done)).unwrap();
        wait_until(|| lock(&pool.shared.state).queue.is_empty());
        let gone = Arc::new(AtomicBool::new(false));
        let g = gone.clone();
        pool.submit(
            Some("a".into()),
            Arc::new(move || g.load(Ordering::Acquire)),
            gated(&gate, &done),
        )
        .unwrap();
        gone.store(true, Ordering::Release);
        // The queue is full, but its one waiting call is abandoned: it is
        // dropped (told to skip) and the new call takes its place.
        pool.submit(None, never(), gated(&gate, &done)).unwrap();
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(true));
        assert!(lock(&pool.shared.state).per_owner.is_empty());
        open.send(()).unwrap();
        open.send(()).unwrap();
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(false));
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(false));
    }
}
