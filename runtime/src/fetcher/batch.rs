//! How many items the next GraphQL query asks for. GitHub answers a query that takes too
//! long with a timeout (and still charges for it), so a timed-out query is sent again
//! smaller; a run of good answers grows the size back towards its limit. Timelines and the
//! reconciliation census share this rule.

/// Good answers in a row after which a halved size doubles again.
const GROW_AFTER: u32 = 3;

/// What to do after a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterTimeout {
    /// Ask again for this many items.
    Halved(usize),
    /// One item already: wait this attempt's backoff and ask again.
    Retry(u32),
    /// One item timed out more often than the client retries anything.
    GiveUp,
}

/// The adaptive size of one walk's queries.
#[derive(Debug, Clone)]
pub(super) struct BatchSize {
    limit: usize,
    size: usize,
    streak: u32,
    timeouts: u32,
}

impl BatchSize {
    /// Starts at `limit`, the most a query may ask for.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            size: limit,
            streak: 0,
            timeouts: 0,
        }
    }

    /// How many items to ask for now.
    pub fn get(&self) -> usize {
        self.size
    }

    /// A query for `asked` items timed out.
    pub fn timed_out(&mut self, asked: usize, max_attempts: u32) -> AfterTimeout {
        self.streak = 0;
        self.timeouts += 1;
        if asked > 1 {
            self.size = (asked / 2).max(1);
            AfterTimeout::Halved(self.size)
        } else if self.timeouts > max_attempts {
            AfterTimeout::GiveUp
        } else {
            AfterTimeout::Retry(self.timeouts)
        }
    }

    /// A query was answered.
    pub fn answered(&mut self) {
        self.timeouts = 0;
        self.streak += 1;
        if self.streak >= GROW_AFTER && self.size < self.limit {
            self.size = (self.size * 2).min(self.limit);
            self.streak = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_timeouts_and_grows_back() {
        let mut size = BatchSize::new(100);
        assert_eq!(size.timed_out(100, 3), AfterTimeout::Halved(50));
        assert_eq!(size.timed_out(30, 3), AfterTimeout::Halved(15));
        size.answered();
        size.answered();
        assert_eq!(size.get(), 15);
        size.answered();
        assert_eq!(size.get(), 30);
        let mut one = BatchSize::new(1);
        assert_eq!(one.timed_out(1, 2), AfterTimeout::Retry(1));
        assert_eq!(one.timed_out(1, 2), AfterTimeout::Retry(2));
        assert_eq!(one.timed_out(1, 2), AfterTimeout::GiveUp);
        one.answered();
        assert_eq!(one.timed_out(1, 2), AfterTimeout::Retry(1));
    }
}
