//! The Dockerfile's stages (`frontend.targets`, upstream
//! frontend/subrequests/targets/targets.go) and buildx's table of them.

use std::io::{self, Write};

use serde::Deserialize;

use super::lint::Location;
use super::tabwriter::table;

/// The stages a build can target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Targets {
    /// In Dockerfile order.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub targets: Vec<Stage>,
}

/// One stage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Stage {
    /// Its name (`FROM ... AS NAME`); empty for an unnamed stage.
    #[serde(default)]
    pub name: String,
    /// Whether a build without a target builds it (the last stage).
    #[serde(default)]
    pub default: bool,
    /// Its documentation comment.
    #[serde(default)]
    pub description: String,
    /// The image or stage it starts from.
    #[serde(default)]
    pub base: String,
    /// Its `--platform`.
    #[serde(default)]
    pub platform: String,
    /// Where it is declared.
    #[serde(default)]
    pub location: Option<Location>,
}

impl Targets {
    /// Writes the `TARGET`/`DESCRIPTION` table as buildx prints it; the
    /// default stage is marked `(default)`.
    ///
    /// # Errors
    ///
    /// When `w` fails.
    pub fn write_text(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
        for t in &self.targets {
            let name = match (t.name.is_empty(), t.default) {
                (true, true) => "(default)".to_string(),
                (false, true) => format!("{} (default)", t.name),
                _ => t.name.clone(),
            };
            rows.push(vec![name, t.description.clone()]);
        }
        w.write_all(table(&rows, 1).as_bytes())
    }
}

fn null_is_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Stage>, D::Error> {
    Ok(Option::<Vec<Stage>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_print_with_the_default_marked() {
        let t: Targets = serde_json::from_str(
            r#"{"targets": [{"name": "build", "description": "compiles", "base": "alpine"},
                            {"name": "release", "default": true}], "sources": null}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        t.write_text(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TARGET            DESCRIPTION\nbuild             compiles\nrelease (default) \n"
        );
    }
}
