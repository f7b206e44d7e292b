use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A loop's deadlines: at most one heap entry per connection.
///
/// A connection's deadline moves on every request; pushing each move would
/// fill the heap with stale entries. Instead the connection keeps its current
/// deadline in a field, and the heap holds the earliest time it might be due.
/// When an entry fires, the loop compares it with the field and re-arms if the
/// deadline moved later. So moving a deadline later costs nothing.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timers {
    /// Arms an entry for `key` at `at`.
    pub(crate) fn arm(&mut self, at: Instant, key: u64) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest armed time.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Pops one entry due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64)> {
        match self.heap.peek() {
            Some(Reverse((t, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.arm(t0 + Duration::from_secs(2), 2);
        t.arm(t0 + Duration::from_secs(1), 1);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(5)).map(|e| e.1), Some(1));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(5)).map(|e| e.1), Some(2));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(5)), None);
    }
}
