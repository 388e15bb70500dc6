//! What a row cannot say by itself, worked out once per item for every metric of a
//! repository: whether the issue's author and the actor are bots (GitHub's `user.type`,
//! which the reader brings, or the config's `bots:`),
//! and whether this is the item's first response.
//!
//! A first response is the first comment, review comment, review, `labeled` or `closed` on
//! an item by someone who is neither its author nor a bot; it happens at most once per item. The
//! unmerged-close mark comes from the reader instead (it needs the same second's events).

use velodrome_model::bots::Bots;

use super::engine::Login;
use super::engine::{Item, Kind};
use super::issues::{KeyMap, Rows};

/// What the annotator knows of a login: whether it is a bot, which of the computation's
/// ignored logins it is (one bit, or none), and the login shared, for the points that
/// name it (`--log-author`) without a copy each.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    bot: bool,
    ignored: u64,
    /// Its index in [`Annotator::logins`].
    name: u32,
}

/// What [`Annotator::annotate`] reports besides the marks it sets on the item.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    /// The ignored-login bits of the issue's author.
    pub author_ignored: u64,
    /// The ignored-login bits of the actor.
    pub actor_ignored: u64,
    /// The actor's login, by [`Annotator::login`] (copying the shared login for every
    /// item cost more than the copies it saves).
    pub actor: Option<u32>,
}

/// The annotation state of one repository's stream; kept between rounds like the engines.
#[derive(Debug, Clone)]
pub struct Annotator {
    bots: Bots,
    /// Logins some metric ignores; the bit of each is its position.
    ignored: Vec<String>,
    /// Verdicts by login: a handful of regexes once per person, not once per item.
    verdicts: KeyMap<String, Verdict>,
    /// Every login seen, shared with the points that name it.
    logins: Vec<Login>,
    /// Its column in the computation's rows (1: the item has had its first response);
    /// `None` when no metric asks.
    responded: Option<usize>,
}

impl Annotator {
    /// An annotator for `bots`; `responses` when some metric uses `responded`; `ignored`
    /// are the logins whose bits [`Annotator::annotate`] reports (at most 64 count).
    /// Its column, when it needs one, is taken from `rows`.
    pub fn new(bots: &Bots, responses: bool, ignored: &[String], rows: &mut Rows) -> Self {
        Self {
            bots: bots.clone(),
            ignored: ignored.to_vec(),
            verdicts: KeyMap::default(),
            logins: Vec::new(),
            responded: responses.then(|| rows.reserve(1)),
        }
    }

    fn verdict(&mut self, login: &str) -> Verdict {
        if let Some(verdict) = self.verdicts.get(login) {
            return *verdict;
        }
        self.logins.push(Login::from(login));
        let verdict = Verdict {
            bot: self.bots.is_bot(login),
            ignored: self
                .ignored
                .iter()
                .take(64)
                .position(|i| i == login)
                .map_or(0, |bit| 1 << bit),
            name: (self.logins.len() - 1) as u32,
        };
        self.verdicts.insert(login.to_owned(), verdict);
        verdict
    }

    /// A login the annotator has seen, by the index an [`Annotation`] gave.
    pub fn login(&self, index: u32) -> Option<&Login> {
        self.logins.get(index as usize)
    }

