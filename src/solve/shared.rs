//! Local directories shared by several builds of one `build_all`: each
//! distinct directory is served by one session and uploaded once. The
//! builds' requests name that session per source with the frontend's
//! `local-sessionid:NAME` option; identical local source ops then have one
//! digest, so the daemon's solver runs the transfer once for all of them
//! (buildx build/build.go groups bake targets' directories the same way).

use std::collections::{BTreeMap, HashMap};

use crate::daemon::Daemon;
use crate::request::BuildPlan;
use crate::session::filesync::{LocalSource, TransferStats};
use crate::session::{CONTEXT_SOURCE, Session, SessionConfig, SessionError};

/// The local sources one shared session serves, by name.
type SourceSet = HashMap<String, LocalSource>;

/// One session serving local sources for several builds.
struct SharedSession {
    session: Session,
    /// How many builds read its context source.
    context_users: usize,
}

/// The shared sessions of a group of builds.
pub(crate) struct SharedLocals {
    sessions: Vec<SharedSession>,
    /// Per build: source name -> index into `sessions`.
    assignment: Vec<BTreeMap<String, usize>>,
}

/// What one build needs to know of the shared sessions.
#[derive(Clone)]
pub(crate) struct LocalsView {
    /// Source name -> id of the session serving it.
    pub ids: BTreeMap<String, String>,
    /// The context upload's counters.
    pub context: TransferStats,
    /// Whether other builds read the same context upload.
    pub shared: bool,
}

/// Assigns every source of every plan to a session: a source goes to the
/// session already serving the same thing under its name, else to the first
/// session where its name is free, else to a new one.
fn assign(plans: &[&BuildPlan]) -> (Vec<SourceSet>, Vec<BTreeMap<String, usize>>) {
    let mut sessions: Vec<SourceSet> = Vec::new();
    let mut assignment = Vec::new();
    for plan in plans {
        let mut mine = BTreeMap::new();
        let mut sources: Vec<(String, LocalSource)> = plan.sources().into_iter().collect();
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, source) in sources {
            let same = sessions.iter().position(|s| s.get(&name) == Some(&source));
            let idx = same
                .or_else(|| sessions.iter().position(|s| !s.contains_key(&name)))
                .unwrap_or_else(|| {
                    sessions.push(HashMap::new());
                    sessions.len() - 1
                });
            sessions[idx].insert(name.clone(), source);
            mine.insert(name, idx);
        }
        assignment.push(mine);
    }
    (sessions, assignment)
}

impl SharedLocals {
    /// Opens one session per group of shared sources.
    pub(crate) async fn open(
        client: &Daemon,
        plans: &[&BuildPlan],
    ) -> Result<SharedLocals, SessionError> {
        let (groups, assignment) = assign(plans);
        let mut sessions = Vec::with_capacity(groups.len());
        for (idx, sources) in groups.into_iter().enumerate() {
            // The daemon keys incremental uploads on the session's shared
            // key; the first build whose context is here lends its own.
            let shared_key = plans
                .iter()
                .zip(&assignment)
                .find(|(_, a)| a.get(CONTEXT_SOURCE) == Some(&idx))
                .map(|(p, _)| p.shared_key.clone())
                .unwrap_or_default();
            let context_users = assignment
                .iter()
                .filter(|a| a.get(CONTEXT_SOURCE) == Some(&idx))
                .count();
            let session = Session::start(
                client.control(),
                SessionConfig {
                    sources,
                    shared_key,
                    ..SessionConfig::default()
                },
            )
            .await?;
            tracing::debug!(
                session = session.id(),
                context_users,
                "shared local session"
            );
            sessions.push(SharedSession {
                session,
                context_users,
            });
        }
        Ok(SharedLocals {
            sessions,
            assignment,
        })
    }

    /// The view of build `index`.
    pub(crate) fn view(&self, index: usize) -> Option<LocalsView> {
        let mine = self.assignment.get(index)?;
        let ids = mine
            .iter()
            .filter_map(|(name, &idx)| {
                Some((
                    name.clone(),
                    self.sessions.get(idx)?.session.id().to_string(),
                ))
            })
            .collect();
        let ctx = self.sessions.get(*mine.get(CONTEXT_SOURCE)?)?;
        Some(LocalsView {
            ids,
            context: ctx.session.context_stats(),
            shared: ctx.context_users > 1,
        })
    }

    /// Ends every shared session.
    pub(crate) async fn close(self) {
        for s in self.sessions {
            s.session.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_directory_is_one_session_however_many_builds_use_it() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(other.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let plan = |d: &std::path::Path| {
            crate::request::prepare(
                &crate::Build::new(d),
                crate::daemon::DaemonKind::Buildkitd,
                None,
                crate::buildspec::AttestSupport::Yes,
                &crate::upstream::Resolved::default(),
            )
            .unwrap()
        };
        let (a, b, c) = (plan(dir.path()), plan(dir.path()), plan(other.path()));
        let (sessions, assignment) = assign(&[&a, &b, &c]);
        // a and b share everything; c's context and Dockerfile need a second one.
        assert_eq!(sessions.len(), 2);
        assert_eq!(assignment[0], assignment[1]);
        assert_eq!(assignment[2][CONTEXT_SOURCE], 1);
    }
}
