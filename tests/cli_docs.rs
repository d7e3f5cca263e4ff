//! Shell completions and the man page come from the CLI's own definitions.

mod support;

use support::{assert_success, rbuild, stdout};

#[test]
fn completions_and_man_page_cover_the_commands() {
    for (shell, marker) in [
        ("bash", "_rbuild()"),
        ("zsh", "#compdef rbuild"),
        ("fish", "complete -c rbuild"),
    ] {
        let out = rbuild().args(["completion", shell]).output().unwrap();
        assert_success(&out);
        let script = stdout(&out);
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(200)]
        );
        assert!(
            script.contains("bake") && script.contains("cache-from"),
            "{shell}"
        );
    }
    let out = rbuild().arg("man").output().unwrap();
    assert_success(&out);
    let page = stdout(&out);
    assert!(
        page.contains(".TH rbuild 1"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("bake"), "the subcommands are listed");
    let out = rbuild().args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}
