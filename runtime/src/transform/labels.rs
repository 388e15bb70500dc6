//! An item's labels in the families a metric is sliced by (`--by-label=sig/,kind/`),
//! followed through `labeled` and `unlabeled` events, and the tag values a point of that
//! item carries: one combination per point, so an item in two SIGs counts in each.

use smallvec::SmallVec;
use velodrome_model::metric::{Family, NO_LABEL};

use super::engine::Item;
pub use super::engine::SliceKey;
use super::issues::{IssueTable, KeyMap};

/// A combination of family values, interned by [`FamilyLabels`]: the series an item is
/// counted in, as a small integer the hot path can index with.
pub type SeriesId = u32;

/// The series of one item: almost always one, two for an item in two SIGs.
pub type SeriesIds = SmallVec<[SeriesId; 2]>;

/// The current family labels of every item of one repository.
#[derive(Debug, Clone)]
pub struct FamilyLabels {
    families: Vec<Family>,
    /// Label values, interned: (family index, value id) pairs are what items keep.
    value_ids: KeyMap<String, u32>,
    values: Vec<String>,
    /// Per issue: (family index, value id) of each label it has in some family.
    labels: IssueTable<SmallVec<[(u8, u32); 2]>>,
    /// Combinations of value ids, one per family, interned as series.
    series_ids: KeyMap<Box<[u32]>, SeriesId>,
    /// The tag values of each series, by id.
    keys: Vec<SliceKey>,
    /// The value id of "no label in this family".
    none: u32,
}

impl FamilyLabels {
    /// Labels of `families` (at most 255).
    pub fn new(families: &[Family]) -> Self {
        let mut labels = Self {
            families: families.iter().take(255).cloned().collect(),
            value_ids: KeyMap::default(),
            values: Vec::new(),
            labels: IssueTable::default(),
            series_ids: KeyMap::default(),
            keys: Vec::new(),
            none: 0,
        };
        labels.none = labels.value_id(NO_LABEL);
        labels
    }

    fn value_id(&mut self, value: &str) -> u32 {
        if let Some(id) = self.value_ids.get(value) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_owned());
        self.value_ids.insert(value.to_owned(), id);
        id
    }

    /// Applies `item` when it adds or removes a family label; true when it changed the
    /// item's labels.
    pub fn observe(&mut self, item: &Item) -> bool {
        let adding = match item.event.as_str() {
            "labeled" => true,
            "unlabeled" => false,
            _ => return false,
        };
        let Some(label) = item.label.as_deref() else {
            return false;
        };
        let Some((family, value)) = self
            .families
            .iter()
            .enumerate()
            .find_map(|(i, f)| f.value_of(label).map(|v| (i as u8, v)))
        else {
            return false;
        };
        let entry = (family, self.value_id(value));
        let present = self
            .labels
            .get(item.issue)
            .is_some_and(|l| l.contains(&entry));
        match (adding, present) {
            (true, false) => {
                match self.labels.get_mut(item.issue) {
                    Some(list) => list.push(entry),
                    None => {
                        self.labels.insert(item.issue, smallvec::smallvec![entry]);
                    }
                }
                true
            }
            (false, true) => {
                if let Some(list) = self.labels.get_mut(item.issue) {
                    list.retain(|l| *l != entry);
                }
                true
            }
            _ => false,
        }
    }

    /// The series of every combination of the issue's values, one per family (`none` for
    /// a family it has no label of), ordered by their tag values.
    pub fn series(&mut self, issue: i64) -> SeriesIds {
        let labels = self.labels.get(issue).map_or(&[][..], |l| l.as_slice());
        let mut combinations: Vec<Vec<u32>> = vec![Vec::with_capacity(self.families.len())];
        for family in 0..self.families.len() {
            let mut values: SmallVec<[u32; 2]> = labels
                .iter()
                .filter(|(f, _)| usize::from(*f) == family)
                .map(|(_, v)| *v)
                .collect();
            values.sort_unstable_by(|a, b| self.values[*a as usize].cmp(&self.values[*b as usize]));
            if values.is_empty() {
                values.push(self.none);
            }
            if let [only] = values.as_slice() {
                combinations.iter_mut().for_each(|c| c.push(*only));
                continue;
            }
            combinations = combinations
                .into_iter()
                .flat_map(|combination| {
                    values.iter().map(move |v| {
                        let mut combination = combination.clone();
                        combination.push(*v);
                        combination
                    })
                })
                .collect();
        }
        combinations
            .into_iter()
            .map(|combination| self.intern(combination))
            .collect()
    }

    fn intern(&mut self, combination: Vec<u32>) -> SeriesId {
        if let Some(id) = self.series_ids.get(combination.as_slice()) {
            return *id;
        }
        let id = self.keys.len() as SeriesId;
        let names: Vec<String> = combination
            .iter()
            .map(|v| self.values[*v as usize].clone())
            .collect();
        self.keys.push(SliceKey::from(names));
        self.series_ids.insert(combination.into_boxed_slice(), id);
        id
    }

    /// The tag values of series `id` (one returned by [`FamilyLabels::series`]).
    pub fn key(&self, id: SeriesId) -> &SliceKey {
        &self.keys[id as usize]
    }

    /// The tag values of every series the issue is counted in, in the order of
    /// [`FamilyLabels::series`].
    pub fn keys(&mut self, issue: i64) -> Vec<SliceKey> {
        self.series(issue)
            .into_iter()
            .map(|id| self.key(id).clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use velodrome_model::metric::MetricSpec;

    use super::super::engine::tests::event;
    use super::*;

    fn families(text: &str) -> Vec<Family> {
        let spec = MetricSpec::parse(
            "count",
            &["--event=merged".into(), format!("--by-label={text}")],
        )
        .expect("parses");
        spec.slices().families().to_vec()
    }

    fn keys(labels: &mut FamilyLabels, issue: i64) -> Vec<Vec<String>> {
        labels.keys(issue).iter().map(|k| k.to_vec()).collect()
    }

    #[test]
    fn labels_follow_events_and_combine_across_families() {
        let mut labels = FamilyLabels::new(&families("sig/,kind/"));
        let issue = (1, false, "a");
        assert_eq!(keys(&mut labels, 1), [["none", "none"]]);
        for (name, label, changes) in [
            ("labeled", "sig/node", true),
            ("labeled", "sig/node", false),
            ("labeled", "lgtm", false),
            ("labeled", "sig/apps", true),
            ("labeled", "kind/bug", true),
        ] {
            let item = event(1, 1, issue, name, Some(label), Some("x"));
            assert_eq!(labels.observe(&item), changes, "{name} {label}");
        }
        assert_eq!(
            keys(&mut labels, 1),
            [["apps", "bug"], ["node", "bug"]],
            "an item in two SIGs is in both series"
        );
        let item = event(2, 2, issue, "unlabeled", Some("sig/node"), Some("x"));
        assert!(labels.observe(&item));
        assert_eq!(keys(&mut labels, 1), [["apps", "bug"]]);
        let item = event(2, 3, issue, "commented", None, Some("x"));
        assert!(!labels.observe(&item));
        assert_eq!(keys(&mut labels, 2), [["none", "none"]]);
    }
}
