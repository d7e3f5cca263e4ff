//! RSA signatures with ring, from the fields of an OpenSSH key.
//!
//! OpenSSH stores n, e, d, iqmp, p and q. ring signs with the Chinese
//! Remainder Theorem form, which also needs d mod (p-1) and d mod (q-1);
//! those two reductions are the only big-number arithmetic here, so a few
//! lines of long division stand in for a big-integer crate. They run once per
//! key, at load, on the user's own machine: no peer can time them, so they
//! need not be constant time.

use ring::rand::SystemRandom;
use ring::rsa::{KeyPairComponents, PublicKeyComponents};
use ring::signature::{RSA_PKCS1_SHA256, RSA_PKCS1_SHA512, RsaEncoding, RsaKeyPair};
use ssh_key::private::RsaKeypair;
use ssh_key::{Algorithm, HashAlg, Mpint, Signature};

/// Modulus sizes ring signs with: it wants primes of a multiple of 512 bits.
const SIZES: [usize; 3] = [2048, 3072, 4096];

/// Why an RSA key cannot be used.
#[derive(Debug, thiserror::Error)]
pub(super) enum RsaKeyError {
    /// Outside what ring signs with.
    #[error(
        "it is a {0}-bit RSA key; only 2048-, 3072- and 4096-bit RSA keys are supported \
         (make one with `ssh-keygen -t rsa -b 4096`, or use ed25519)"
    )]
    Size(usize),
    /// The public exponent is below 65537, which ring refuses.
    #[error("its RSA public exponent is below 65537, which is not supported")]
    Exponent,
    /// The numbers do not form a key.
    #[error("its RSA parameters are invalid")]
    Invalid,
}

/// One RSA private key, ready to sign.
pub(super) struct RsaSigner {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl RsaSigner {
    /// The signer for an OpenSSH RSA key, checked by signing once: ring
    /// checks every signature against n and e, so a key whose parts do not
    /// belong together fails here rather than on the daemon's first request.
    pub(super) fn new(key: &RsaKeypair) -> Result<RsaSigner, RsaKeyError> {
        let n = int(&key.public.n)?;
        let e = int(&key.public.e)?;
        let bits = bit_len(n);
        if !SIZES.contains(&bits) {
            return Err(RsaKeyError::Size(bits));
        }
        if bit_len(e) < 17 {
            return Err(RsaKeyError::Exponent);
        }
        let d = int(&key.private.d)?;
        let p = int(&key.private.p)?;
        let q = int(&key.private.q)?;
        let d_p = Wiped(rem(d, &minus_one(p)));
        let d_q = Wiped(rem(d, &minus_one(q)));
        let components = KeyPairComponents {
            public_key: PublicKeyComponents { n, e },
            d,
            p,
            q,
            dP: d_p.0.as_slice(),
            dQ: d_q.0.as_slice(),
            qInv: int(&key.private.iqmp)?,
        };
        let pair = RsaKeyPair::from_components(&components).map_err(|e| {
            tracing::debug!(reason = %e, "ring refused the RSA key");
            RsaKeyError::Invalid
        })?;
        let signer = RsaSigner {
            pair,
            rng: SystemRandom::new(),
        };
        signer
            .sign(b"rbuild key check", HashAlg::Sha256)
            .ok_or(RsaKeyError::Invalid)?;
        Ok(signer)
    }

    /// A PKCS#1 v1.5 signature over `data` with `hash`, as the agent
    /// protocol carries it (`rsa-sha2-256` or `rsa-sha2-512`).
    pub(super) fn sign(&self, data: &[u8], hash: HashAlg) -> Option<Signature> {
        let padding: &'static dyn RsaEncoding = match hash {
            HashAlg::Sha256 => &RSA_PKCS1_SHA256,
            HashAlg::Sha512 => &RSA_PKCS1_SHA512,
            _ => return None,
        };
        let mut out = vec![0u8; self.pair.public().modulus_len()];
        self.pair.sign(padding, &self.rng, data, &mut out).ok()?;
        Signature::new(Algorithm::Rsa { hash: Some(hash) }, out).ok()
    }
}

/// A positive integer's big-endian bytes, without leading zeros.
fn int(m: &Mpint) -> Result<&[u8], RsaKeyError> {
    m.as_positive_bytes().ok_or(RsaKeyError::Invalid)
}

/// Zeroes a secret buffer when dropped; best effort, as ring keeps its own
/// copy of the key anyway.
struct Wiped(Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// Bits in a big-endian magnitude without leading zero bytes.
fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// `n - 1` of a positive big-endian number.
fn minus_one(n: &[u8]) -> Vec<u8> {
    let mut out = n.to_vec();
    for byte in out.iter_mut().rev() {
        let (value, borrow) = byte.overflowing_sub(1);
        *byte = value;
        if !borrow {
            break;
        }
    }
    out
}

/// `a mod m` for big-endian magnitudes, without leading zero bytes; a zero
/// modulus gives an empty result, which ring then refuses.
fn rem(a: &[u8], m: &[u8]) -> Vec<u8> {
    if m.iter().all(|&b| b == 0) {
        return Vec::new();
    }
    // The remainder stays below m, so m's width plus one byte holds it
    // after each shift; m is widened to match.
    let mut modulus = vec![0u8];
    modulus.extend_from_slice(m);
    let mut r = vec![0u8; modulus.len()];
    for byte in a {
        for bit in (0..8).rev() {
            shift_in(&mut r, (byte >> bit) & 1);
            if r.as_slice() >= modulus.as_slice() {
                subtract(&mut r, &modulus);
            }
        }
    }
    let start = r.iter().position(|&b| b != 0).unwrap_or(r.len());
    r.drain(..start);
    modulus.fill(0);
    r
}

/// `r = r * 2 + bit`.
fn shift_in(r: &mut [u8], bit: u8) {
    let mut carry = bit;
    for byte in r.iter_mut().rev() {
        let next = *byte >> 7;
        *byte = (*byte << 1) | carry;
        carry = next;
    }
}

/// `r -= m` for equal-width numbers with `r >= m`.
fn subtract(r: &mut [u8], m: &[u8]) {
    let mut borrow = 0u8;
    for (x, &y) in r.iter_mut().zip(m).rev() {
        let (v, b1) = x.overflowing_sub(y);
        let (v, b2) = v.overflowing_sub(borrow);
        *x = v;
        borrow = u8::from(b1 || b2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: u128) -> Vec<u8> {
        let bytes = n.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        bytes[start..].to_vec()
    }

    #[test]
    fn reduces_like_machine_integers() {
        let cases: [(u128, u128); 7] = [
            (0, 7),
            (6, 7),
            (7, 7),
            (u128::MAX, 1),
            (u128::MAX, 0xffff_ffff_ffff_fffe),
            (0x1234_5678_9abc_def0_1122_3344, 0x1_0000_0001),
            (0xff00, 0x100),
        ];
        for (a, m) in cases {
            assert_eq!(rem(&num(a), &num(m)), num(a % m), "{a} mod {m}");
        }
        assert!(rem(&num(5), &[0]).is_empty());
        assert_eq!(minus_one(&num(0x1_0000)), [0, 0xff, 0xff]);
        assert_eq!(minus_one(&num(0x1_0001)), num(0x1_0000));
        assert_eq!(bit_len(&num(65537)), 17);
    }
}
