//! A frontend that does not know a subrequest (`requestid=frontend.lint`
//! to Docker Engine 26.1's built-in Dockerfile frontend) answers with
//! "unsupported request NAME" and a typed detail naming it (upstream
//! solver/errdefs/subrequest.go, registered as `errdefs.Subrequest+json`).

use prost::Message;

use crate::proto::google::rpc;

/// The subrequest `status` says the frontend does not support, if that is
/// what it says.
pub(crate) fn unsupported_subrequest(status: &tonic::Status) -> Option<String> {
    if let Ok(details) = rpc::Status::decode(status.details()) {
        for any in details.details {
            if any.type_url.ends_with("errdefs.Subrequest+json")
                && let Ok(json) = serde_json::from_slice::<serde_json::Value>(&any.value)
                && let Some(name) = json["name"].as_str()
            {
                return Some(name.to_string());
            }
        }
    }
    // Frontends without typed errors say it in words only.
    let message = status.message();
    let at = message.find("unsupported request ")? + "unsupported request ".len();
    let name: String = message[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_detail_or_the_words_name_the_request() {
        let detail = rpc::Status {
            code: 2,
            message: "unsupported request frontend.lint".into(),
            details: vec![prost_types::Any {
                type_url: "github.com/moby/buildkit/errdefs.Subrequest+json".into(),
                value: br#"{"name":"frontend.lint"}"#.to_vec(),
            }],
        };
        let status = tonic::Status::with_details(
            tonic::Code::Unknown,
            "unsupported request frontend.lint",
            detail.encode_to_vec().into(),
        );
        assert_eq!(
            unsupported_subrequest(&status).as_deref(),
            Some("frontend.lint")
        );
        let words = tonic::Status::unknown("failed to solve: unsupported request frontend.outline");
        assert_eq!(
            unsupported_subrequest(&words).as_deref(),
            Some("frontend.outline")
        );
        assert_eq!(
            unsupported_subrequest(&tonic::Status::unknown("exit code 1")),
            None
        );
    }
}
