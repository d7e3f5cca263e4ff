//! Whether the connected daemon can store attestations, which decides
//! buildx's default provenance and whether an explicit `--attest` can work.

use crate::buildspec::AttestSupport as Support;
use crate::connect::Address;

use super::Client;

impl Client {
    /// Asked once per client. buildx's rule: the daemon has BuildKit's
    /// image attestation support and stores multi-platform images. A
    /// Docker Engine does the latter only with the containerd image store;
    /// a standalone buildkitd has both from v0.11, the release that added
    /// the Info call.
    pub(crate) async fn attestation_support(&self) -> Support {
        self.attestations
            .get_or_init(|| async { self.ask_attestation_support().await })
            .await
            .clone()
    }

    async fn ask_attestation_support(&self) -> Support {
        if let Address::Docker(_) = self.address() {
            let Some(engine) = self.daemon.load_engine() else {
                return Support::Yes;
            };
            return match engine.uses_containerd_store().await {
                Ok(true) => Support::Yes,
                Ok(false) => Support::No(
                    "this Docker Engine keeps images in its classic store, which cannot hold \
                     attestations: turn on the containerd image store, or build on a \
                     standalone buildkitd"
                        .into(),
                ),
                // The build itself will report an engine that does not
                // answer; without an answer, keep images as they were.
                Err(e) => {
                    tracing::debug!(error = %e, "engine info unavailable; no default attestations");
                    Support::No(format!("the engine's image store could not be read ({e})"))
                }
            };
        }
        match self.info().await {
            // A Docker Engine's BuildKit reached by a plain address (a
            // proxy to it): its docker and oci exporters fail the build on
            // attestations ("not found"), so they stay off.
            Ok(info)
                if info.workers.iter().any(|w| {
                    w.labels
                        .keys()
                        .any(|k| k.starts_with("org.mobyproject.buildkit.worker.moby."))
                }) =>
            {
                Support::No(
                    "this is a Docker Engine's BuildKit reached without its docker socket, \
                     which cannot export attestations: connect with docker://SOCKET"
                        .into(),
                )
            }
            Ok(info) if info.version.is_some() => Support::Yes,
            Ok(_) => Support::No(
                "this buildkitd predates attestations (BuildKit v0.11): upgrade it".into(),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "daemon info unavailable; no default attestations");
                Support::No(format!("the daemon's version could not be read ({e})"))
            }
        }
    }
}
