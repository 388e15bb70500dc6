//! Per-issue memory of the transform (states, duration clocks, first responses), keyed by
//! issue number.
//!
//! GitHub numbers a repository's issues and pull requests 1, 2, 3, ..., so a vector
//! indexed by number finds an issue's entry in one load, where a hash map first probes: on
//! a Kubernetes-size history that probe was the most expensive instruction of the whole
//! transform. Numbers too large for a vector (never seen on GitHub) go to a map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Largest number kept in the vector: 4 M issues, far above any repository.
const DENSE_LIMIT: i64 = 1 << 22;

/// A hasher for issue numbers: one multiply instead of SipHash. Keys are issue numbers
/// from our own database, not attacker-chosen, so flooding resistance buys nothing here.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IssueHasher(u64);

impl Hasher for IssueHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

/// A hasher for short keys from our own database (logins, label values), eight bytes at a
/// time: SipHash's flooding resistance buys nothing for keys we wrote ourselves, and a
/// byte-at-a-time hash cost more than the lookups it served on every item.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyHasher(u64);

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl KeyHasher {
    /// Folds a 128-bit product: every input bit reaches every output bit.
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * u128::from(MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0u8; 8];
            buffer.copy_from_slice(word);
            self.mix(u64::from_le_bytes(buffer));
        }
        let rest = words.remainder();
        let mut buffer = [0u8; 8];
        buffer[..rest.len()].copy_from_slice(rest);
        // The length keeps "ab" and "ab\0" apart.
        self.mix(u64::from_le_bytes(buffer) ^ ((bytes.len() as u64) << 56));
    }
}

/// A hash map over such keys.
pub(crate) type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Values by issue number.
#[derive(Debug, Clone)]
pub(crate) struct IssueTable<V> {
    dense: Vec<Option<V>>,
    sparse: HashMap<i64, V, BuildHasherDefault<IssueHasher>>,
}

impl<V> Default for IssueTable<V> {
    fn default() -> Self {
        Self {
            dense: Vec::new(),
            sparse: HashMap::default(),
        }
    }
}

/// Where an issue number sits in a dense table, if it is small enough for one.
fn dense_index(issue: i64) -> Option<usize> {
    (0..DENSE_LIMIT).contains(&issue).then_some(issue as usize)
}

impl<V> IssueTable<V> {
    fn slot(issue: i64) -> Option<usize> {
        dense_index(issue)
    }

    /// The value of `issue`.
    pub fn get(&self, issue: i64) -> Option<&V> {
        match Self::slot(issue) {
            Some(i) => self.dense.get(i).and_then(Option::as_ref),
            None => self.sparse.get(&issue),
        }
    }

    /// The value of `issue`, to change.
    pub fn get_mut(&mut self, issue: i64) -> Option<&mut V> {
        match Self::slot(issue) {
            Some(i) => self.dense.get_mut(i).and_then(Option::as_mut),
            None => self.sparse.get_mut(&issue),
        }
    }

    /// Sets the value of `issue`, returning the old one.
    pub fn insert(&mut self, issue: i64, value: V) -> Option<V> {
        match Self::slot(issue) {
            Some(i) => {
                if i >= self.dense.len() {
                    // Grow geometrically: numbers arrive roughly in order.
                    let len = (i + 1).max(self.dense.len() * 2).max(64);
                    self.dense.resize_with(len, || None);
                }
                self.dense[i].replace(value)
            }
            None => self.sparse.insert(issue, value),
        }
    }

    /// Removes the value of `issue`.
    pub fn remove(&mut self, issue: i64) -> Option<V> {
        match Self::slot(issue) {
            Some(i) => self.dense.get_mut(i).and_then(Option::take),
            None => self.sparse.remove(&issue),
        }
    }
}

/// One row of words per issue, shared by every metric of a computation: each metric owns
/// a few columns ([`Rows::reserve`]), so that the words all metrics read and write for
/// one item sit side by side, in one or two cache lines, where a table per metric cost a
/// cache miss per metric. A word of 0 is "nothing yet"; owners encode their states so
/// that a real state is never 0.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows {
    width: usize,
    dense: Vec<u64>,
    sparse: HashMap<i64, Box<[u64]>, BuildHasherDefault<IssueHasher>>,
}

