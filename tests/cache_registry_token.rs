//! `rbuild cache` through the distribution token flow: the test's own
//! `docker-registry` serves HTTPS and accepts only tokens signed by a key
//! whose certificate chains to the test CA (`auth.token`); a small token
//! server here (the one stand-in: a real one needs its own user database)
//! checks the Docker config's login, issues a JWT for exactly the scopes
//! asked, and records them. `ls` must ask `pull`; `prune --yes` must ask
//! `pull,push,delete`, and its delete must go through.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rcgen::{ExtendedKeyUsagePurpose, KeyPair, SigningKey};
use serde_json::{Value, json};
use support::own_registry::{OwnRegistry, TestCa, config, docker_config, fill, free_port, leaf};
use support::{assert_success, rbuild, stack, stderr, stdout, unique};

const USER: &str = "token-user";
const SERVICE: &str = "rbuild-test-registry";
const ISSUER: &str = "rbuild-test-token-issuer";

/// What the token server was asked.
#[derive(Clone, Debug)]
struct Asked {
    scopes: Vec<String>,
    service: Option<String>,
    /// The decoded `user:password` of the Basic login, if one was sent.
    login: Option<String>,
}

/// Issues tokens on 127.0.0.1 over plain HTTP (the client allows a
/// loopback realm), one request per connection.
struct TokenServer {
    addr: String,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl TokenServer {
    fn start(signer: KeyPair, cert_der: Vec<u8>, password: String) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let record = asked.clone();
        // Ends with the test binary; it holds nothing but the listener.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &signer, &cert_der, &password, &record);
            }
        });
        TokenServer { addr, asked }
    }

    fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Everything asked since the last call.
    fn take(&self) -> Vec<Asked> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

fn serve(
    stream: TcpStream,
    signer: &KeyPair,
    cert_der: &[u8],
    password: &str,
    record: &Mutex<Vec<Asked>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut login = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            login = value
                .trim()
                .strip_prefix("Basic ")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok());
        }
    }
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            (k.to_string(), v.into_owned())
        })
        .collect();
    let asked = Asked {
        scopes: params
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect(),
        service: params
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone()),
        login: login.clone(),
    };
    record.lock().unwrap().push(asked.clone());
    let mut stream = stream;
    if login.as_deref() != Some(&format!("{USER}:{password}")) {
        let body = r#"{"details":"wrong or missing login"}"#;
        return write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    let token = jwt(signer, cert_der, &asked.scopes);
    let body = json!({"token": token, "expires_in": 300}).to_string();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    // Let the client close first, so its read sees the whole answer.
    let _ = stream.read(&mut [0u8; 1]);
    Ok(())
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 JWT granting every scope asked, its certificate in `x5c` (how
/// distribution 2.8 finds the key: `registry/auth/token/token.go`).
fn jwt(signer: &KeyPair, cert_der: &[u8], scopes: &[String]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<Value> = scopes
        .iter()
        .filter_map(|s| {
            let (kind, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let header = json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(cert_der)],
    });
    let claims = json!({
        "iss": ISSUER,
        "sub": USER,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": unique("jti"),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let der = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(&raw_signature(&der)))
}

/// JWS wants `r || s`, 32 bytes each; ring signs ECDSA as DER.
fn raw_signature(der: &[u8]) -> Vec<u8> {
    // SEQUENCE { INTEGER r, INTEGER s }, short lengths for P-256.
    assert_eq!(der[0], 0x30, "DER sequence");
    let mut rest = &der[2..];
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02, "DER integer");
        let len = rest[1] as usize;
        let value = &rest[2..2 + len];
        let value = &value[value.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0u8, 32 - value.len()));
        out.extend_from_slice(value);
        rest = &rest[2 + len..];
    }
    out
}

fn cache(docker_config: &Path, args: &[&str]) -> Output {
    rbuild()
        .arg("cache")
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("rbuild runs")
}

fn json_out(out: &Output) -> Value {
    assert_success(out);
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn cache_asks_tokens_for_pull_to_list_and_pull_push_delete_to_prune() {
    let stack = stack();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let repo = format!("rbuild-test/{}", unique("token"));
    {
        let addr = format!("127.0.0.1:{}", free_port());
        let conf = config(&addr, &storage, true, None, "");
        let _plain = OwnRegistry::start(dir.path(), "fill", &addr, &conf);
        fill(&stack, &format!("{addr}/{repo}"), &["old", "new"], None);
    }

    let ca = TestCa::new();
    let (signing_cert, signing_key) =
        leaf(&ca.issuer, "token-signer", ExtendedKeyUsagePurpose::Any);
    let password = unique("pw-Kx8");
    let tokens = TokenServer::start(signing_key, signing_cert.der().to_vec(), password.clone());
    let auth = format!(
        "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    \
         rootcertbundle: {}\n",
        tokens.realm(),
        ca.ca.display()
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let conf = config(&addr, &storage, true, Some(&ca), &auth);
    let registry = OwnRegistry::start(dir.path(), "token", &addr, &conf);
    let url = format!("https://{addr}/{repo}");
    let ca_file = ca.ca.to_str().unwrap();
    let login = docker_config(&addr, USER, &password);

    let out = cache(
        login.path(),
        &[
            "ls",
            &url,
            "--ca-file",
            ca_file,
            "--format",
            "json",
            "--debug",
        ],
    );
    let rows = json_out(&out);
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    // A JWT starts with base64 of `{"`: no token, no password in the debug log.
    assert!(stderr(&out).contains("token request"), "debug log on");
    for text in [stdout(&out), stderr(&out)] {
        assert!(
            !text.contains("eyJ") && !text.contains(&password),
            "a secret leaked"
        );
    }
    let asked = tokens.take();
    assert!(!asked.is_empty(), "ls asked for no token");
    for a in &asked {
        assert_eq!(a.scopes, [format!("repository:{repo}:pull")], "{asked:?}");
        assert_eq!(a.service.as_deref(), Some(SERVICE));
        assert_eq!(
            a.login,
            Some(format!("{USER}:{password}")),
            "the Docker config's login"
        );
    }

    let done = json_out(&cache(
        login.path(),
        &[
            "prune",
            &url,
            "--keep",
            "1",
            "--yes",
            "--ca-file",
            ca_file,
            "--format",
            "json",
        ],
    ));
    let old = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tag"] == "old")
        .map(|r| r["digest"].clone())
        .unwrap();
    assert_eq!(done["after"]["outcome"]["deleted"], json!([old]), "{done}");
    let asked: Vec<Vec<String>> = tokens.take().into_iter().map(|a| a.scopes).collect();
    let wide = vec![format!("repository:{repo}:pull,push,delete")];
    assert!(asked.contains(&wide), "prune asked {asked:?}");
    let deletes: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.last().map(|r| r.status), Some(202), "{deletes:?}");

    let rows = json_out(&cache(
        login.path(),
        &["ls", &url, "--ca-file", ca_file, "--format", "json"],
    ));
    let tags: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["tag"].as_str())
        .collect();
    assert_eq!(tags, ["new"]);

    // Without the login the token server refuses, and the user is told.
    let nobody = tempfile::tempdir().unwrap();
    let out = cache(nobody.path(), &["ls", &url, "--ca-file", ca_file]);
    assert!(!out.status.success());
    let err = stderr(&out);
    eprint!("as expected: {err}");
    assert!(err.contains(&format!("docker login {addr}")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
