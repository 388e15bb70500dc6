//! The metric grammar: a metric's plugin and arguments, parsed once into a spec the
//! transform can run. OWNED BY THE TRANSFORM WORK (issue 5); this is the agreed interface.

use thiserror::Error;

/// Why a metric definition was refused. `arg` is the index of the offending argument in the
/// list as written (so velogen can point at its line), or `None` when the problem is the
/// plugin or the combination of arguments.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct MetricError {
    /// Index into the argument list, when one argument is at fault.
    pub arg: Option<usize>,
    /// What is wrong, for the person editing the config.
    pub message: String,
}

/// A metric definition that parsed: one the transform can run.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    _private: (),
}

impl MetricSpec {
    /// Parses a plugin name and its arguments.
    pub fn parse(plugin: &str, args: &[String]) -> Result<Self, MetricError> {
        if plugin != "count" {
            return Err(MetricError {
                arg: None,
                message: format!("unknown plugin {plugin:?}; the only plugin is \"count\""),
            });
        }
        let _ = args;
        Ok(Self { _private: () })
    }
}
