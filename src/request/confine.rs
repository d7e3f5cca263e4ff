//! What the daemon may read of each local directory, whatever it asks for.
//!
//! The Dockerfile frontend asks for the context with the `.dockerignore` patterns and for
//! the Dockerfile's directory with the Dockerfile's name alone. An honest daemon never asks
//! for more; a compromised shared builder could. So the same limits are computed here,
//! from the same files the frontend reads, and the session's filesync applies them to every
//! transfer ([`Scope`]): a file the user excluded, or a neighbour of a Dockerfile kept
//! outside the context, is never read or sent.

use std::path::Path;

use super::DockerfileSource;
use crate::buildspec::InvalidBuild;
use crate::session::filesync::Scope;
use crate::session::filesync::ignorefile::{self, DOCKERIGNORE};

/// The main context's scope: the frontend takes `<Dockerfile>.dockerignore` from beside
/// the Dockerfile when there is one, else the context's `.dockerignore` (upstream
/// frontend/dockerui/config.go). The context's `.dockerignore` itself stays readable only
/// when the frontend reads it.
pub(crate) fn context_scope(
    context: &Path,
    dockerfile: &DockerfileSource,
) -> Result<Scope, InvalidBuild> {
    if let DockerfileSource::File { dir, filename } = dockerfile {
        let companion = dir.join(format!("{filename}{}", DOCKERIGNORE));
        if let Some(patterns) =
            read_ignore(&companion).map_err(|reason| context_error(context, reason))?
        {
            return checked(Scope::excluding(patterns), context);
        }
    }
    dir_scope(context).map_err(|reason| context_error(context, reason))
}

/// A named context's scope: the frontend reads its own `.dockerignore` (upstream
/// frontend/dockerui/namedcontext.go).
pub(crate) fn named_scope(name: &str, dir: &Path) -> Result<Scope, InvalidBuild> {
    dir_scope(dir).map_err(|reason| InvalidBuild::NamedContext {
        name: name.to_string(),
        path: dir.to_path_buf(),
        reason,
    })
}

/// The Dockerfile's directory: the frontend asks for the Dockerfile and its ignore file,
/// and nothing else there is the build's business.
pub(crate) fn dockerfile_scope(filename: &str) -> Scope {
    Scope::only([filename.to_string(), format!("{filename}{}", DOCKERIGNORE)])
}

/// `dir/.dockerignore` applied to `dir`, the file itself left readable.
fn dir_scope(dir: &Path) -> Result<Scope, String> {
    let Some(mut patterns) = read_ignore(&dir.join(DOCKERIGNORE))? else {
        return Ok(Scope::all());
    };
    if patterns.is_empty() {
        return Ok(Scope::all());
    }
    // Last match wins: the exception at the end keeps the file the frontend reads first.
    patterns.push(format!("!{DOCKERIGNORE}"));
    let scope = Scope::excluding(patterns);
    scope
        .check()
        .map_err(|e| format!("has an invalid {DOCKERIGNORE}: {e}"))?;
    Ok(scope)
}

fn checked(scope: Scope, context: &Path) -> Result<Scope, InvalidBuild> {
    scope
        .check()
        .map_err(|e| context_error(context, format!("has an invalid ignore file: {e}")))?;
    Ok(scope)
}

/// The patterns of an ignore file, `None` when there is none.
fn read_ignore(path: &Path) -> Result<Option<Vec<String>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(ignorefile::read_all(&String::from_utf8_lossy(&bytes)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // A directory of that name is no ignore file, for the frontend either.
        Err(_) if path.is_dir() => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn context_error(context: &Path, reason: String) -> InvalidBuild {
    InvalidBuild::Context {
        path: context.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontends_ignore_file_decides() {
        let ctx = tempfile::tempdir().unwrap();
        let inline = DockerfileSource::Inline(bytes::Bytes::from_static(b"FROM scratch\n"));
        assert_eq!(context_scope(ctx.path(), &inline).unwrap(), Scope::all());

        std::fs::write(ctx.path().join(".dockerignore"), "# x\nsecrets\n*.key\n").unwrap();
        let scope = context_scope(ctx.path(), &inline).unwrap();
        assert_eq!(scope.exclude, ["secrets", "*.key", "!.dockerignore"]);

        // A Dockerfile's own ignore file wins, and then `.dockerignore` is not exempt.
        let df = tempfile::tempdir().unwrap();
        std::fs::write(df.path().join("app.Dockerfile.dockerignore"), "*\n!src\n").unwrap();
        let file = DockerfileSource::File {
            dir: df.path().to_path_buf(),
            filename: "app.Dockerfile".into(),
        };
        assert_eq!(
            context_scope(ctx.path(), &file).unwrap().exclude,
            ["*", "!src"]
        );

        std::fs::write(ctx.path().join(".dockerignore"), "[\n").unwrap();
        let err = context_scope(ctx.path(), &inline).unwrap_err().to_string();
        assert!(err.contains("invalid .dockerignore"), "{err}");
        let err = named_scope("lib", ctx.path()).unwrap_err().to_string();
        assert!(err.contains("named context \"lib\""), "{err}");

        assert_eq!(
            dockerfile_scope("Dockerfile").only.unwrap(),
            ["Dockerfile", "Dockerfile.dockerignore"]
        );
    }
}
