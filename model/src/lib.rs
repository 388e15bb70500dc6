//! What `velogen` and `velodrome` must agree on, in one place, so that a config which renders
//! is a config the runtime accepts: the names (repositories, DNS labels), the metric grammar
//! (the `count` and `duration` plugins and their flags), who counts as a bot, and the
//! transform plan file that velogen renders and the transform mode reads.
//!
//! This crate has no network, database or YAML dependency on purpose: both binaries link it,
//! and its types are cheap to construct in tests.

pub mod bots;
pub mod metric;
pub mod names;
pub mod plan;
