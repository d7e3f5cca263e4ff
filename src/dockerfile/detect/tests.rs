use super::{exec, script};

#[track_caller]
fn check(table: &[(&str, &[&str])]) {
    for (s, want) in table {
        assert_eq!(script(s), *want, "{s:?}");
    }
}

#[test]
fn git() {
    check(&[
        ("git clone https://github.com/x/y /src", &["git clone"]),
        ("git -C /src pull", &["git pull"]),
        ("cd /src && git fetch origin main", &["git fetch"]),
        (
            "git clone --depth 1 --branch v1.2.3 https://x/y",
            &["git clone"],
        ),
        ("git clone https://x/y && cd y && git checkout 3f2a9c1", &[]),
        (
            "git clone https://x/y /s && git -C /s reset --hard a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
            &[],
        ),
        ("git clone https://x/y && git checkout v1.2", &["git clone"]),
        (
            "git submodule update --init --remote",
            &["git submodule update --remote"],
        ),
        ("git submodule update --init", &[]),
        ("git log -1", &[]),
    ]);
}

#[test]
fn downloads() {
    check(&[
        ("curl -fsSL https://x/install.sh | sh", &["curl URL"]),
        ("wget -q -O /tmp/a.tgz https://x/a.tgz", &["wget URL"]),
        ("curl -o x \"$URL\"", &["curl URL"]),
        ("/usr/bin/curl https://x", &["curl URL"]),
        ("curl --version", &[]),
        (
            "VERSION=$(curl -s https://api/x) && echo $VERSION",
            &["curl URL"],
        ),
        ("echo curl https://x", &[]),
    ]);
}

#[test]
fn system_packages() {
    check(&[
        (
            "apt-get update && apt-get install -y curl=7.88.1-10",
            &["apt-get update"],
        ),
        (
            "apt-get install -y --no-install-recommends curl",
            &["apt-get install (unpinned)"],
        ),
        ("apt-get install -y curl=7.88.1-10 ./local.deb", &[]),
        ("apt-get -o Acquire::Retries=3 install -y jq=1.6", &[]),
        (
            "apt update && apt upgrade -y",
            &["apt update", "apt upgrade"],
        ),
        (
            "DEBIAN_FRONTEND=noninteractive sudo -E apt-get update",
            &["apt-get update"],
        ),
        ("apk add --no-cache curl", &["apk add (unpinned)"]),
        (
            "apk add --no-cache --virtual .deps curl=8.5.0-r0 jq~1.7",
            &[],
        ),
        ("apk update", &["apk update"]),
        ("apk info", &[]),
        ("dnf install -y git", &["dnf install"]),
        ("yum makecache", &[]),
    ]);
}

#[test]
fn language_packages() {
    check(&[
        ("pip install requests", &["pip install (unpinned)"]),
        ("pip install requests==2.31.0 ./local", &[]),
        ("pip3 install -U pip", &["pip install --upgrade"]),
        (
            "python3 -m pip install --no-cache-dir flask>=2",
            &["pip install (unpinned)"],
        ),
        (
            "pip install -r requirements.txt",
            &["pip install -r (pins not visible)"],
        ),
        ("pip install --require-hashes -r requirements.txt", &[]),
        ("pip install -e .", &[]),
        (
            "pip install -e git+https://x/y#egg=y",
            &["pip install (unpinned)"],
        ),
        ("uv pip install httpx", &["pip install (unpinned)"]),
        ("pip --version", &[]),
        ("npm ci", &[]),
        ("npm install", &["npm install (not npm ci)"]),
        ("npm install -g typescript@5.4.2 @scope/pkg@1.0.0", &[]),
        ("npm i -g typescript", &["npm i (unpinned)"]),
        ("npm install left-pad@^1", &["npm install (unpinned)"]),
        ("yarn", &["yarn install (lockfile not frozen)"]),
        ("yarn install --frozen-lockfile", &[]),
        ("yarn build", &[]),
        (
            "pnpm install --frozen-lockfile && pnpm add zod",
            &["pnpm add (unpinned)"],
        ),
        ("go get github.com/x/y@latest", &["go get (not pinned)"]),
        ("go install golang.org/x/tools/gopls@v0.15.3", &[]),
        (
            "go install github.com/x/y@main",
            &["go install (not pinned)"],
        ),
        ("go install ./cmd/app && go mod download", &[]),
    ]);
}

