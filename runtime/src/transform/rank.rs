//! Order statistics over start and attention times, shared by the plain state
//! ([`super::state`]) and its series ([`super::series`]): every state point reports a
//! count, a sum of ages and percentiles, so these are on the hot path of the transform.
//!
//! - [`Fenwick`] counts live positions, for "the k-th live element" in O(log n);
//! - [`SortedBag`] is a multiset of times kept as sorted chunks, so an insert or a removal
//!   in the middle moves at most one chunk, where one sorted vector moved half of a
//!   large series on every change;
//! - [`MinuteSum`] keeps Σ floor((t - S) / 60) over a set of starts S exactly, for any
//!   later t, without a scan.

use super::state::FOREVER_MINUTES;

/// A Fenwick (binary indexed) tree of counts that can grow at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fenwick {
    /// 1-based: tree[i-1] covers (i - lowbit(i), i].
    tree: Vec<i64>,
}

impl Fenwick {
    /// A tree over `counts`, built in O(n).
    pub fn from_counts(counts: &[i64]) -> Self {
        let mut tree = counts.to_vec();
        let n = tree.len();
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                tree[parent - 1] += tree[i - 1];
            }
        }
        Self { tree }
    }

    /// Appends an element with `value`.
    pub fn push(&mut self, value: i64) {
        let i = self.tree.len() + 1;
        // Node i covers (i - lowbit(i), i]: the sum of the nodes it absorbs plus value.
        let low = i & i.wrapping_neg();
        let mut total = value;
        let mut j = i - 1;
        let stop = i - low;
        while j > stop {
            total += self.tree[j - 1];
            j -= j & j.wrapping_neg();
        }
        self.tree.push(total);
    }

    /// Adds `delta` to element `index`.
    pub fn add(&mut self, index: usize, delta: i64) {
        let mut i = index + 1;
        while i <= self.tree.len() {
            self.tree[i - 1] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum of the elements before `index`.
    pub fn prefix(&self, index: usize) -> i64 {
        let mut i = index.min(self.tree.len());
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i - 1];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// 0-based index of the element holding the k-th (1-based) unit, with the units of
    /// the elements before it: elements are counts, so this is "which chunk, and how far
    /// into it".
    pub fn find(&self, mut k: usize) -> (usize, usize) {
        let n = self.tree.len();
        let mut position = 0;
        let mut before = 0;
        let mut step = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            let next = position + step;
            if next <= n && (self.tree[next - 1] as usize) < k {
                position = next;
                k -= self.tree[next - 1] as usize;
                before += self.tree[next - 1] as usize;
            }
            step >>= 1;
        }
        (position.min(n.saturating_sub(1)), before)
    }
}

/// Positions 0, 1, 2, ... each live or dead, with "the k-th live position": one bit per
/// position, and a Fenwick tree over the live count of each word of 64. The tree is 64
/// times smaller than one over the positions themselves, so a state with 100,000 open
/// items answers a percentile from a few cache lines instead of missing the cache at
/// every level.
#[derive(Debug, Clone, Default)]
pub(crate) struct LivePositions {
    words: Vec<u64>,
    counts: Fenwick,
    len: usize,
}

impl LivePositions {
    /// Positions 0..n, all live.
    pub fn ones(n: usize) -> Self {
        let mut words = vec![u64::MAX; n / 64];
        let mut counts = vec![64; n / 64];
        if !n.is_multiple_of(64) {
            words.push((1u64 << (n % 64)) - 1);
            counts.push((n % 64) as i64);
        }
        Self {
            words,
            counts: Fenwick::from_counts(&counts),
            len: n,
        }
    }

    /// Appends a live position.
    pub fn push_live(&mut self) {
        let word = self.len / 64;
        if word == self.words.len() {
            self.words.push(0);
            self.counts.push(0);
        }
        self.words[word] |= 1 << (self.len % 64);
        self.counts.add(word, 1);
        self.len += 1;
    }