impl Rows {
    /// Claims `columns` more columns; returns the first. Only before the first write.
    pub fn reserve(&mut self, columns: usize) -> usize {
        debug_assert!(self.dense.is_empty() && self.sparse.is_empty());
        self.width += columns;
        self.width - columns
    }

    /// The word of `issue` in `column`, 0 when never written.
    pub fn get(&self, issue: i64, column: usize) -> u64 {
        match dense_index(issue) {
            Some(i) => self
                .dense
                .get(i * self.width + column)
                .copied()
                .unwrap_or(0),
            None => self
                .sparse
                .get(&issue)
                .and_then(|row| row.get(column).copied())
                .unwrap_or(0),
        }
    }

    /// Writes the word of `issue` in `column`.
    pub fn set(&mut self, issue: i64, column: usize, value: u64) {
        debug_assert!(column < self.width);
        match dense_index(issue) {
            Some(i) => {
                let at = i * self.width + column;
                if at >= self.dense.len() {
                    // Grow by whole rows, geometrically: numbers arrive roughly in order.
                    let rows = (i + 1)
                        .max(self.dense.len() / self.width.max(1) * 2)
                        .max(64);
                    self.dense.resize(rows * self.width, 0);
                }
                self.dense[at] = value;
            }
            None => {
                let width = self.width;
                if let Some(word) = self
                    .sparse
                    .entry(issue)
                    .or_insert_with(|| vec![0; width].into_boxed_slice())
                    .get_mut(column)
                {
                    *word = value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_hash_apart() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<KeyHasher>::default();
        let keys = [
            "",
            "a",
            "ab",
            "ab\0",
            "k8s-ci-robot",
            "k8s-merge-robot",
            "sig/node",
        ];
        let mut hashes: Vec<u64> = keys.iter().map(|k| build.hash_one(k)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), keys.len());
        let mut map: KeyMap<String, usize> = KeyMap::default();
        for (i, key) in keys.iter().enumerate() {
            map.insert((*key).to_owned(), i);
        }
        assert!(
            keys.iter()
                .enumerate()
                .all(|(i, k)| map.get(*k) == Some(&i))
        );
    }

    #[test]
    fn rows_keep_each_column_apart() {
        let mut rows = Rows::default();
        let (a, b) = (rows.reserve(2), rows.reserve(1));
        assert_eq!((a, b, rows.reserve(0)), (0, 2, 3));
        for issue in [1, 700, DENSE_LIMIT + 5, -2] {
            assert_eq!(rows.get(issue, b), 0);
            rows.set(issue, a + 1, issue as u64);
            rows.set(issue, b, 9);
            assert_eq!(
                (
                    rows.get(issue, a),
                    rows.get(issue, a + 1),
                    rows.get(issue, b)
                ),
                (0, issue as u64, 9)
            );
        }
        assert_eq!(rows.get(2, a + 1), 0);
    }

    #[test]
    fn dense_and_sparse_numbers_behave_alike() {
        let mut table = IssueTable::default();
        for issue in [1, 5_000, 0, DENSE_LIMIT, -3, i64::MAX / 4] {
            assert_eq!(table.insert(issue, issue * 2), None);
            assert_eq!(table.get(issue), Some(&(issue * 2)));
        }
        assert_eq!(table.insert(5_000, 1), Some(10_000));
        *table.get_mut(DENSE_LIMIT).expect("present") += 1;
        assert_eq!(table.get(DENSE_LIMIT), Some(&(DENSE_LIMIT * 2 + 1)));
        assert_eq!(table.remove(-3), Some(-6));
        assert_eq!(table.remove(-3), None);
        assert_eq!(table.remove(1), Some(2));
        assert_eq!(table.get(1), None);
        assert_eq!(table.get(2), None);
    }
}
