use std::time::Duration;

use super::*;

const FILE: &str = "\
# syntax=docker/dockerfile:1
ARG BASE
FROM ${BASE} AS build
RUN apt-get update \\
    && apt-get install -y git
# rbuild:refresh=never
RUN git clone https://x/y /src
# build it
# rbuild:refresh=6h
COPY . /src
RUN --network=none make -C /src
RUN --mount=type=cache,target=/root/.cache pip install -U pip

FROM build
RUN <<EOT
curl -fsSL https://x | sh
EOT
";

#[test]
fn analyze_lists_every_step() {
    let steps = analyze(FILE).unwrap();
    let got: Vec<(usize, Option<usize>, &str, Vec<&str>)> = steps
        .iter()
        .map(|s| {
            let fetches = s.fetches.iter().map(String::as_str).collect();
            (s.line, s.stage, s.instruction.as_str(), fetches)
        })
        .collect();
    assert_eq!(
        got,
        [
            (2, None, "ARG BASE", vec![]),
            (3, Some(0), "FROM ${BASE} AS build", vec![]),
            (
                4,
                Some(0),
                "RUN apt-get update && apt-get install -y git",
                vec!["apt-get update", "apt-get install (unpinned)"]
            ),
            (
                7,
                Some(0),
                "RUN git clone https://x/y /src",
                vec!["git clone"]
            ),
            (10, Some(0), "COPY . /src", vec![]),
            (11, Some(0), "RUN --network=none make -C /src", vec![]),
            (
                12,
                Some(0),
                "RUN --mount=type=cache,target=/root/.cache pip install -U pip",
                vec!["pip install --upgrade"]
            ),
            (14, Some(1), "FROM build", vec![]),
            (15, Some(1), "RUN <<EOT", vec!["curl URL"]),
        ]
    );
    assert_eq!(steps[2].end_line, 5);
    assert_eq!(steps[3].directive, Some((6, Refresh::Never)));
    let six = Refresh::Every(Duration::from_secs(6 * 3600));
    assert_eq!(steps[4].directive, Some((9, six)));
}

#[test]
fn policy_prefers_the_directive() {
    let steps = analyze(FILE).unwrap();
    let day = Some(Duration::from_secs(86_400));
    let policy = |i: usize, every| steps[i].policy(every, false).map(|p| (p.refresh, p.source));
    assert_eq!(
        policy(2, day),
        Some((
            Refresh::Every(Duration::from_secs(86_400)),
            PolicySource::Flag
        ))
    );
    assert_eq!(policy(2, None), None);
    assert_eq!(
        policy(3, day),
        Some((Refresh::Never, PolicySource::Directive { line: 6 }))
    );
    assert_eq!(policy(5, day), None, "fetches nothing, no directive");
}

#[test]
fn misplaced_or_malformed_directives_are_errors() {
    let table = [
        (
            "FROM a\n# rbuild:refresh=6h\n\nRUN x\n",
            "line 2: `# rbuild:refresh=` must be",
        ),
        ("FROM a\nRUN x\n# rbuild:refresh=6h\n", "line 3"),
        ("FROM a\nRUN x \\\n# rbuild:refresh=6h\n  y\n", "line 3"),
        (
            "FROM a\n# rbuild:refresh=6h\n# rbuild:refresh=never\nRUN x\n",
            "line 3: a second",
        ),
        (
            "FROM a\n# rbuild:refresh=soon\nRUN x\n",
            "line 2: `# rbuild:refresh=soon`",
        ),
        ("FROM a\n# rbuild:refrsh=6h\nRUN x\n", "unknown directive"),
    ];
    for (text, want) in table {
        let e = analyze(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn odd_but_valid_files_are_analyzed() {
    for text in [
        "",
        "\n\n",
        "FROM a\nARG A=1 B=2\nRUN [\"curl\", \"https://x\"]\n",
        "# escape=`\nFROM a\nRUN curl `\n  https://x\n",
        "FROM a\nRUN [unterminated\nRUN \"x\nRUN\n",
        "RUN curl https://x before any from\n",
    ] {
        analyze(text).unwrap();
    }
    let steps = analyze("FROM a\nrun [\"sh\", \"-c\", \"wget https://x\"]\n").unwrap();
    assert_eq!(steps[1].fetches, ["wget URL"]);
    assert_eq!(
        steps[1].instruction,
        "RUN [\"sh\", \"-c\", \"wget https://x\"]"
    );
    let too_big = "#".repeat(MAX_DOCKERFILE_BYTES + 1);
    assert!(matches!(
        analyze(&too_big),
        Err(DockerfileError::TooLarge { .. })
    ));
}

/// Fuzz target `dockerfile`: the splitter, the analysis, the refresh rewrite (its
/// line map must stay inside the user's file) and the image reader.
#[test]
fn fuzz_dockerfile() {
    use std::time::{SystemTime, UNIX_EPOCH};
    crate::fuzz::run("dockerfile", |data| {
        let text = String::from_utf8_lossy(data);
        let physical = split::physical_lines(&text).len();
        let s = split::split(&text);
        assert_eq!(s.lines.len(), physical, "one kind per physical line");
        for ins in &s.instructions {
            assert!(ins.start >= 1 && ins.start <= ins.end && ins.end <= physical);
        }
        let _ = analyze(&text);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for (every, force) in [(Some(Duration::from_secs(3600)), false), (None, true)] {
            if let Ok(Some(r)) = prepare(&text, every, force, now) {
                let lines = split::physical_lines(&r.text).len();
                for line in 0..=lines + 2 {
                    assert!(
                        r.map_line(line) <= physical.max(line),
                        "line {line} of {lines}"
                    );
                }
                let _ = r.map_message("dockerfile parse error on line 3 (line 99)");
                let _ = progress_marks(&r)("[2/3] RUN git clone x");
            }
        }
        let _ = prepare(&text, None, false, SystemTime::UNIX_EPOCH);
        let args = [("BASE".to_string(), "x.example/y".to_string())].into();
        let _ = images::images(&text, &args);
    });
}