    /// Whether position `i` is live.
    pub fn is_live(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Marks position `i` dead; false when it was not live.
    pub fn kill(&mut self, i: usize) -> bool {
        if !self.is_live(i) {
            return false;
        }
        self.words[i / 64] &= !(1 << (i % 64));
        self.counts.add(i / 64, -1);
        true
    }

    /// The k-th (1-based) live position; the last position when there are fewer.
    pub fn kth(&self, k: usize) -> usize {
        if self.words.is_empty() {
            return 0;
        }
        let (word, before) = self.counts.find(k);
        let position = word * 64 + select(self.words[word], k.saturating_sub(before) as u32);
        position.min(self.len.saturating_sub(1))
    }
}

/// The position of the r-th (1-based) set bit of `word`, a byte at a time first (64 when
/// there are fewer).
fn select(mut word: u64, mut r: u32) -> usize {
    let mut base = 0;
    while base < 64 {
        let here = (word & 0xff).count_ones();
        if here >= r {
            break;
        }
        r -= here;
        word >>= 8;
        base += 8;
    }
    while base < 64 {
        if word & 1 == 1 {
            r = r.saturating_sub(1);
            if r == 0 {
                return base;
            }
        }
        word >>= 1;
        base += 1;
    }
    64
}

/// Largest chunk of a [`SortedBag`]; a full chunk splits in two. Moving half a chunk
/// (1 KiB) costs about what the binary searches around it do.
const CHUNK: usize = 256;

/// A multiset of times with rank queries, as sorted chunks: every element of a chunk is
/// at most every element of the next.
#[derive(Debug, Clone, Default)]
pub(crate) struct SortedBag {
    chunks: Vec<Vec<i64>>,
    /// The last element of each chunk (`i64::MIN` for an empty one), searched instead of
    /// the chunks themselves so a search touches one array, not one chunk per step.
    lasts: Vec<i64>,
    /// Lengths of the chunks, for ranks across chunks.
    lengths: Fenwick,
    len: usize,
}

impl SortedBag {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The chunk `value` belongs in: the first whose last element is at least `value`
    /// (the last chunk when none is).
    fn chunk_of(&self, value: i64) -> usize {
        let at = self.lasts.partition_point(|last| *last < value);
        at.min(self.chunks.len().saturating_sub(1))
    }

    /// Adds one `value`.
    pub fn insert(&mut self, value: i64) {
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(CHUNK));
            self.lasts.push(i64::MIN);
            self.lengths = Fenwick::from_counts(&[0]);
        }
        // Times mostly arrive in order: the end of the last chunk is the common case.
        let last = self.chunks.len() - 1;
        let c = if self.lasts[last] <= value {
            last
        } else {
            self.chunk_of(value)
        };
        let chunk = &mut self.chunks[c];
        let at = chunk.partition_point(|v| *v <= value);
        chunk.insert(at, value);
        self.len += 1;
        if chunk.len() > CHUNK {
            let tail = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(c + 1, tail);
            self.rebuild_index();
        } else {
            self.lasts[c] = self.lasts[c].max(value);
            self.lengths.add(c, 1);
        }
    }

    /// Removes one `value`; false when there was none.
    pub fn remove(&mut self, value: i64) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let c = self.chunk_of(value);
        let chunk = &mut self.chunks[c];
        let at = chunk.partition_point(|v| *v < value);
        if chunk.get(at) != Some(&value) {
            return false;
        }
        chunk.remove(at);
        let new_last = chunk.last().copied();
        self.len -= 1;
        if new_last.is_none() && self.chunks.len() > 1 {
            self.chunks.remove(c);
            self.rebuild_index();
        } else {
            self.lasts[c] = new_last.unwrap_or(i64::MIN);
            self.lengths.add(c, -1);
        }
        true
    }

    fn rebuild_index(&mut self) {
        let lengths: Vec<i64> = self.chunks.iter().map(|c| c.len() as i64).collect();
        self.lengths = Fenwick::from_counts(&lengths);
        self.lasts = self
            .chunks
            .iter()
            .map(|c| c.last().copied().unwrap_or(i64::MIN))
            .collect();
    }

    /// Number of elements at most `value`.
    pub fn count_at_most(&self, value: i64) -> usize {
        if self.len == 0 {
            return 0;
        }
        // The first chunk holding something above `value`; everything before it counts.
        let c = self.lasts.partition_point(|last| *last <= value);
        match self.chunks.get(c) {
            Some(chunk) => self.lengths.prefix(c) as usize + chunk.partition_point(|v| *v <= value),
            None => self.len,
        }
    }

    /// The `k`-th smallest element (0-based), if there are more than `k`.
    pub fn nth(&self, k: usize) -> Option<i64> {
        if k >= self.len {
            return None;
        }
        let (c, before) = self.lengths.find(k + 1);
        self.chunks[c].get(k - before).copied()
    }
}

/// How many elements of a bag are at most a cut that only moves forward (a time less a
/// bucket's age, a time less the inactivity limit), kept up to date as the bag changes.
/// Between two points the cut moves by seconds and seldom passes an element, so most
/// counts are one comparison with the first element above the cut instead of a search.
#[derive(Debug, Clone)]
struct Cut {
    at: i64,
    /// Elements at most `at`.
    below: usize,
    /// The least element above `at` (`i64::MAX`: none), or `None` when unknown.
    next: Option<i64>,
}

impl Cut {
    const NEW: Self = Self {
        at: i64::MIN,
        below: 0,
        next: None,
    };

    fn inserted(&mut self, value: i64) {
        if value <= self.at {
            self.below += 1;
        } else if let Some(next) = self.next {
            self.next = Some(next.min(value));
        }
    }

