//! The boundary check of a list walk: pages GitHub numbers by offset shift when the list
//! changes during a walk. An edit moves an item to the front and shifts later pages
//! towards the end (one item is read twice, none is missed). A deletion, a transfer, or
//! an unstable order among items of one update second shifts them the other way: the
//! first item of the next page slides onto the page already read and is never seen.
//!
//! So at the end of a walk of more than one page, every page is asked again with the ETag
//! it was read with. A 304 (free of rate limit) proves the page did not move. A page
//! that did is read whole, and any item in it that the walk never read, with an update
//! time inside the walk's window (after its mark, not after its top), was hidden by a
//! shift: it is stored now. The pass repeats (up to [`PASSES`] times) while it finds
//! some. A first walk (a backfill) is not checked here: the reconciliation sweep that
//! follows every backfill compares the whole repository anyway.

use std::collections::HashSet;

use super::lists::ListKind;
use super::sync::{RepoSync, RoundStats, SyncError};
use super::writer::Writer;
use crate::db::UtcTime;

/// Passes over the pages of a walk at most.
const PASSES: usize = 3;

/// Whether the check runs: `VELODROME_BOUNDARY_CHECK=off` turns it off, for the test
/// that shows the hidden item it prevents.
fn enabled() -> bool {
    std::env::var("VELODROME_BOUNDARY_CHECK").map_or(true, |v| v != "off")
}

/// One page of a walk: where it was read and the ETag it came with.
#[derive(Debug, Clone)]
struct Page {
    url: String,
    etag: Option<String>,
}

/// The pages of one walk and every item it read.
#[derive(Debug, Default)]
pub(super) struct Walked {
    enabled: bool,
    pages: Vec<Page>,
    read: HashSet<i64>,
}

impl Walked {
    /// A record of a walk; `to_mark` is false for a first walk, which is not checked.
    pub fn new(to_mark: bool) -> Self {
        Walked {
            enabled: to_mark && enabled(),
            ..Walked::default()
        }
    }

    /// Notes a page read at `url`.
    pub fn record(&mut self, url: &str, etag: Option<String>, rows: &super::lists::Rows) {
        if !self.enabled {
            return;
        }
        self.pages.push(Page {
            url: url.to_owned(),
            etag,
        });
        self.read.extend(rows.keys().into_iter().map(|(id, _)| id));
    }
}

impl RepoSync {
    /// Checks the pages of a completed walk of `kind` whose window was (`mark`, `top`]
    /// (see the module documentation), storing what a shift hid.
    pub(super) async fn recheck_boundaries(
        &self,
        kind: ListKind,
        mut walked: Walked,
        mark: Option<UtcTime>,
        top: Option<UtcTime>,
        stats: &mut RoundStats,
        writer: &mut Writer,
    ) -> Result<(), SyncError> {
        let (Some(mark), Some(top)) = (mark, top) else {
            return Ok(());
        };
        if !walked.enabled || walked.pages.len() < 2 {
            return Ok(());
        }
        for pass in 1..=PASSES {
            let (mut moved, mut found) = (0usize, 0u64);
            for page in &mut walked.pages {
                self.check_stop()?;
                let Some((mut rows, etag, _, _)) = self
                    .list_page(kind, &page.url, page.etag.as_deref())
                    .await?
                else {
                    continue;
                };
                moved += 1;
                page.etag = etag;
                let read = &mut walked.read;
                rows.retain(|id, at| at >= mark && at <= top && read.insert(id));
                if rows.len() == 0 {
                    continue;
                }
                found += rows.len() as u64;
                tracing::warn!(
                    repository = %self.key,
                    endpoint = kind.endpoint(),
                    url = page.url,
                    ids = ?rows.keys().iter().map(|k| k.0).collect::<Vec<_>>(),
                    "the list shifted during the walk and hid these items; storing them"
                );
                rows.count(stats);
                writer.send(rows.into_plain_page(kind)).await?;
            }
            tracing::debug!(repository = %self.key, endpoint = kind.endpoint(), pass, moved, found, "boundary check");
            stats.unhidden += found;
            if found == 0 {
                break;
            }
        }
        Ok(())
    }
}
