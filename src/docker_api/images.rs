//! Image inspect, list, tag and remove (moby's `api/server/router/image`).

use http::{Method, StatusCode};
use serde::Deserialize;

use super::http::{parse_json, path_escape, query_escape, status_error};
use super::{Engine, EngineError};

/// One image as `GET /images/json` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// The engine's id: the config digest with the classic store, the
    /// manifest or index digest with the containerd store.
    pub id: String,
    /// `repo:tag` names; the classic store's `<none>:<none>` is left out.
    pub repo_tags: Vec<String>,
    /// The image's size in bytes as the engine reports it; 0 when the engine
    /// has not computed it.
    pub size: u64,
}

/// The fields of a list entry this module reads.
#[derive(Deserialize)]
pub(super) struct ListedImage {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    // The engine uses -1 for "not computed".
    #[serde(rename = "Size", default)]
    pub size: i64,
    #[serde(rename = "Created", default)]
    pub created: i64,
}

impl Engine {
    /// Image inspect by name or id; `Ok(None)` when the engine has no such
    /// image. The id is the engine's (see [`ImageSummary::id`]).
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read; a 404 is `Ok(None)`, not an error.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError> {
        let what = format!("inspecting image {reference}");
        let path = format!("/images/{}/json", path_escape(reference));
        let (status, body) = self.call(Method::GET, &path, &what).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(&what, status, &body));
        }
        #[derive(Deserialize)]
        struct Inspect {
            #[serde(rename = "Id")]
            id: String,
        }
        let inspect: Inspect = parse_json(&what, &body)?;
        Ok(Some(inspect.id))
    }

    /// Gives `image` (a name or id) the name `reference` (`repo[:tag]`, the
    /// tag defaulting to `latest`).
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidReference`] when `reference` is no valid `repo[:tag]`;
    /// otherwise [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read.
    pub async fn tag(&self, image: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_tag(reference)?;
        let what = format!("tagging {image} as {reference}");
        let path = format!(
            "/images/{}/tag?repo={}&tag={}",
            path_escape(image),
            query_escape(repo),
            query_escape(tag)
        );
        let (status, body) = self.call(Method::POST, &path, &what).await?;
        if !status.is_success() {
            return Err(status_error(&what, status, &body));
        }
        Ok(())
    }

    /// Removes a name (or, by id, the image). An image that is already gone
    /// is not an error: the state the caller wants holds.
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read; a 404 is `Ok(())`, not an error.
    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<(), EngineError> {
        let what = format!("removing image {reference}");
        let mut path = format!("/images/{}", path_escape(reference));
        if force {
            path.push_str("?force=1");
        }
        let (status, body) = self.call(Method::DELETE, &path, &what).await?;
        if status == StatusCode::NOT_FOUND {
            tracing::debug!(reference, "image already absent");
            return Ok(());
        }
        if !status.is_success() {
            return Err(status_error(&what, status, &body));
        }
        Ok(())
    }

    /// Every image the engine holds (`GET /images/json`), in the engine's order.
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read.
    pub async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        Ok(self
            .listed_images()
            .await?
            .into_iter()
            .map(|image| ImageSummary {
                id: image.id,
                repo_tags: image
                    .repo_tags
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                size: u64::try_from(image.size).unwrap_or(0),
            })
            .collect())
    }

    pub(super) async fn listed_images(&self) -> Result<Vec<ListedImage>, EngineError> {
        let what = "listing images";
        let (status, body) = self.call(Method::GET, "/images/json", what).await?;
        if !status.is_success() {
            return Err(status_error(what, status, &body));
        }
        parse_json(what, &body)
    }
}

/// Splits `repo[:tag]` for the tag endpoint. The tag is after the last `:`
/// only when no `/` follows it, so a registry port (`127.0.0.1:5000/x`) stays
/// in the repository.
pub(super) fn split_tag(reference: &str) -> Result<(&str, &str), EngineError> {
    let invalid = |reason| EngineError::InvalidReference {
        reference: reference.to_string(),
        reason,
    };
    if reference.is_empty() {
        return Err(invalid("it is empty"));
    }
    if reference.contains('@') {
        return Err(invalid("a digest reference cannot be given as a new tag"));
    }
    let last_segment = reference.rfind('/').map_or(0, |slash| slash + 1);
    let Some(colon) = reference[last_segment..].rfind(':') else {
        return Ok((reference, "latest"));
    };
    let (repo, tag) = (
        &reference[..last_segment + colon],
        &reference[last_segment + colon + 1..],
    );
    if repo.is_empty() || tag.is_empty() {
        return Err(invalid("expected repository[:tag]"));
    }
    Ok((repo, tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_engine::FakeEngine;

    #[test]
    fn tags_split_after_the_last_path_segment() {
        let cases = [
            ("busybox", ("busybox", "latest")),
            ("busybox:1.36", ("busybox", "1.36")),
            ("127.0.0.1:5000/x/y:1", ("127.0.0.1:5000/x/y", "1")),
            ("127.0.0.1:5000/x/y", ("127.0.0.1:5000/x/y", "latest")),
            ("localhost:5000/app", ("localhost:5000/app", "latest")),
            ("rbuild-test/engine-1:t1", ("rbuild-test/engine-1", "t1")),
        ];
        for (input, want) in cases {
            assert_eq!(split_tag(input).unwrap(), want, "{input}");
        }
        for bad in ["", "x:", ":t", "x@sha256:abc", "r/x:t@sha256:abc"] {
            assert!(split_tag(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn inspect_404_is_none_and_tag_sends_repo_and_tag() {
        let fake = FakeEngine::start(vec![
            FakeEngine::reply(404, r#"{"message":"No such image: x:latest"}"#),
            FakeEngine::reply(200, r#"{"Id":"sha256:abc","RepoTags":[]}"#),
            FakeEngine::reply(201, ""),
            FakeEngine::reply(404, r#"{"message":"No such image"}"#),
            FakeEngine::reply(
                409,
                r#"{"message":"image is being used by running container"}"#,
            ),
        ]);
        let engine = &fake.engine;
        assert_eq!(engine.image_id("x").await.unwrap(), None);
        assert_eq!(
            engine.image_id("sha256:abc").await.unwrap().as_deref(),
            Some("sha256:abc")
        );
        engine
            .tag("sha256:abc", "127.0.0.1:5000/x/y:1")
            .await
            .unwrap();
        engine.remove_image("gone", true).await.unwrap();
        let err = engine.remove_image("busy", false).await.unwrap_err();
        assert!(err.to_string().contains("being used"), "{err}");

        let requests = fake.requests().await;
        assert!(
            requests[0].starts_with("GET /images/x/json "),
            "{requests:?}"
        );
        assert!(
            requests[2]
                .starts_with("POST /images/sha256:abc/tag?repo=127.0.0.1%3A5000%2Fx%2Fy&tag=1 "),
            "{requests:?}"
        );
        assert!(requests[3].starts_with("DELETE /images/gone?force=1 "));
        assert!(requests[4].starts_with("DELETE /images/busy "));
    }

    #[tokio::test]
    async fn list_tolerates_null_tags_and_unknown_sizes() {
        let fake = FakeEngine::start(vec![FakeEngine::reply(
            200,
            r#"[{"Id":"sha256:a","RepoTags":null,"Size":-1,"Created":1},
                {"Id":"sha256:b","RepoTags":["<none>:<none>","x:1"],"Size":42,"Created":2,"Extra":true}]"#,
        )]);
        let images = fake.engine.list_images().await.unwrap();
        assert_eq!(
            images,
            vec![
                ImageSummary {
                    id: "sha256:a".into(),
                    repo_tags: vec![],
                    size: 0
                },
                ImageSummary {
                    id: "sha256:b".into(),
                    repo_tags: vec!["x:1".into()],
                    size: 42
                },
            ]
        );
    }
}
