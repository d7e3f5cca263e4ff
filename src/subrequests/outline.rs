//! A target's parameters (`frontend.outline`, upstream
//! frontend/subrequests/outline/outline.go) and buildx's tables of them.

use std::io::{self, Write};

use serde::Deserialize;

use super::lint::Location;
use super::tabwriter::table;

/// What a target takes: its build arguments, secrets and SSH agents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Outline {
    /// The target stage's name; empty for the default (last) stage.
    #[serde(default)]
    pub name: String,
    /// The stage's documentation comment.
    #[serde(default)]
    pub description: String,
    /// Build arguments, sorted by name.
    #[serde(default)]
    pub args: Vec<OutlineArg>,
    /// Secrets its `RUN --mount=type=secret` steps use.
    #[serde(default)]
    pub secrets: Vec<OutlineRequirement>,
    /// SSH agents its `RUN --mount=type=ssh` steps use.
    #[serde(default)]
    pub ssh: Vec<OutlineRequirement>,
}

/// A build argument.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OutlineArg {
    /// Its name.
    pub name: String,
    /// Its documentation comment.
    #[serde(default)]
    pub description: String,
    /// Its default value.
    #[serde(default)]
    pub value: String,
    /// Where it is declared.
    #[serde(default)]
    pub location: Option<Location>,
}

/// A secret or an SSH agent a step mounts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OutlineRequirement {
    /// Its id.
    pub name: String,
    /// Whether the step fails without it.
    #[serde(default)]
    pub required: bool,
    /// Where it is used.
    #[serde(default)]
    pub location: Option<Location>,
}

impl Outline {
    /// Writes the outline as buildx prints it: `TARGET:`/`DESCRIPTION:`
    /// when the stage has a name or a description, then the `BUILD ARG`,
    /// `SECRET` and `SSH` tables, each followed by a blank line.
    ///
    /// # Errors
    ///
    /// When `w` fails.
    pub fn write_text(&self, w: &mut dyn Write) -> io::Result<()> {
        let row = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        if !self.name.is_empty() || !self.description.is_empty() {
            let name = if self.name.is_empty() {
                "(default)"
            } else {
                &self.name
            };
            let mut rows = vec![row(&["TARGET:", name])];
            if !self.description.is_empty() {
                rows.push(row(&["DESCRIPTION:", &self.description]));
            }
            writeln!(w, "{}", table(&rows, 1))?;
        }
        if !self.args.is_empty() {
            let mut rows = vec![row(&["BUILD ARG", "VALUE", "DESCRIPTION"])];
            rows.extend(
                self.args
                    .iter()
                    .map(|a| row(&[&a.name, &a.value, &a.description])),
            );
            writeln!(w, "{}", table(&rows, 3))?;
        }
        for (title, list) in [("SECRET", &self.secrets), ("SSH", &self.ssh)] {
            if list.is_empty() {
                continue;
            }
            let mut rows = vec![row(&[title, "REQUIRED"])];
            rows.extend(
                list.iter()
                    .map(|r| row(&[&r.name, if r.required { "true" } else { "" }])),
            );
            writeln!(w, "{}", table(&rows, 3))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outline_prints_its_tables() {
        let outline: Outline = serde_json::from_str(
            r#"{"name": "release", "description": "the shipped image",
                "args": [{"name": "BASE", "value": "alpine", "description": "base image"},
                         {"name": "VERSION"}],
                "secrets": [{"name": "token", "required": true}, {"name": "npmrc"}],
                "ssh": [{"name": "default"}],
                "sources": ["RlJPTQ=="]}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        outline.write_text(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TARGET:      release\n\
             DESCRIPTION: the shipped image\n\
             \n\
             BUILD ARG   VALUE    DESCRIPTION\n\
             BASE        alpine   base image\n\
             VERSION              \n\
             \n\
             SECRET   REQUIRED\n\
             token    true\n\
             npmrc    \n\
             \n\
             SSH       REQUIRED\n\
             default   \n\
             \n"
        );
    }
}
