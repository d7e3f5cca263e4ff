//! Reads images back from the test registry over plain HTTP, so tests check
//! what a user would find there, not what rbuild says it pushed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// One HTTP/1.1 request with `Connection: close`.
pub fn request(registry: &str, method: &str, path: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(registry).expect("connect to the test registry");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {registry}\r\nAccept: {ACCEPT}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse(&raw)
}

fn parse(raw: &[u8]) -> HttpResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header end");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("HTTP status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// `REPO:TAG` or `REPO@DIGEST` -> (repository path, reference).
fn split_ref(image: &str, registry: &str) -> (String, String) {
    let rest = image
        .strip_prefix(&format!("{registry}/"))
        .unwrap_or_else(|| panic!("{image} is not in {registry}"));
    if let Some((repo, digest)) = rest.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    match rest.rsplit_once(':') {
        Some((repo, tag)) => (repo.to_string(), tag.to_string()),
        None => (rest.to_string(), "latest".to_string()),
    }
}

/// The image manifest for linux/amd64 (following an index if there is one).
pub fn manifest(registry: &str, image: &str) -> serde_json::Value {
    let (repo, reference) = split_ref(image, registry);
    let resp = request(
        registry,
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
    );
    assert_eq!(
        resp.status, 200,
        "manifest of {image}: HTTP {}",
        resp.status
    );
    let m = resp.json();
    if let Some(list) = m["manifests"].as_array() {
        let entry = list
            .iter()
            .find(|d| d["platform"]["architecture"] == "amd64")
            .or(list.first())
            .expect("index has manifests");
        let digest = entry["digest"].as_str().unwrap();
        return request(registry, "GET", &format!("/v2/{repo}/manifests/{digest}")).json();
    }
    m
}

/// A blob of `image`'s repository.
pub fn blob(registry: &str, image: &str, digest: &str) -> Vec<u8> {
    let (repo, _) = split_ref(image, registry);
    let resp = request(registry, "GET", &format!("/v2/{repo}/blobs/{digest}"));
    assert_eq!(resp.status, 200, "blob {digest}: HTTP {}", resp.status);
    resp.body
}

/// The image config (labels, history, ...).
pub fn config(registry: &str, image: &str) -> serde_json::Value {
    let m = manifest(registry, image);
    let digest = m["config"]["digest"].as_str().expect("config digest");
    serde_json::from_slice(&blob(registry, image, digest)).expect("config JSON")
}
