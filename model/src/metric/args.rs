//! The command-line shape every plugin shares: `--flag=value`, `--flag value` (as pflag
//! allowed) and switches with an optional `=true/false`. A plugin lists its flags; this
//! module turns the argument list into flags or an error that names the argument.

use super::{MetricError, nearest};

/// A flag a plugin accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlagDef {
    /// Name without dashes.
    pub name: &'static str,
    /// False for switches.
    pub takes_value: bool,
}

/// Shorthand for a flag that takes a value.
pub(crate) const fn value(name: &'static str) -> FlagDef {
    FlagDef {
        name,
        takes_value: true,
    }
}

/// Shorthand for a switch.
pub(crate) const fn switch(name: &'static str) -> FlagDef {
    FlagDef {
        name,
        takes_value: false,
    }
}

/// One flag as written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag<'a> {
    /// Its name, from the plugin's list.
    pub name: &'static str,
    /// The value, or `None` for a switch.
    pub value: Option<&'a str>,
    /// For a switch: on or off.
    pub on: bool,
    /// Index of the flag's own argument.
    pub at: usize,
    /// Index of the argument holding the value (the flag's own for `--flag=value`).
    pub value_at: usize,
}

impl Flag<'_> {
    /// An error about this flag's value.
    pub fn fail(&self, message: impl Into<String>) -> MetricError {
        MetricError::at(self.value_at, message)
    }

    /// The value of a flag that takes one (the scanner guarantees it is there).
    pub fn text(&self) -> &str {
        self.value.unwrap_or_default()
    }
}

/// Splits `args` into the flags of `plugin`, refusing anything else.
pub(crate) fn scan<'a>(
    plugin: &str,
    defs: &[FlagDef],
    args: &'a [String],
) -> Result<Vec<Flag<'a>>, MetricError> {
    let mut flags = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let arg = args[index].as_str();
        let at = index;
        index += 1;
        let Some(body) = arg.strip_prefix("--") else {
            let message = if arg.starts_with('-') && arg.len() > 1 {
                format!("{arg:?}: flags take two dashes, as in -{arg}")
            } else {
                format!("unexpected argument {arg:?}: every argument is a --flag")
            };
            return Err(MetricError::at(at, message));
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(def) = defs.iter().find(|d| d.name == name) else {
            let mut message = format!("unknown flag --{name} for plugin {plugin}");
            match nearest(name, defs.iter().map(|d| d.name)) {
                Some(near) => message.push_str(&format!("; did you mean --{near}?")),
                None => message.push_str(&format!(
                    "; known flags: {}",
                    defs.iter()
                        .map(|d| format!("--{}", d.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
            return Err(MetricError::at(at, message));
        };
        if !def.takes_value {
            let on = match inline {
                None => true,
                Some(value) => parse_bool(value).ok_or_else(|| {
                    MetricError::at(
                        at,
                        format!(
                            "--{} takes no value (or true/false), not {value:?}",
                            def.name
                        ),
                    )
                })?,
            };
            flags.push(Flag {
                name: def.name,
                value: None,
                on,
                at,
                value_at: at,
            });
            continue;
        }
        let (value, value_at) = match inline {
            Some(value) => (value, at),
            None => match args.get(index) {
                Some(next) if !next.starts_with("--") => {
                    index += 1;
                    (next.as_str(), index - 1)
                }
                _ => {
                    return Err(MetricError::at(
                        at,
                        format!("--{} needs a value, as --{}=VALUE", def.name, def.name),
                    ));
                }
            },
        };
        flags.push(Flag {
            name: def.name,
            value: Some(value),
            on: true,
            at,
            value_at,
        });
    }
    Ok(flags)
}

/// Go's strconv.ParseBool, which pflag used for `--flag=value` on booleans.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Refuses a flag given twice where a metric has room for one.
pub(crate) fn once(seen: &mut Option<usize>, flag: &Flag, what: &str) -> Result<(), MetricError> {
    if seen.is_some() {
        return Err(MetricError::at(
            flag.at,
            format!("--{} is given twice; {what}", flag.name),
        ));
    }
    *seen = Some(flag.at);
    Ok(())
}
