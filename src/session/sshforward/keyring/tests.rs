//! The keyring against keys made by OpenSSH's own ssh-keygen, signatures
//! checked with the public key files it wrote, and by ssh-keygen itself
//! signing through the keyring as its agent.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;

use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA512, RsaPublicKeyComponents,
};
use signature::Verifier;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, PublicKey, Signature};

use super::*;

/// `ssh-keygen -t TYPE` into `dir`; returns the private key path.
fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen (OpenSSH client) is needed for these tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn public(path: &Path) -> PublicKey {
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    PublicKey::from_openssh(&text).unwrap()
}

fn sign_request(blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
    let mut req = vec![SIGN_REQUEST];
    put_string(&mut req, blob);
    put_string(&mut req, data);
    req.extend_from_slice(&flags.to_be_bytes());
    req
}

fn parse_signature(reply: &[u8]) -> Signature {
    let mut r = Reader(reply);
    assert_eq!(r.byte(), Some(SIGN_RESPONSE), "{reply:?}");
    let mut blob = Reader(r.string().unwrap());
    let algorithm = std::str::from_utf8(blob.string().unwrap()).unwrap();
    let sig = blob.string().unwrap();
    Signature::new(Algorithm::new(algorithm).unwrap(), sig.to_vec()).unwrap()
}

#[test]
fn lists_and_signs_with_every_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        keygen(dir.path(), "ed", &["-t", "ed25519", "-N", ""]),
        keygen(dir.path(), "ec", &["-t", "ecdsa", "-b", "256", "-N", ""]),
        keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048", "-N", ""]),
    ];
    let ring = Keyring::load("k", &keys).unwrap();

    let answer = ring.answer(&[REQUEST_IDENTITIES]);
    let mut r = Reader(&answer);
    assert_eq!(r.byte(), Some(IDENTITIES_ANSWER));
    assert_eq!(r.u32(), Some(3));
    for key in &keys {
        let blob = r.string().unwrap();
        assert_eq!(blob, public(key).to_bytes().unwrap().as_slice());
        let comment = r.string().unwrap();
        assert_eq!(comment, key.file_name().unwrap().as_encoded_bytes());
    }
    assert!(r.0.is_empty());

    let data = b"session id and userauth request";
    for (key, flags, algorithm) in [
        (&keys[0], 0, "ssh-ed25519"),
        (&keys[1], 0, "ecdsa-sha2-nistp256"),
        (&keys[2], RSA_SHA2_256, "rsa-sha2-256"),
        (&keys[2], RSA_SHA2_512, "rsa-sha2-512"),
    ] {
        let pubkey = public(key);
        let reply = ring.answer(&sign_request(&pubkey.to_bytes().unwrap(), data, flags));
        let sig = parse_signature(&reply);
        assert_eq!(sig.algorithm().as_str(), algorithm);
        verify(&pubkey, data, &sig).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert!(verify(&pubkey, b"other data", &sig).is_err());
    }
}

/// RSA with ring's verifier (ssh-key verifies RSA only with the `rsa`
/// crate, which rbuild no longer builds), the rest with ssh-key's.
fn verify(key: &PublicKey, data: &[u8], sig: &Signature) -> Result<(), String> {
    let KeyData::Rsa(rsa) = key.key_data() else {
        return Verifier::verify(key, data, sig).map_err(|e| e.to_string());
    };
    let params = match sig.algorithm().as_str() {
        "rsa-sha2-256" => &RSA_PKCS1_2048_8192_SHA256,
        "rsa-sha2-512" => &RSA_PKCS1_2048_8192_SHA512,
        other => return Err(format!("unexpected algorithm {other}")),
    };
    let public = RsaPublicKeyComponents {
        n: rsa.n.as_positive_bytes().unwrap(),
        e: rsa.e.as_positive_bytes().unwrap(),
    };
    public
        .verify(params, data, sig.as_bytes())
        .map_err(|_| "bad RSA signature".to_string())
}

/// Every RSA size ring signs with, each signature checked by ring against
/// the public key file ssh-keygen wrote; other sizes are refused at load
/// with what to use instead.
#[test]
fn rsa_keys_sign_with_ring_at_every_supported_size() {
    let dir = tempfile::tempdir().unwrap();
    for bits in ["2048", "3072", "4096"] {
        let path = keygen(dir.path(), bits, &["-t", "rsa", "-b", bits, "-N", ""]);
        let ring = Keyring::load("k", std::slice::from_ref(&path)).unwrap();
        let pubkey = public(&path);
        let blob = pubkey.to_bytes().unwrap();
        for flags in [RSA_SHA2_256, RSA_SHA2_512, RSA_SHA2_256 | RSA_SHA2_512] {
            let data = format!("{bits} {flags}");
            let sig = parse_signature(&ring.answer(&sign_request(&blob, data.as_bytes(), flags)));
            // Both flags: the stronger hash, as OpenSSH's agent picks.
            let want = if flags & RSA_SHA2_512 != 0 {
                "rsa-sha2-512"
            } else {
                "rsa-sha2-256"
            };
            assert_eq!(sig.algorithm().as_str(), want);
            verify(&pubkey, data.as_bytes(), &sig).unwrap_or_else(|e| panic!("{bits}: {e}"));
            assert!(verify(&pubkey, b"tampered", &sig).is_err());
        }
    }
    let small = keygen(dir.path(), "small", &["-t", "rsa", "-b", "1024", "-N", ""]);
    let text = Keyring::load("k", &[small]).unwrap_err().to_string();
    assert!(text.contains("1024-bit RSA key"), "{text}");
    assert!(text.contains("ssh-keygen -t rsa -b 4096"), "{text}");
}