    fn removed(&mut self, value: i64) {
        if value <= self.at {
            self.below -= 1;
        } else if self.next == Some(value) {
            // Another element may equal it; look again at the next count.
            self.next = None;
        }
    }
}

/// A [`SortedBag`] with [`Cut`]s: counts at most values that only grow, one sequence of
/// values per cut index.
#[derive(Debug, Clone, Default)]
pub(crate) struct CutBag {
    bag: SortedBag,
    cuts: Vec<Cut>,
}

impl CutBag {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bag.len()
    }

    /// Adds one `value`.
    pub fn insert(&mut self, value: i64) {
        self.bag.insert(value);
        for cut in &mut self.cuts {
            cut.inserted(value);
        }
    }

    /// Removes one `value`; false when there was none.
    pub fn remove(&mut self, value: i64) -> bool {
        let removed = self.bag.remove(value);
        if removed {
            for cut in &mut self.cuts {
                cut.removed(value);
            }
        }
        removed
    }

    /// The `k`-th smallest element (0-based), if there are more than `k`.
    pub fn nth(&self, k: usize) -> Option<i64> {
        self.bag.nth(k)
    }

    /// Number of elements at most `value`, through cut `index`: the values asked of one
    /// index should not decrease (when one does, the count is searched afresh).
    pub fn count_at_most(&mut self, index: usize, value: i64) -> usize {
        if index >= self.cuts.len() {
            self.cuts.resize(index + 1, Cut::NEW);
        }
        let cut = &mut self.cuts[index];
        let passes = match cut.next {
            Some(next) => next <= value || value < cut.at,
            None => true,
        };
        if passes {
            cut.below = self.bag.count_at_most(value);
            cut.next = Some(self.bag.nth(cut.below).unwrap_or(i64::MAX));
        }
        cut.at = value;
        cut.below
    }
}

/// Σ floor((t - S) / 60) over a set of starts S, for any t after them: Σ floor(S / 60)
/// and a histogram of S mod 60 are enough, since floor((t - S)/60) is
/// floor(t/60) - floor(S/60), less one when S mod 60 > t mod 60.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MinuteSum {
    finite: i64,
    forever: i64,
    sum_div: i64,
    rem_histogram: [i64; 60],
}

impl Default for MinuteSum {
    fn default() -> Self {
        Self {
            finite: 0,
            forever: 0,
            sum_div: 0,
            rem_histogram: [0; 60],
        }
    }
}

impl MinuteSum {
    /// Adds a start (`None`: active since the beginning of time).
    pub fn add(&mut self, start: Option<i64>) {
        match start {
            Some(start) => {
                self.finite += 1;
                self.sum_div += start.div_euclid(60);
                self.rem_histogram[start.rem_euclid(60) as usize] += 1;
            }
            None => self.forever += 1,
        }
    }

    /// Removes a start added before.
    pub fn remove(&mut self, start: Option<i64>) {
        match start {
            Some(start) => {
                self.finite -= 1;
                self.sum_div -= start.div_euclid(60);
                self.rem_histogram[start.rem_euclid(60) as usize] -= 1;
            }
            None => self.forever -= 1,
        }
    }

    /// Finite starts held.
    pub fn finite(&self) -> i64 {
        self.finite
    }

    /// Starts held, finite or not.
    pub fn count(&self) -> i64 {
        self.finite + self.forever
    }

