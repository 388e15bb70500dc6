//! An item's labels in the families a metric is sliced by (`--by-label=sig/,kind/`),
//! followed through `labeled` and `unlabeled` events, and the tag values a point of that
//! item carries: one combination per point, so an item in two SIGs counts in each.

use velodrome_model::metric::{Family, NO_LABEL};

use super::engine::Item;
pub use super::engine::SliceKey;
use super::issues::IssueTable;

/// The current family labels of every item of one repository.
#[derive(Debug, Clone)]
pub struct FamilyLabels {
    families: Vec<Family>,
    /// Per issue: (family index, value) of each label it has in some family.
    labels: IssueTable<Vec<(u8, String)>>,
}

impl FamilyLabels {
    /// Labels of `families` (at most 255).
    pub fn new(families: &[Family]) -> Self {
        Self {
            families: families.iter().take(255).cloned().collect(),
            labels: IssueTable::default(),
        }
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
        let entry = (family, value.to_owned());
        let present = self
            .labels
            .get(item.issue)
            .is_some_and(|l| l.contains(&entry));
        match (adding, present) {
            (true, false) => {
                match self.labels.get_mut(item.issue) {
                    Some(list) => list.push(entry),
                    None => {
                        self.labels.insert(item.issue, vec![entry]);
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

    /// Every combination of the issue's values, one per family (`none` for a family it has
    /// no label of), in a fixed order.
    pub fn keys(&self, issue: i64) -> Vec<SliceKey> {
        let labels = self.labels.get(issue).map_or(&[][..], Vec::as_slice);
        let mut keys: Vec<Vec<String>> = vec![Vec::new()];
        for family in 0..self.families.len() {
            let mut values: Vec<&str> = labels
                .iter()
                .filter(|(f, _)| usize::from(*f) == family)
                .map(|(_, v)| v.as_str())
                .collect();
            values.sort_unstable();
            if values.is_empty() {
                values.push(NO_LABEL);
            }
            keys = keys
                .into_iter()
                .flat_map(|key| {
                    values.iter().map(move |v| {
                        let mut key = key.clone();
                        key.push((*v).to_owned());
                        key
                    })
                })
                .collect();
        }
        keys.into_iter().map(SliceKey::from).collect()
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

    fn keys(labels: &FamilyLabels, issue: i64) -> Vec<Vec<String>> {
        labels.keys(issue).iter().map(|k| k.to_vec()).collect()
    }

    #[test]
    fn labels_follow_events_and_combine_across_families() {
        let mut labels = FamilyLabels::new(&families("sig/,kind/"));
        let issue = (1, false, "a");
        assert_eq!(keys(&labels, 1), [["none", "none"]]);
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
            keys(&labels, 1),
            [["apps", "bug"], ["node", "bug"]],
            "an item in two SIGs is in both series"
        );
        let item = event(2, 2, issue, "unlabeled", Some("sig/node"), Some("x"));
        assert!(labels.observe(&item));
        assert_eq!(keys(&labels, 1), [["apps", "bug"]]);
        let item = event(2, 3, issue, "commented", None, Some("x"));
        assert!(!labels.observe(&item));
        assert_eq!(keys(&labels, 2), [["none", "none"]]);
    }
}
