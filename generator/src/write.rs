//! Step 6: write the checked objects: one YAML stream on stdout, or one file per object in a
//! folder. Output is built completely in memory first, so a failure writes nothing, and the
//! folder is replaced in one rename, so a reader never sees half of a render.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::check::Checked;

/// The marker file that says a folder is velogen's to replace.
pub const MARKER: &str = ".velogen";

/// Why output could not be written.
#[derive(Debug, Error)]
pub enum WriteError {
    /// An object could not be serialized (a bug).
    #[error("cannot serialize {id}: {message}")]
    Serialize {
        /// The object.
        id: String,
        /// Why.
        message: String,
    },
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The output folder holds files velogen did not write.
    #[error(
        "{0}: exists and was not written by velogen (no {MARKER} file); refusing to replace it"
    )]
    Foreign(PathBuf),
}

/// The objects as one multi-document YAML stream, each document starting with `---`.
pub fn to_stream(objects: &[&Checked]) -> Result<String, WriteError> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&yaml(o)?);
    }
    Ok(out)
}

fn yaml(o: &Checked) -> Result<String, WriteError> {
    o.to_yaml().map_err(|e| WriteError::Serialize {
        id: o.id(),
        message: e.to_string(),
    })
}

/// File name of an object in an output folder; cluster-wide and shared objects sort first so
/// `kubectl apply -f DIR` creates the namespace before what lives in it.
pub fn file_name(o: &Checked) -> String {
    let prefix = if o.labels.contains_key("project") {
        ""
    } else {
        "00-"
    };
    format!("{prefix}{}-{}.yaml", o.kind.to_ascii_lowercase(), o.name)
}

/// Writes one file per object into `dir`, replacing a previous velogen output atomically.
pub fn to_dir(objects: &[&Checked], dir: &Path) -> Result<(), WriteError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { path, source }
    };
    if dir.exists() {
        let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            return Err(WriteError::Foreign(dir.to_owned()));
        }
    }
    let files: Vec<(String, String)> = objects
        .iter()
        .map(|o| Ok((file_name(o), format!("---\n{}", yaml(o)?))))
        .collect::<Result<_, WriteError>>()?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".velogen-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    for (name, body) in &files {
        let path = staging.path().join(name);
        let mut f = std::fs::File::create(&path).map_err(io(&path))?;
        f.write_all(body.as_bytes()).map_err(io(&path))?;
    }
    let marker = staging.path().join(MARKER);
    std::fs::write(
        &marker,
        "Written by velogen render -o; the whole folder is replaced on each render.\n",
    )
    .map_err(io(&marker))?;
    let staged = staging.keep();
    if dir.exists() {
        let old = parent.join(format!(".velogen-old-{}", std::process::id()));
        std::fs::rename(dir, &old).map_err(io(dir))?;
        std::fs::rename(&staged, dir).map_err(io(dir))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    } else {
        std::fs::rename(&staged, dir).map_err(io(dir))?;
    }
    Ok(())
}
