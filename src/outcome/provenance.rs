//! The provenance a build attached, in the form buildx writes into its
//! metadata file (`buildx.build.provenance`): SLSA v0.2, a v1 predicate
//! converted field by field as BuildKit does, trimmed for the mode.

use serde_json::{Map, Value};

use super::MetadataProvenance;

/// `predicate` as buildx writes it into the metadata file: SLSA v0.2 (a v1
/// predicate is converted), trimmed for `mode`.
pub(crate) fn for_metadata(predicate: &Value, mode: MetadataProvenance) -> Option<Value> {
    let mut v02 = if predicate.get("buildDefinition").is_some() {
        slsa1_to_02(predicate)
    } else {
        predicate.clone()
    };
    match mode {
        MetadataProvenance::Off => return None,
        MetadataProvenance::Min => {
            if let Some(map) = v02.as_object_mut() {
                map.remove("buildConfig");
                map.remove("metadata");
            }
        }
        MetadataProvenance::Max => {}
    }
    Some(v02)
}

/// BuildKit's own v1 -> v0.2 mapping, field by field.
fn slsa1_to_02(p: &Value) -> Value {
    let def = &p["buildDefinition"];
    let run = &p["runDetails"];
    let ext = &def["externalParameters"];
    let int = &def["internalParameters"];
    let mut out = Map::new();
    out.insert(
        "builder".into(),
        obj([("id", run["builder"]["id"].clone())]),
    );
    out.insert(
        "buildType".into(),
        Value::String("https://mobyproject.org/buildkit@v1".into()),
    );
    let materials: Vec<Value> = def["resolvedDependencies"]
        .as_array()
        .map(|deps| {
            deps.iter()
                .map(|d| obj([("uri", d["uri"].clone()), ("digest", d["digest"].clone())]))
                .collect()
        })
        .unwrap_or_default();
    out.insert("materials".into(), Value::Array(materials));
    let mut environment = obj([("platform", int["builderPlatform"].clone())]);
    if let (Some(env), Some(custom)) = (environment.as_object_mut(), int.as_object()) {
        for (k, v) in custom {
            if !matches!(k.as_str(), "builderPlatform" | "buildConfig") {
                env.insert(k.clone(), v.clone());
            }
        }
    }
    let source = &ext["configSource"];
    out.insert(
        "invocation".into(),
        obj([
            (
                "configSource",
                obj([
                    ("uri", source["uri"].clone()),
                    ("digest", source["digest"].clone()),
                    ("entryPoint", source["path"].clone()),
                ]),
            ),
            ("parameters", ext["request"].clone()),
            ("environment", environment),
        ]),
    );
    if !int["buildConfig"].is_null() {
        out.insert("buildConfig".into(), int["buildConfig"].clone());
    }
    let meta = &run["metadata"];
    if let Some(m) = meta.as_object() {
        let mut v02 = obj([
            ("buildInvocationID", meta["invocationID"].clone()),
            ("buildStartedOn", meta["startedOn"].clone()),
            ("buildFinishedOn", meta["finishedOn"].clone()),
            (
                "completeness",
                obj([
                    ("parameters", meta["completeness"]["request"].clone()),
                    ("environment", Value::Bool(true)),
                    (
                        "materials",
                        meta["completeness"]["resolvedDependencies"].clone(),
                    ),
                ]),
            ),
            ("reproducible", meta["reproducible"].clone()),
        ]);
        if let Some(v) = v02.as_object_mut() {
            // BuildKit's own keys (`https://mobyproject.org/buildkit@v1#...`)
            // carry over as they are.
            v.extend(
                m.iter()
                    .filter(|(k, _)| k.starts_with("https://"))
                    .map(|(k, x)| (k.clone(), x.clone())),
            );
        }
        out.insert("metadata".into(), v02);
    }
    Value::Object(strip_nulls(out))
}

fn obj<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(strip_nulls(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    ))
}

/// Go's `omitempty` leaves absent fields out rather than writing null.
fn strip_nulls(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter().filter(|(_, v)| !v.is_null()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_predicates_read_as_v02_and_min_drops_steps_and_times() {
        let v1 = json!({
            "buildDefinition": {
                "buildType": "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
                "externalParameters": {
                    "configSource": {"uri": "https://git/x.git", "digest": {"sha1": "abc"}, "path": "Dockerfile"},
                    "request": {"frontend": "dockerfile.v0"}
                },
                "internalParameters": {"builderPlatform": "linux/amd64", "buildConfig": {"llbDefinition": []}},
                "resolvedDependencies": [{"uri": "pkg:docker/busybox", "digest": {"sha256": "1"}}]
            },
            "runDetails": {
                "builder": {"id": "https://ci/run/1"},
                "metadata": {"invocationID": "ref1", "startedOn": "t0", "finishedOn": "t1",
                             "completeness": {"request": true, "resolvedDependencies": false},
                             "reproducible": false,
                             "https://mobyproject.org/buildkit@v1#hermetic": true}
            }
        });
        let max = for_metadata(&v1, MetadataProvenance::Max).unwrap();
        assert_eq!(max["builder"]["id"], "https://ci/run/1");
        assert_eq!(max["buildType"], "https://mobyproject.org/buildkit@v1");
        assert_eq!(max["materials"][0]["uri"], "pkg:docker/busybox");
        assert_eq!(
            max["invocation"]["configSource"]["entryPoint"],
            "Dockerfile"
        );
        assert_eq!(max["invocation"]["parameters"]["frontend"], "dockerfile.v0");
        assert_eq!(max["invocation"]["environment"]["platform"], "linux/amd64");
        assert_eq!(max["metadata"]["buildInvocationID"], "ref1");
        assert_eq!(
            max["metadata"]["https://mobyproject.org/buildkit@v1#hermetic"],
            true
        );
        assert!(max["buildConfig"].is_object());
        let min = for_metadata(&v1, MetadataProvenance::Min).unwrap();
        assert!(min.get("buildConfig").is_none() && min.get("metadata").is_none());
        assert_eq!(min["materials"], max["materials"]);
        assert_eq!(for_metadata(&v1, MetadataProvenance::Off), None);
    }
}