/// OpenSSH as the client: `ssh-keygen -Y sign` with only the public key
/// file signs through `SSH_AUTH_SOCK`, here the keyring on a socket, and
/// `ssh-keygen -Y check-novalidate` checks the result with OpenSSL.
#[test]
fn openssh_signs_through_the_keyring_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048", "-N", ""]),
        keygen(dir.path(), "ed", &["-t", "ed25519", "-N", ""]),
    ];
    let ring = Keyring::load("k", &keys).unwrap();
    // Without the private halves ssh-keygen cannot fall back to the files.
    for key in &keys {
        std::fs::remove_file(key).unwrap();
    }
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut framer = Framer::default();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                framer.push(&buf[..n]);
                while let Ok(Some(msg)) = framer.next_message() {
                    if conn.write_all(&frame(&ring.answer(&msg))).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let message = dir.path().join("message");
    std::fs::write(&message, b"signed through rbuild's agent").unwrap();
    for key in &keys {
        let sign = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "file", "-f"])
            .arg(key.with_extension("pub"))
            .arg(&message)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        assert!(
            sign.status.success(),
            "{}: {}",
            key.display(),
            String::from_utf8_lossy(&sign.stderr)
        );
        let check = Command::new("ssh-keygen")
            .args(["-Y", "check-novalidate", "-n", "file", "-s"])
            .arg(message.with_extension("sig"))
            .stdin(std::fs::File::open(&message).unwrap())
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}: {}",
            key.display(),
            String::from_utf8_lossy(&check.stderr)
        );
        std::fs::remove_file(message.with_extension("sig")).unwrap();
    }
}

#[test]
fn refuses_what_a_read_only_agent_must_not_do() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048", "-N", ""]);
    let other = keygen(dir.path(), "other", &["-t", "ed25519", "-N", ""]);
    let ring = Keyring::load("k", std::slice::from_ref(&rsa)).unwrap();
    let blob = public(&rsa).to_bytes().unwrap();
    // SHA-1 ssh-rsa, a key it does not hold, add/remove/lock, garbage.
    assert_eq!(ring.answer(&sign_request(&blob, b"x", 0)), [FAILURE]);
    let foreign = public(&other).to_bytes().unwrap();
    assert_eq!(ring.answer(&sign_request(&foreign, b"x", 0)), [FAILURE]);
    for request in [17u8, 18, 19, 22, 23] {
        assert_eq!(ring.answer(&[request]), [FAILURE], "request {request}");
    }
    assert_eq!(ring.answer(&[]), [FAILURE]);
    let mut truncated = sign_request(&blob, b"x", RSA_SHA2_256);
    truncated.truncate(truncated.len() - 2);
    assert_eq!(ring.answer(&truncated), [FAILURE]);
}

#[test]
fn unusable_key_files_are_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let locked = keygen(
        dir.path(),
        "locked",
        &["-t", "ed25519", "-N", "secret phrase"],
    );
    let pem = keygen(
        dir.path(),
        "pem",
        &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
    );
    let ok = keygen(dir.path(), "ok", &["-t", "ed25519", "-N", ""]);
    for (path, expect) in [
        (locked.clone(), "passphrase-protected"),
        (pem, "ssh-keygen -p -f"),
        (ok.with_extension("pub"), "not the .pub file"),
        (dir.path().join("missing"), "No such file"),
    ] {
        let err = Keyring::load("deploy", &[ok.clone(), path.clone()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ssh deploy"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(expect), "{text}");
        assert!(!text.contains("secret phrase"), "{text}");
    }
}

#[test]
fn frames_split_and_joined_messages() {
    let mut framer = Framer::default();
    let wire = [frame(&[REQUEST_IDENTITIES]), frame(&[1, 2, 3])].concat();
    framer.push(&wire[..3]);
    assert_eq!(framer.next_message(), Ok(None));
    framer.push(&wire[3..]);
    assert_eq!(framer.next_message(), Ok(Some(vec![REQUEST_IDENTITIES])));
    assert_eq!(framer.next_message(), Ok(Some(vec![1, 2, 3])));
    assert_eq!(framer.next_message(), Ok(None));
    framer.push(&((MAX_MESSAGE + 1) as u32).to_be_bytes());
    assert_eq!(framer.next_message(), Err(MAX_MESSAGE + 1));
}

/// Fuzz target `ssh_agent`: bytes a RUN step writes to the agent socket, framed and
/// answered by a keyring holding an ed25519 and an ecdsa key, after a first byte that
/// picks the mode: 1 makes the rest the data and flags of a sign request for the real
/// ed25519 key.
#[test]
fn fuzz_ssh_agent() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        keygen(dir.path(), "ed", &["-t", "ed25519", "-N", ""]),
        keygen(dir.path(), "ec", &["-t", "ecdsa", "-b", "256", "-N", ""]),
    ];
    let ring = Keyring::load("k", &keys).unwrap();
    let blob = public(&keys[0]).to_bytes().unwrap();
    crate::fuzz::run("ssh_agent", |data| {
        if let Some((1, rest)) = data.split_first() {
            let (payload, flags) = rest.split_at(rest.len().saturating_sub(4));
            let mut request = vec![SIGN_REQUEST];
            put_string(&mut request, &blob);
            put_string(&mut request, payload);
            request.extend_from_slice(flags);
            let _ = ring.answer(&request);
            return;
        }
        let mut framer = Framer::default();
        for piece in data.get(1..).unwrap_or_default().chunks(5) {
            framer.push(piece);
            while let Ok(Some(message)) = framer.next_message() {
                let reply = ring.answer(&message);
                assert!(!reply.is_empty(), "every request gets an answer");
            }
        }
    });
}