    /// Sets the item's bot flags and its first-response mark; returns the ignored-login
    /// bits of its author and of its actor.
    pub fn annotate(&mut self, item: &mut Item, rows: &mut Rows) -> Annotation {
        // Flags the reader set from GitHub's `user.type` stay; the patterns add to them.
        let author = self.verdict(&item.issue_user);
        item.author_is_bot = item.author_is_bot || author.bot;
        let author_ignored = author.ignored;
        let (actor_bot, actor_ignored, actor) = match item.actor.as_deref() {
            // Authors act on their own items often: one lookup serves both.
            Some(actor) if actor == item.issue_user => {
                (author.bot, author.ignored, Some(author.name))
            }
            Some(actor) => {
                let actor = self.verdict(actor);
                (actor.bot, actor.ignored, Some(actor.name))
            }
            None => (false, 0, None),
        };
        item.actor_is_bot = item.actor_is_bot || actor_bot;
        let bits = Annotation {
            author_ignored,
            actor_ignored,
            actor,
        };
        let Some(responded) = self.responded else {
            return bits;
        };
        let responds = match item.key.kind {
            Kind::Comment | Kind::ReviewComment | Kind::Review => true,
            Kind::Event => matches!(item.event.as_str(), "labeled" | "closed"),
            Kind::Opened => false,
        };
        let by_someone_else = item
            .actor
            .as_deref()
            .is_some_and(|actor| !actor.eq_ignore_ascii_case(&item.issue_user));
        if responds && by_someone_else && !item.actor_is_bot && rows.get(item.issue, responded) == 0
        {
            rows.set(item.issue, responded, 1);
            item.marks.responded = true;
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::super::engine::tests::{comment, event, opened};
    use super::*;

    const PR: (i64, bool, &str) = (1, true, "alice");

    fn marks(items: Vec<Item>) -> Vec<bool> {
        let mut rows = Rows::default();
        let mut annotator = Annotator::new(&Bots::default(), true, &[], &mut rows);
        items
            .into_iter()
            .map(|mut item| {
                annotator.annotate(&mut item, &mut rows);
                item.marks.responded
            })
            .collect()
    }

    #[test]
    fn the_first_response_is_the_first_action_of_another_person() {
        let items = vec![
            opened(0, 1, true, "alice"),
            comment(10, 1, PR, "alice", "ping"),
            comment(20, 2, PR, "k8s-ci-robot", "/retest"),
            event(
                25,
                1,
                PR,
                "labeled",
                Some("size/M"),
                Some("dependabot[bot]"),
            ),
            event(30, 2, PR, "subscribed", None, Some("bob")),
            comment(40, 3, PR, "Bob", "looks good"),
            comment(50, 4, PR, "carol", "me too"),
        ];
        assert_eq!(
            marks(items),
            vec![false, false, false, false, false, true, false]
        );
        // A close or a label by another person responds too; a deleted user (no actor)
        // does not.
        let issue = (2, false, "erin");
        let items = vec![
            event(5, 9, issue, "closed", None, None),
            event(6, 10, issue, "labeled", Some("kind/bug"), Some("frank")),
            event(7, 11, issue, "closed", None, Some("frank")),
        ];
        assert_eq!(marks(items), vec![false, true, false]);
    }

    #[test]
    fn githubs_bot_type_stays_whatever_the_login() {
        let mut rows = Rows::default();
        let mut annotator = Annotator::new(&Bots::default(), true, &[], &mut rows);
        let mut item = comment(10, 1, PR, "ci-helper", "build passed");
        item.actor_is_bot = true;
        annotator.annotate(&mut item, &mut rows);
        assert!(item.actor_is_bot);
        assert!(
            !item.marks.responded,
            "a bot never gives the first response"
        );
    }

    #[test]
    fn bots_are_flagged_once_per_login() {
        let mut rows = Rows::default();
        let mut annotator = Annotator::new(&Bots::default(), false, &[], &mut rows);
        let mut item = comment(10, 1, (3, true, "renovate[bot]"), "K8S-CI-ROBOT", "x");
        annotator.annotate(&mut item, &mut rows);
        assert!(item.author_is_bot && item.actor_is_bot);
        assert!(
            !item.marks.responded,
            "no responses tracked when none is asked"
        );
        let mut item = comment(10, 2, PR, "bob", "x");
        annotator.annotate(&mut item, &mut rows);
        assert!(!item.author_is_bot && !item.actor_is_bot);
        assert_eq!(annotator.verdicts.len(), 4);
    }
}
