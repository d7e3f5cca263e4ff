//! A stream given as the build context (buildx's `PATH` of `-`): a tar
//! archive that becomes the context, or else a Dockerfile built with an
//! empty context. Which one is decided from its first bytes exactly as
//! buildx (build/utils.go `isArchive`) and the Dockerfile frontend
//! (dockerui/context.go, which unpacks the archive on the daemon) decide it,
//! so the two sides never disagree about what was sent.

use std::io::{self, Cursor, Read};

use bytes::Bytes;

use crate::session::upload::ContextArchive;

/// How much of the stream decides (buildx peeks two tar blocks).
const PEEK: usize = 1024;
const BLOCK: usize = 512;

/// Compressed archives, by their magic numbers: bzip2, gzip, xz.
const MAGIC: &[&[u8]] = &[
    &[0x42, 0x5A, 0x68],
    &[0x1F, 0x8B, 0x08],
    &[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00],
];

/// What a stream given as the context turned out to be.
#[derive(Debug)]
pub enum ContextInput {
    /// A tar archive (plain or compressed): the build context, sent through
    /// the session when the daemon asks for it.
    Archive(ContextArchive),
    /// Anything else is a Dockerfile, built with an empty context.
    Dockerfile(Bytes),
}

impl ContextInput {
    /// Reads the start of `reader` to tell an archive from a Dockerfile. An
    /// archive is not read further until the build sends it; a Dockerfile
    /// is read whole.
    ///
    /// # Errors
    ///
    /// The I/O error from reading `reader`.
    pub fn detect(mut reader: impl Read + Send + 'static) -> io::Result<ContextInput> {
        let mut head = Vec::with_capacity(PEEK);
        (&mut reader).take(PEEK as u64).read_to_end(&mut head)?;
        if is_archive(&head) {
            let whole = Cursor::new(head).chain(reader);
            return Ok(ContextInput::Archive(ContextArchive::new(whole)));
        }
        reader.read_to_end(&mut head)?;
        Ok(ContextInput::Dockerfile(Bytes::from(head)))
    }
}

/// Whether `head`, the first bytes of a stream, start an archive: a
/// compressed one by its magic number, a plain tar when Go's tar reader
/// would read a first entry from these bytes alone.
pub(crate) fn is_archive(head: &[u8]) -> bool {
    MAGIC.iter().any(|m| head.starts_with(m)) || first_entry(head)
}

/// Go's `tar.Reader.Next` on `head`: a header block with a valid checksum
/// and size; extended headers (PAX, GNU long names) are followed to the
/// entry they describe, which must start within `head` too.
fn first_entry(head: &[u8]) -> bool {
    let mut at = 0;
    // Each extended header takes at least two blocks, so this ends.
    while let Some(block) = head.get(at..at + BLOCK) {
        if block.iter().all(|&b| b == 0) || !checksum_ok(block) {
            return false;
        }
        let Some(size) = octal(&block[124..136]) else {
            return false;
        };
        match block[156] {
            b'x' | b'g' | b'L' | b'K' => {
                let Some(blocks) = usize::try_from(size.div_ceil(BLOCK as u64)).ok() else {
                    return false;
                };
                at += BLOCK + blocks * BLOCK;
            }
            _ => return true,
        }
    }
    false
}

/// The header checksum: the sum of the block's bytes with the checksum
/// field counted as spaces; Go accepts the unsigned or the signed sum.
fn checksum_ok(block: &[u8]) -> bool {
    let Some(want) = octal(&block[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    i64::try_from(want).is_ok_and(|w| w == unsigned || w == signed)
}

/// A numeric header field: octal digits between optional spaces and NULs
/// (an empty field is zero), or GNU's base-256 form (high bit set).
fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // Base-256: big-endian after the marker bit; huge values are not
        // a context's first entry anyway.
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c| c == ' ' || c == '\0');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header block for `name` of `size` bytes and type `kind`.
    fn header(name: &str, size: usize, kind: u8) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..107].copy_from_slice(b"0000644");
        b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        b[136..147].copy_from_slice(b"00000000000");
        b[156] = kind;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        let sum: u32 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(x)
                }
            })
            .sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        b[155] = b' ';
        b
    }

    #[test]
    fn tar_and_compressed_archives_are_archives() {
        let mut tar = header("Dockerfile", 12, b'0');
        tar.extend_from_slice(&[0u8; BLOCK]);
        assert!(is_archive(&tar));
        // One block is enough for Go's reader to return the entry.
        assert!(is_archive(&tar[..BLOCK]));
        assert!(is_archive(&[0x1F, 0x8B, 0x08, 0, 0]));
        assert!(is_archive(&[0x42, 0x5A, 0x68, 0x39]));
        assert!(is_archive(&[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 1]));
    }

    #[test]
    fn dockerfiles_and_broken_headers_are_not() {
        assert!(!is_archive(b"FROM busybox\nRUN true\n"));
        assert!(!is_archive(b""));
        assert!(!is_archive(&[0u8; PEEK]));
        let mut bad = header("Dockerfile", 12, b'0');
        bad[0] = b'X';
        assert!(!is_archive(&bad), "checksum no longer matches");
        let mut text = b"FROM busybox\n".repeat(80);
        text.truncate(PEEK);
        assert!(!is_archive(&text));
    }

    #[test]
    fn an_extended_header_needs_its_entry_within_the_peek() {
        // PAX header with 30 bytes of records, then the entry: 3 blocks.
        let mut tar = header("PaxHeaders/x", 30, b'x');
        tar.extend_from_slice(&[b'a'; BLOCK]);
        tar.extend_from_slice(&header("x", 1, b'0'));
        assert!(is_archive(&tar));
        // Go's reader sees only two blocks: the entry is beyond them.
        assert!(!is_archive(&tar[..PEEK]));
    }

    #[test]
    fn detect_keeps_the_archive_whole() {
        let mut tar = header("Dockerfile", 5, b'0');
        tar.extend_from_slice(b"hello");
        tar.resize(BLOCK * 4, 0);
        let ContextInput::Archive(archive) =
            ContextInput::detect(Cursor::new(tar.clone())).expect("read")
        else {
            panic!("not detected as an archive");
        };
        assert_eq!(format!("{archive:?}"), "ContextArchive");
        let mut got = Vec::new();
        archive
            .take()
            .expect("not taken yet")
            .read_to_end(&mut got)
            .expect("read");
        assert_eq!(got, tar);

        let text = b"FROM scratch\n".to_vec();
        match ContextInput::detect(Cursor::new(text.clone())).expect("read") {
            ContextInput::Dockerfile(d) => assert_eq!(&d[..], &text[..]),
            other => panic!("{other:?}"),
        }
    }
}
