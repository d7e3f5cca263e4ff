//! Builds of one `build_all` that take another build's result as a named
//! context (bake's `contexts = { base = "target:base" }`), handed over as
//! buildx does it: both run their frontends through the gateway; the
//! dependency publishes its frontend result as soon as its frontend ran,
//! the dependent passes that result's definition to its own frontend as an
//! input (`context:NAME=input:KEY`, with the image config in
//! `input-metadata:KEY`), and the dependency keeps its build open until
//! the dependent is done (its definition names the dependency's session).
//! Nothing is tagged in an engine or pushed for it, on any daemon.
//! Upstream: buildx build/build.go `waitContextDeps` and the linked
//! targets' waits.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::buildspec::Build;
use crate::gateway::{FrontendResult, Ref, Refs};
use crate::outcome::BuildError;
use crate::request::BuildPlan;
use crate::solve::Published;

/// The image config keys a frontend reads from `input-metadata:KEY`.
const INPUT_METADATA: [&str; 2] = ["containerimage.config", "containerimage.buildinfo"];

/// The dependency graph of one `build_all`.
pub(super) struct Graph {
    /// Per build: the builds that take its result.
    pub dependents: Vec<Vec<usize>>,
    /// Per build: why its dependencies cannot be met (bad index, cycle).
    pub invalid: Vec<Option<BuildError>>,
}

pub(super) fn graph(builds: &[Build]) -> Graph {
    let n = builds.len();
    let mut invalid: Vec<Option<BuildError>> = (0..n).map(|_| None).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, b) in builds.iter().enumerate() {
        for (name, &j) in &b.context_builds {
            let reason = if j >= n {
                Some(format!("there is no build {j} (the list has {n})"))
            } else if j == i || reaches(builds, j, i) {
                Some("the builds depend on each other in a cycle".to_string())
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    invalid[i] = Some(BuildError::Dependency {
                        name: name.clone(),
                        index: j,
                        reason,
                    });
                }
                None if !dependents[j].contains(&i) => dependents[j].push(i),
                None => {}
            }
        }
    }
    Graph {
        dependents,
        invalid,
    }
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

/// Waits for each build `plan` takes a named context from, and hands its
/// result over; a canceled call cancels this build too.
pub(super) async fn take_all(
    plan: &mut BuildPlan,
    needs: Vec<(String, usize, watch::Receiver<Published>)>,
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    for (name, index, rx) in needs {
        let handed = wait(rx)
            .await
            .and_then(|r| hand_over(plan, &name, index, &r));
        if let Err(reason) = handed {
            return Err(match cancel.is_cancelled() {
                true => BuildError::Canceled,
                false => BuildError::Dependency {
                    name,
                    index,
                    reason,
                },
            });
        }
    }
    Ok(())
}

/// Waits for build `index`'s frontend result.
async fn wait(mut rx: watch::Receiver<Published>) -> Result<Arc<FrontendResult>, String> {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v
            .clone()
            .unwrap_or_else(|| Err("the build did not run".into())),
        Err(_) => Err("the build did not run".into()),
    }
}

/// Gives `plan`'s frontend the result of build `index` as named context
/// `name`: its definition as an input, its image config as the input's
/// metadata; one input per platform for a multi-platform result, which
/// the frontend picks by the platform it builds for.
pub(super) fn hand_over(
    plan: &mut BuildPlan,
    name: &str,
    index: usize,
    result: &FrontendResult,
) -> Result<(), String> {
    let key = format!("build-{index}");
    let context = format!("context:{name}");
    match &result.refs {
        Refs::None => return Err("it produced no result to build on".into()),
        Refs::Single(r) => {
            add_input(plan, &context, &key, r, &result.metadata, "")?;
        }
        Refs::Platforms(refs) => {
            for (platform, r) in refs {
                add_input(
                    plan,
                    &format!("{context}::{platform}"),
                    &format!("{key}::{platform}"),
                    r,
                    &result.metadata,
                    &format!("/{platform}"),
                )?;
            }
            plan.frontend_attrs.remove(&context);
        }
    }
    Ok(())
}

fn add_input(
    plan: &mut BuildPlan,
    attr: &str,
    key: &str,
    r: &Ref,
    metadata: &BTreeMap<String, bytes::Bytes>,
    suffix: &str,
) -> Result<(), String> {
    if r.def.is_empty() && !r.id.is_empty() {
        return Err("the daemon did not hand over its result's definition".into());
    }
    plan.frontend_inputs.insert(key.to_string(), r.def.clone());
    plan.frontend_attrs
        .insert(attr.to_string(), format!("input:{key}"));
    let b64 = base64::engine::general_purpose::STANDARD;
    let meta: BTreeMap<&str, String> = INPUT_METADATA
        .iter()
        .filter_map(|k| Some((*k, b64.encode(metadata.get(&format!("{k}{suffix}"))?))))
        .collect();
    if !meta.is_empty() {
        // Without it the frontend sees a bare filesystem: no ENV, WORKDIR, ...
        let json = serde_json::to_string(&meta).unwrap_or_default();
        plan.frontend_attrs
            .insert(format!("input-metadata:{key}"), json);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn dependents_are_found_and_cycles_refused() {
        let a = Build::new("/a");
        let b = Build::new("/b").named_context_from("base", 0);
        let g = graph(&[a, b]);
        assert!(g.invalid.iter().all(Option::is_none));
        assert_eq!(g.dependents, [vec![1], vec![]]);

        let x = Build::new("/x").named_context_from("y", 1);
        let y = Build::new("/y").named_context_from("x", 0);
        let far = Build::new("/z").named_context_from("q", 7);
        let g = graph(&[x, y, far]);
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

    fn plan() -> BuildPlan {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM base\n").unwrap();
        crate::request::prepare(
            &Build::new(dir.path()).named_context_from("base", 0),
            crate::daemon::DaemonKind::Buildkitd,
            None,
            crate::buildspec::AttestSupport::Yes,
            &crate::upstream::Resolved::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_result_becomes_an_input_with_its_image_config() {
        let def = Bytes::from_static(b"\x0a\x01x");
        let result = FrontendResult {
            refs: Refs::Single(Ref {
                id: "r".into(),
                def: def.clone(),
            }),
            metadata: BTreeMap::from([(
                "containerimage.config".to_string(),
                Bytes::from_static(b"{}"),
            )]),
            ..FrontendResult::default()
        };
        let mut p = plan();
        hand_over(&mut p, "base", 0, &result).unwrap();
        assert_eq!(p.frontend_inputs["build-0"], def);
        assert_eq!(p.frontend_attrs["context:base"], "input:build-0");
        assert_eq!(
            p.frontend_attrs["input-metadata:build-0"],
            r#"{"containerimage.config":"e30="}"#
        );
        assert!(p.via_gateway());

        let per_platform = FrontendResult {
            refs: Refs::Platforms(BTreeMap::from([(
                "linux/arm64".to_string(),
                Ref {
                    id: "a".into(),
                    def,
                },
            )])),
            ..FrontendResult::default()
        };
        let mut p = plan();
        hand_over(&mut p, "base", 2, &per_platform).unwrap();
        assert_eq!(
            p.frontend_attrs["context:base::linux/arm64"],
            "input:build-2::linux/arm64"
        );
        assert!(!p.frontend_attrs.contains_key("context:base"));
        assert!(
            hand_over(&mut plan(), "base", 0, &FrontendResult::default())
                .unwrap_err()
                .contains("no result")
        );
    }
}
