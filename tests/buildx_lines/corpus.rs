//! The lines, each with the request fields it must produce.

/// The addresses a line is resolved for: a Docker Engine's socket (image
/// outputs become the engine's `moby` exporter) or a standalone buildkitd.
pub const ENGINE: &str = "docker:///nonexistent/docker.sock";
pub const BUILDKITD: &str = "tcp://127.0.0.1:1";

pub struct Line {
    /// Where it comes from.
    pub source: &'static str,
    /// The arguments after `docker buildx build`.
    pub args: &'static str,
    pub addr: &'static str,
    pub env: &'static [(&'static str, &'static str)],
    /// JSON pointers into the request and the value each must hold.
    pub expect: &'static [(&'static str, &'static str)],
}

const fn line(
    source: &'static str,
    args: &'static str,
    expect: &'static [(&'static str, &'static str)],
) -> Line {
    Line {
        source,
        args,
        addr: ENGINE,
        env: &[],
        expect,
    }
}

pub const CORPUS: &[Line] = &[
    line(
        "buildx docs: basic",
        "-t user/app:latest .",
        &[
            ("/frontend", "dockerfile.v0"),
            ("/frontend_attrs/filename", "Dockerfile"),
            ("/exporters/0/type", "moby"),
            ("/exporters/0/attrs/name", "user/app:latest"),
        ],
    ),
    line(
        "buildx docs: --push",
        "--push -t registry.example.com/app:1 .",
        &[
            ("/exporters/0/type", "moby"),
            ("/exporters/0/attrs/push", "true"),
        ],
    ),
    Line {
        addr: BUILDKITD,
        ..line(
            "buildx docs: --push on a container builder",
            "--push -t registry.example.com/app:1 .",
            &[
                ("/exporters/0/type", "image"),
                ("/exporters/0/attrs/push", "true"),
                ("/exporters/0/attrs/name", "registry.example.com/app:1"),
            ],
        )
    },
    line(
        "buildx docs: --load",
        "--load -t app:dev .",
        &[("/exporters/0/type", "moby")],
    ),
    line(
        "buildx docs: build args",
        "--build-arg HTTP_PROXY=http://10.20.30.2:1234 --build-arg FTP_PROXY=http://40.50.60.5:4567 .",
        &[
            (
                "/frontend_attrs/build-arg:HTTP_PROXY",
                "http://10.20.30.2:1234",
            ),
            (
                "/frontend_attrs/build-arg:FTP_PROXY",
                "http://40.50.60.5:4567",
            ),
        ],
    ),
    Line {
        env: &[("HTTP_PROXY", "http://proxy:3128")],
        ..line(
            "buildx docs: build arg from the environment",
            "--build-arg HTTP_PROXY .",
            &[("/frontend_attrs/build-arg:HTTP_PROXY", "http://proxy:3128")],
        )
    },
    line(
        "buildx docs: --target",
        "-t myapp:test --target test .",
        &[("/frontend_attrs/target", "test")],
    ),
    line(
        "buildx docs: -f",
        "-f docker/Dockerfile.prod -t app .",
        &[("/frontend_attrs/filename", "Dockerfile.prod")],
    ),
    line(
        "buildx docs: --platform",
        "--platform linux/amd64,linux/arm64 -t app .",
        &[("/frontend_attrs/platform", "linux/amd64,linux/arm64")],
    ),
    line(
        "buildx docs: --output local",
        "-o type=local,dest=out .",
        &[("/exporters/0/type", "local")],
    ),
    line(
        "buildx docs: --output tar",
        "--output type=tar,dest=out.tar .",
        &[("/exporters/0/type", "tar")],
    ),
    line(
        "buildx docs: --output oci",
        "--output type=oci,dest=image.tar .",
        &[("/exporters/0/type", "oci")],
    ),
    line(
        "buildx docs: -o dir shorthand",
        "-o out .",
        &[("/exporters/0/type", "local")],
    ),
    line(
        "buildx docs: registry cache",
        "--cache-to type=registry,ref=user/app:buildcache,mode=max --cache-from type=registry,ref=user/app:buildcache -t user/app .",
        &[
            ("/cache_exports/0/type", "registry"),
            ("/cache_exports/0/attrs/ref", "user/app:buildcache"),
            ("/cache_exports/0/attrs/mode", "max"),
            ("/cache_imports/0/attrs/ref", "user/app:buildcache"),
        ],
    ),
    line(
        "buildx docs: bare cache-from ref",
        "--cache-from user/app:cache -t user/app .",
        &[
            ("/cache_imports/0/type", "registry"),
            ("/cache_imports/0/attrs/ref", "user/app:cache"),
        ],
    ),
    line(
        "buildx docs: local cache",
        "--cache-to type=local,dest=cache-dir --cache-from type=local,src=cache-dir .",
        &[
            ("/cache_exports/0/type", "local"),
            ("/cache_imports/0/type", "local"),
        ],
    ),
    line(
        "buildx docs: inline cache",
        "--cache-to type=inline -t user/app --push .",
        &[("/cache_exports/0/type", "inline")],
    ),
    line(
        "buildx docs: secret from a file",
        "--secret id=aws,src=secrets/aws.txt .",
        &[("/frontend", "dockerfile.v0")],
    ),
    Line {
        env: &[("GITHUB_TOKEN", "not-printed")],
        ..line(
            "buildx docs: secret from the environment",
            "--secret id=github,env=GITHUB_TOKEN .",
            &[("/frontend", "dockerfile.v0")],
        )
    },
    line(
        "buildx docs: --build-context image",
        "--build-context alpine=docker-image://alpine@sha256:0123456789012345678901234567890123456789012345678901234567890123 .",
        &[(
            "/frontend_attrs/context:alpine",
            "docker-image://alpine@sha256:0123456789012345678901234567890123456789012345678901234567890123",
        )],
    ),
    line(
        "buildx docs: --build-context dir",
        "--build-context project=extra .",
        &[("/frontend_attrs/context:project", "local:project")],
    ),
    line(
        "buildx docs: --add-host",
        "--add-host docker:10.180.0.1 --add-host v6:[2001:db8::33] .",
        &[(
            "/frontend_attrs/add-hosts",
            "docker=10.180.0.1,v6=2001:db8::33",
        )],
    ),
    line(
        "buildx docs: --allow and --network host",
        "--allow network.host --network host .",
        &[
            ("/frontend_attrs/force-network-mode", "host"),
            ("/entitlements/0", "network.host"),
        ],
    ),
    line(
        "buildx docs: --no-cache-filter",
        "--no-cache-filter install,test .",
        &[("/frontend_attrs/no-cache", "install,test")],
    ),
    line(
        "buildx docs: --no-cache",
        "--no-cache -t app .",
        &[("/frontend_attrs/no-cache", "")],
    ),
    line(
        "buildx docs: --shm-size and --ulimit",
        "--shm-size 128m --ulimit nofile=1024:1024 .",
        &[
            ("/frontend_attrs/shm-size", "134217728"),
            ("/frontend_attrs/ulimit", "nofile=1024:1024"),
        ],
    ),
    line(
        "buildx docs: --cgroup-parent",
        "--cgroup-parent=cgroup-parent .",
        &[("/frontend_attrs/cgroup-parent", "cgroup-parent")],
    ),
    line(
        "buildx docs: --annotation",
        "--annotation index:org.opencontainers.image.authors=dvdksn --push -t user/app .",
        &[(
            "/exporters/0/attrs/annotation-index.org.opencontainers.image.authors",
            "dvdksn",
        )],
    ),
    line(
        "buildx docs: --provenance=false",
        "--provenance=false --push -t user/app .",
        &[],
    ),
    line(
        "buildx docs: --sbom and max provenance",
        "--sbom=true --provenance=mode=max -t user/app --push .",
        &[
            ("/frontend_attrs/attest:sbom", "type=sbom"),
            (
                "/frontend_attrs/attest:provenance",
                "type=provenance,mode=max",
            ),
        ],
    ),
    line(
        "buildx docs: --attest",
        "--attest type=sbom,generator=docker/scout-sbom-indexer:latest -t app .",
        &[(
            "/frontend_attrs/attest:sbom",
            "type=sbom,generator=docker/scout-sbom-indexer:latest",
        )],
    ),
    line(
        "buildx docs: --label",
        "--label org.opencontainers.image.title=app --label org.opencontainers.image.version=1.0 .",
        &[
            (
                "/frontend_attrs/label:org.opencontainers.image.title",
                "app",
            ),
            (
                "/frontend_attrs/label:org.opencontainers.image.version",
                "1.0",
            ),
        ],
    ),
    line(
        "buildx docs: --pull",
        "--pull -t app .",
        &[("/frontend_attrs/image-resolve-mode", "pull")],
    ),
    line(
        "buildx docs: rm and force-rm accepted",
        "--rm --force-rm -t app .",
        &[("/exporters/0/type", "moby")],
    ),
    Line {
        env: &[
            ("ACTIONS_RUNTIME_TOKEN", "a.b.c"),
            ("ACTIONS_CACHE_URL", "https://artifactcache.example/"),
        ],
        ..line(
            "GitHub Actions: docker/build-push-action",
            "--iidfile out/iid --label org.opencontainers.image.source=https://github.com/o/r --platform linux/amd64,linux/arm64 --provenance mode=max,builder-id=https://github.com/o/r/actions/runs/1 --metadata-file out/md.json --cache-from type=gha --cache-to type=gha,mode=max --push -t ghcr.io/o/r:main .",
            &[
                ("/cache_imports/0/type", "gha"),
                ("/cache_exports/0/attrs/mode", "max"),
                ("/cache_exports/0/attrs/token", "<redacted>"),
                (
                    "/cache_exports/0/attrs/url",
                    "https://artifactcache.example/",
                ),
                (
                    "/frontend_attrs/attest:provenance",
                    "type=provenance,builder-id=https://github.com/o/r/actions/runs/1,mode=max",
                ),
                ("/frontend_attrs/platform", "linux/amd64,linux/arm64"),
                ("/exporters/0/attrs/name", "ghcr.io/o/r:main"),
            ],
        )
    },
    line(
        "GitLab CI: registry cache on the project registry",
        "--push --cache-from type=registry,ref=registry.gitlab.com/g/p:cache --cache-to type=registry,ref=registry.gitlab.com/g/p:cache,mode=max,image-manifest=true,oci-mediatypes=true -t registry.gitlab.com/g/p:abc123 -t registry.gitlab.com/g/p:latest .",
        &[
            ("/cache_exports/0/attrs/image-manifest", "true"),
            ("/cache_exports/0/attrs/oci-mediatypes", "true"),
            (
                "/exporters/0/attrs/name",
                "registry.gitlab.com/g/p:abc123,registry.gitlab.com/g/p:latest",
            ),
        ],
    ),
    line(
        "Jenkins: build number as tag and argument, loaded for the next stage",
        "--platform linux/amd64 -t registry.example.com/team/app:42 --build-arg VERSION=42 --load -f Dockerfile .",
        &[
            ("/frontend_attrs/build-arg:VERSION", "42"),
            ("/frontend_attrs/platform", "linux/amd64"),
        ],
    ),
    line(
        "buildx docs: build checks",
        "--check .",
        &[
            ("/frontend", "dockerfile.v0"),
            ("/frontend_attrs/requestid", "frontend.lint"),
            (
                "/frontend_attrs/frontend.caps",
                "moby.buildkit.frontend.subrequests+forward",
            ),
        ],
    ),
    line(
        "buildx docs: the outline of a target",
        "--call=outline --target release .",
        &[
            ("/frontend_attrs/requestid", "frontend.outline"),
            ("/frontend_attrs/target", "release"),
        ],
    ),
];

/// Lines that name a flag rbuild cannot honour.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("-m 2g -t app .", "--memory"),
    ("--cpu-quota 50000 .", "--cpu-quota"),
    ("--policy filename=policy.rego .", "--policy"),
];
