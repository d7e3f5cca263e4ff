//! Builds of one `build_all` that use another build's image as a named
//! context (bake's `contexts = { base = "target:base" }`): the dependency
//! is built first and the dependent's frontend gets its image as
//! `context:NAME=docker-image://REF`. On a Docker Engine the image is kept
//! in the engine's store under a temporary tag (the engine's BuildKit
//! resolves local images first); on a standalone buildkitd it must be
//! pushed, and is referenced by name and digest. buildx instead hands the
//! dependency's LLB result over through the gateway API (frontend inputs),
//! which rbuild does not speak yet.

use tokio::sync::watch;

use crate::buildspec::Build;
use crate::daemon::DaemonKind;
use crate::outcome::{BuildError, BuildResult};
use crate::output::{ImageArchive, ImageOutput, Output};

/// What a build publishes for its dependents: its image ref, or why there
/// is none.
pub(super) type Published = Option<Result<String, String>>;

/// The dependency graph of one `build_all`.
pub(super) struct Graph {
    /// The builds, dependencies given a temporary tag on an engine.
    pub builds: Vec<Build>,
    /// Per build: the temporary tag its image is stored under.
    pub tmp_tags: Vec<Option<String>>,
    /// Per build: why its dependencies cannot be met (bad index, cycle).
    pub invalid: Vec<Option<BuildError>>,
}

pub(super) fn graph(builds: &[Build], daemon: DaemonKind) -> Graph {
    let n = builds.len();
    let mut invalid: Vec<Option<BuildError>> = (0..n).map(|_| None).collect();
    for (i, b) in builds.iter().enumerate() {
        for (name, &j) in &b.context_builds {
            let reason = if j >= n {
                Some(format!("there is no build {j} (the list has {n})"))
            } else if j == i || reaches(builds, j, i) {
                Some("the builds depend on each other in a cycle".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                invalid[i] = Some(BuildError::Dependency {
                    name: name.clone(),
                    index: j,
                    reason,
                });
            }
        }
    }
    let id = crate::session::new_id();
    let mut tmp_tags = vec![None; n];
    let mut out = builds.to_vec();
    for j in 0..n {
        let needed = builds
            .iter()
            .any(|b| b.context_builds.values().any(|&d| d == j));
        if needed && daemon != DaemonKind::Buildkitd && !stays_named_in_engine(&builds[j]) {
            // An output of its own: as a tag it would name (and push) the
            // build's other image outputs too.
            let tag = format!("rbuild-deps/{id}:{j}");
            out[j] = out[j].clone().output(Output::Image(ImageOutput {
                names: vec![tag.clone()],
                ..ImageOutput::default()
            }));
            tmp_tags[j] = Some(tag);
        }
    }
    Graph {
        builds: out,
        tmp_tags,
        invalid,
    }
}

/// Whether an engine keeps the build's image under a name anyway: an image
/// or load output, or no output at all with tags (the engine's default).
fn stays_named_in_engine(b: &Build) -> bool {
    let image = b.outputs.iter().any(|o| match o {
        Output::Image(img) => !img.names.is_empty() || !b.tags.is_empty(),
        Output::Docker {
            dest: ImageArchive::Load,
            ..
        } => !b.tags.is_empty(),
        _ => false,
    });
    image || (b.outputs.is_empty() && !b.tags.is_empty())
}

/// Whether build `from` depends, directly or not, on build `to`.
fn reaches(builds: &[Build], from: usize, to: usize) -> bool {
    let mut stack = vec![from];
    let mut seen = vec![false; builds.len()];
    while let Some(k) = stack.pop() {
        if k == to {
            return true;
        }
        if std::mem::replace(&mut seen[k], true) {
            continue;
        }
        stack.extend(
            builds[k]
                .context_builds
                .values()
                .filter(|&&d| d < builds.len()),
        );
    }
    false
}

/// Waits for build `index`'s image ref.
pub(super) async fn wait(mut rx: watch::Receiver<Published>) -> Result<String, String> {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v
            .clone()
            .unwrap_or_else(|| Err("the build did not run".into())),
        Err(_) => Err("the build did not run".into()),
    }
}

/// The ref dependents use for a finished build's image.
pub(super) fn publish(
    result: &Result<BuildResult, BuildError>,
    tmp_tag: Option<&String>,
) -> Published {
    let r = match result {
        Ok(r) => r,
        Err(e) => return Some(Err(format!("it failed ({e})"))),
    };
    if let Some(tag) = tmp_tag {
        return Some(Ok(tag.clone()));
    }
    // On an engine the image is in its store under its first name.
    if let Some(name) = r
        .outputs
        .iter()
        .find(|o| o.in_engine_store())
        .and_then(|o| o.names().first().map(|n| n.to_string()))
    {
        return Some(Ok(name));
    }
    let pushed = r.outputs.iter().find_map(|o| {
        let name = o.names().first().copied()?;
        let digest = o.digest()?;
        o.pushed.then(|| format!("{name}@{digest}"))
    });
    Some(pushed.ok_or_else(|| {
        "its image was not pushed: on a standalone buildkitd one build's image reaches another only through a registry".to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_get_a_tag_and_cycles_are_refused() {
        let a = Build::new("/a");
        let b = Build::new("/b").named_context_from("base", 0);
        let g = graph(&[a.clone(), b.clone()], DaemonKind::Engine);
        assert!(g.invalid.iter().all(Option::is_none));
        assert!(
            g.tmp_tags[0]
                .as_deref()
                .is_some_and(|t| t.starts_with("rbuild-deps/"))
        );
        assert!(g.tmp_tags[1].is_none());
        assert!(g.builds[0].tags.is_empty(), "the temporary name is no tag");
        // A dependency the engine keeps under its own tag needs none.
        let tagged = Build::new("/a").tag("r/a:1");
        let g2 = graph(
            &[tagged, Build::new("/b").named_context_from("base", 0)],
            DaemonKind::Engine,
        );
        assert!(g2.tmp_tags[0].is_none());
        // A standalone buildkitd keeps no local images: no tag.
        assert!(graph(&[a, b], DaemonKind::Buildkitd).tmp_tags[0].is_none());

        let x = Build::new("/x").named_context_from("y", 1);
        let y = Build::new("/y").named_context_from("x", 0);
        let far = Build::new("/z").named_context_from("q", 7);
        let g = graph(&[x, y, far], DaemonKind::Engine);
        let why = |i: usize| {
            g.invalid[i]
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        assert!(
            why(0).contains("cycle") && why(1).contains("cycle"),
            "{}",
            why(0)
        );
        assert!(why(2).contains("no build 7"), "{}", why(2));
    }
}
