//! velogen: validates config.yaml and renders every Velodrome manifest.
//!
//! The data flows one way, one module per step: [`read`] -> [`validate`] -> [`model`] ->
//! [`render`] -> [`check`] -> [`write`]. Nothing is written until every object has rendered
//! and passed its checks. See ARCHITECTURE.md.

pub mod check;
mod dashboards;
pub mod diagnostics;
pub mod diff;
pub mod mirror;
pub mod model;
mod prometheus;
pub mod read;
pub mod render;
pub mod select;
pub mod validate;
pub mod write;

use std::path::Path;

use thiserror::Error;

pub use check::Checked;
pub use dashboards::people::{APPROVE_COMMAND, LGTM_COMMAND, dashboard as people_dashboard};
pub use diagnostics::Diagnostic;

/// Maps `f` over `items` on every core, in contiguous chunks, and returns the results in
/// the order of `items` (so parallelism never changes output bytes). A panic in a worker is
/// re-raised here.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = items.len().div_ceil(workers).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// What can stop a render after the config was found valid.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// A template failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// Rendered objects failed their checks (a template defect).
    #[error("rendered objects failed their checks:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Check(Vec<check::CheckError>),
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<validate::Validated, Vec<Diagnostic>> {
    let doc = read::read_file(path)?;
    validate::validate(&doc)
}

/// Reads and validates config text (for `diff --from git:REF` and tests).
pub fn load_str(path: &Path, text: &str) -> Result<validate::Validated, Vec<Diagnostic>> {
    let doc = read::parse(path, text)?;
    validate::validate(&doc)
}

/// Renders and checks every object of a valid config.
pub fn render_config(
    config: &model::Config,
    templates: &render::Templates,
) -> Result<Vec<Checked>, PipelineError> {
    let rendered = render::render(config, templates)?;
    check::check(&rendered).map_err(PipelineError::Check)
}