    /// Σ floor((time - S) / 60), with the original's saturated minutes for each start
    /// since the beginning of time.
    pub fn at(&self, time: i64) -> i64 {
        let a = time.div_euclid(60);
        let b = time.rem_euclid(60) as usize;
        let later: i64 = self.rem_histogram[b + 1..].iter().sum();
        self.finite * a - self.sum_div - later + self.forever * FOREVER_MINUTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    #[test]
    fn fenwick_push_find_and_prefix() {
        let mut f = Fenwick::default();
        for _ in 0..37 {
            f.push(1);
        }
        assert_eq!(f.find(1), (0, 0));
        assert_eq!(f.find(37), (36, 36));
        f.add(0, -1);
        f.add(5, -1);
        assert_eq!(f.find(1), (1, 0));
        assert_eq!(f.find(5), (6, 4));
        assert_eq!(f.prefix(6), 4);
        assert_eq!(Fenwick::from_counts(&[1; 37]).prefix(37), 37);
        let counts = Fenwick::from_counts(&[3, 0, 2]);
        assert_eq!(counts.find(1), (0, 0));
        assert_eq!(counts.find(3), (0, 0));
        assert_eq!(counts.find(4), (2, 3));
    }

    /// Live positions against a vector of flags, through pushes, kills and rebuilds.
    #[test]
    fn live_positions_find_the_kth_live_one() {
        let mut next = rng(7);
        let mut live = LivePositions::default();
        let mut flags: Vec<bool> = Vec::new();
        for step in 0..5_000 {
            if flags.is_empty() || !next().is_multiple_of(3) {
                live.push_live();
                flags.push(true);
            } else {
                let i = (next() as usize) % flags.len();
                assert_eq!(live.kill(i), flags[i]);
                flags[i] = false;
            }
            if step % 1_000 == 999 {
                let kept = flags.iter().filter(|f| **f).count();
                live = LivePositions::ones(kept);
                flags = vec![true; kept];
            }
            let positions: Vec<usize> = (0..flags.len()).filter(|i| flags[*i]).collect();
            for k in [1, positions.len() / 2, positions.len()] {
                if let Some(want) = k.checked_sub(1).and_then(|i| positions.get(i)) {
                    assert_eq!(live.kth(k), *want, "k {k} at step {step}");
                }
            }
            assert!((0..flags.len()).all(|i| live.is_live(i) == flags[i]));
        }
        assert_eq!(select(0b1011_0000_0000, 2), 9);
        assert_eq!(select(u64::MAX, 64), 63);
    }

    /// The bag against a sorted vector, through splits and emptied chunks.
    #[test]
    fn sorted_bag_matches_a_sorted_vector() {
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        let mut bag = SortedBag::default();
        let mut naive: Vec<i64> = Vec::new();
        for step in 0..40_000u64 {
            // Mostly growing values, with duplicates and old ones, as attention times are.
            let value = if next().is_multiple_of(4) {
                (next() % 5_000) as i64
            } else {
                (step / 2) as i64
            };
            if naive.is_empty() || next() % 5 < 3 {
                bag.insert(value);
                let at = naive.partition_point(|v| *v <= value);
                naive.insert(at, value);
            } else {
                let gone = naive[(next() as usize) % naive.len()];
                assert!(bag.remove(gone));
                let at = naive.partition_point(|v| *v < gone);
                naive.remove(at);
                assert!(!bag.remove(-1));
            }
            if step % 101 == 0 {
                assert_eq!(bag.len(), naive.len());
                for probe in [-1, 0, 17, 2_500, (step / 3) as i64, i64::MAX] {
                    let want = naive.partition_point(|v| *v <= probe);
                    assert_eq!(bag.count_at_most(probe), want, "{probe} at {step}");
                }
                for k in [
                    0,
                    naive.len() / 3,
                    naive.len().saturating_sub(1),
                    naive.len(),
                ] {
                    assert_eq!(bag.nth(k), naive.get(k).copied(), "{k} at {step}");
                }
            }
        }
        while let Some(first) = naive.first().copied() {
            assert!(bag.remove(first));
            naive.remove(0);
        }
        assert_eq!(
            (bag.len(), bag.nth(0), bag.count_at_most(i64::MAX)),
            (0, None, 0)
        );
    }

    /// Counts through cuts against a sorted vector, with the cuts moving forward (and
    /// once back) while values come and go on both sides of them.
    #[test]
    fn cut_counts_match_a_search() {
        let mut next = rng(99);
        let mut bag = CutBag::default();
        let mut naive: Vec<i64> = Vec::new();
        let mut time = 1_000i64;
        for step in 0..30_000 {
            time += (next() % 3) as i64;
            let value = time - (next() % 400) as i64;
            if naive.is_empty() || next() % 5 < 3 {
                bag.insert(value);
                naive.push(value);
            } else {
                let gone = naive.swap_remove((next() as usize) % naive.len());
                assert!(bag.remove(gone));
            }
            let back = if step == 20_000 { 500 } else { 0 };
            for (index, limit) in [(0usize, 50i64), (1, 200), (2, 0)] {
                let cut = time - limit - back;
                let want = naive.iter().filter(|v| **v <= cut).count();
                assert_eq!(bag.count_at_most(index, cut), want, "{index} at {step}");
            }
        }
        assert_eq!(bag.len(), naive.len());
    }

    #[test]
    fn minute_sums_agree_with_the_definition() {
        let mut next = rng(42);
        let mut sum = MinuteSum::default();
        let starts: Vec<i64> = (0..500).map(|_| (next() % 100_000) as i64).collect();
        for s in &starts {
            sum.add(Some(*s));
        }
        for s in &starts[..200] {
            sum.remove(Some(*s));
        }
        sum.add(None);
        for time in [100_000, 100_059, 123_456] {
            let want: i64 = starts[200..]
                .iter()
                .map(|s| (time - s).div_euclid(60))
                .sum::<i64>()
                + FOREVER_MINUTES;
            assert_eq!(sum.at(time), want);
        }
        assert_eq!((sum.finite(), sum.count()), (300, 301));
    }
}