#[test]
fn shells_and_chains() {
    check(&[
        (
            "sh -c 'apt-get update && apt-get install -y x'",
            &["apt-get update", "apt-get install (unpinned)"],
        ),
        ("bash -euxc \"git clone https://x\"", &["git clone"]),
        ("set -e; if true; then curl https://x; fi", &["curl URL"]),
        ("echo ok > /dev/null 2>&1", &[]),
        ("make && make install", &[]),
    ]);
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(exec(&words(&["git", "clone", "https://x"])), ["git clone"]);
    assert_eq!(
        exec(&words(&["/bin/sh", "-c", "apk add git"])),
        ["apk add (unpinned)"]
    );
    assert!(exec(&words(&["echo", "git", "clone"])).is_empty());
    assert!(exec(&[]).is_empty());
}

/// The upstreams behind a script's fetches, as `Display` shows them.
#[track_caller]
fn upstreams(table: &[(&str, &[&str])]) {
    let mut vars = super::Vars::default();
    vars.set("REPO", Some("https://h/r.git".into()));
    vars.set("BASE", None);
    for (s, want) in table {
        let got: Vec<String> = super::script_in(s, &vars)
            .upstreams
            .iter()
            .map(|u| match u {
                super::Upstream::Source(s) => s.to_string(),
                super::Upstream::Opaque { fetch, reason } => format!("{fetch}: {reason}"),
            })
            .collect();
        assert_eq!(got, *want, "{s:?}");
    }
}

#[test]
fn git_upstreams() {
    upstreams(&[
        ("git clone https://h/r /src", &["git https://h/r HEAD"]),
        (
            "git clone --depth 1 -b v2 \"$REPO\" /src",
            &["git https://h/r.git v2"],
        ),
        (
            "git clone https://h/r /s && cd /s && git fetch && git pull",
            &["git https://h/r HEAD"],
        ),
        (
            "git clone https://h/r /s && git -C /s fetch origin dev",
            &["git https://h/r HEAD", "git https://h/r dev"],
        ),
        (
            "git clone https://h/r /s && cd /s && git checkout -q origin/dev",
            &["git https://h/r dev"],
        ),
        ("git clone https://h/r /s && git checkout 3f2a9c1", &[]),
        (
            "cd /s && git pull",
            &["git pull: no `git clone` of its repository earlier in this step"],
        ),
        (
            "git clone $BASE/x.git",
            &["git clone: its URL uses $BASE, which rbuild cannot expand"],
        ),
        (
            "U=https://h/own.git; git clone $U",
            &["git https://h/own.git HEAD"],
        ),
        (
            "export U=$(cat /url) && git clone \"$U\"",
            &["git clone: its URL uses $U, which rbuild cannot expand"],
        ),
        (
            "git clone /local/repo",
            &["git clone: a path inside the build, not a network URL"],
        ),
        (
            "git submodule update --init --remote",
            &["git submodule update --remote: rbuild cannot look up what it fetches"],
        ),
    ]);
}

#[test]
fn download_upstreams() {
    upstreams(&[
        (
            "curl -fsSL -o /t.tgz https://h/t.tgz && tar xf /t.tgz",
            &["https://h/t.tgz"],
        ),
        (
            "wget -q -O- https://h/a | sh && curl https://h/b",
            &["https://h/a", "https://h/b"],
        ),
        ("curl -o \"$DEST\" https://h/x", &["https://h/x"]),
        (
            "curl $URL",
            &["curl: its URL uses $URL, which rbuild cannot expand"],
        ),
        ("wget -i /list", &["wget: its URLs are read from a file"]),
        (
            "curl ftp://h/x",
            &["curl: rbuild looks up http and https URLs, not ftp"],
        ),
        (
            "apt-get update && curl https://h/x",
            &[
                "https://h/x",
                "apt-get update: rbuild cannot look up what it fetches",
            ],
        ),
    ]);
}
