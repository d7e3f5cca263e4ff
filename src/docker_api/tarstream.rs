//! A push-driven tar reader (ustar, PAX `path`/`size`, GNU long names) that
//! keeps small entries' contents and skips the rest, so an image export can
//! be inspected while it arrives and abandoned as soon as the answer is known.
//! Follows Go's `archive/tar`, which writes the engine's exports.

const BLOCK: usize = 512;

/// PAX and GNU long-name records are metadata; anything larger is garbage.
const MAX_META: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
#[error("malformed tar stream: {0}")]
pub(super) struct TarError(String);

/// A complete entry: `contents` is kept for regular files up to the limit.
#[derive(Debug)]
pub(super) struct Entry {
    pub name: String,
    pub contents: Option<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    File,
    Pax,
    LongName,
    Other,
}

enum State {
    Header,
    Data {
        name: String,
        kind: Kind,
        left: u64,
        pad: u64,
        kept: Option<Vec<u8>>,
    },
    End,
}

pub(super) struct TarStream {
    keep_up_to: u64,
    state: State,
    header: Vec<u8>,
    next_name: Option<String>,
    next_size: Option<u64>,
}

impl TarStream {
    pub fn new(keep_up_to: u64) -> TarStream {
        TarStream {
            keep_up_to,
            state: State::Header,
            header: Vec::with_capacity(BLOCK),
            next_name: None,
            next_size: None,
        }
    }

    /// The end-of-archive block was read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::End)
    }

    /// Feeds the next bytes; entries completed by them go to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Entry>) -> Result<(), TarError> {
        while !data.is_empty() {
            match &mut self.state {
                State::End => return Ok(()),
                State::Header => {
                    let take = (BLOCK - self.header.len()).min(data.len());
                    self.header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.header.len() == BLOCK {
                        let block = std::mem::replace(&mut self.header, Vec::with_capacity(BLOCK));
                        self.start_entry(&block, out)?;
                    }
                }
                State::Data {
                    left, pad, kept, ..
                } => {
                    let (counter, keep) = if *left > 0 {
                        (left, true)
                    } else {
                        (pad, false)
                    };
                    let take = usize::try_from(*counter).map_or(data.len(), |c| c.min(data.len()));
                    if keep && let Some(kept) = kept {
                        kept.extend_from_slice(&data[..take]);
                    }
                    *counter -= take as u64;
                    data = &data[take..];
                    self.finish_if_complete(out)?;
                }
            }
        }
        Ok(())
    }

    fn start_entry(&mut self, block: &[u8], out: &mut Vec<Entry>) -> Result<(), TarError> {
        if block.iter().all(|&b| b == 0) {
            self.state = State::End;
            return Ok(());
        }
        let stored = parse_octal(&block[148..156])?;
        let sum: u64 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if stored != sum {
            return Err(TarError(format!("header checksum {stored} != {sum}")));
        }
        let header_size = parse_size(&block[124..136])?;
        let size = self.next_size.take().unwrap_or(header_size);
        let name = match self.next_name.take() {
            Some(name) => name,
            None => ustar_name(block),
        };
        let kind = match block[156] {
            b'0' | 0 | b'7' => Kind::File,
            b'x' => Kind::Pax,
            b'L' => Kind::LongName,
            _ => Kind::Other,
        };
        let kept = match kind {
            Kind::Pax | Kind::LongName if size > MAX_META => {
                return Err(TarError(format!("a {size}-byte metadata record")));
            }
            Kind::Pax | Kind::LongName => Some(Vec::new()),
            Kind::File if size <= self.keep_up_to => Some(Vec::new()),
            Kind::File | Kind::Other => None,
        };
        self.state = State::Data {
            name,
            kind,
            left: size,
            pad: (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64,
            kept,
        };
        self.finish_if_complete(out)
    }

    fn finish_if_complete(&mut self, out: &mut Vec<Entry>) -> Result<(), TarError> {
        if !matches!(
            self.state,
            State::Data {
                left: 0,
                pad: 0,
                ..
            }
        ) {
            return Ok(());
        }
        let State::Data {
            name, kind, kept, ..
        } = std::mem::replace(&mut self.state, State::Header)
        else {
            return Ok(());
        };
        match kind {
            Kind::File => out.push(Entry {
                name,
                contents: kept,
            }),
            Kind::Pax => self.apply_pax(&kept.unwrap_or_default())?,
            Kind::LongName => {
                let raw = kept.unwrap_or_default();
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                self.next_name = Some(String::from_utf8_lossy(&raw[..end]).into_owned());
            }
            Kind::Other => {}
        }
        Ok(())
    }

    /// PAX records are `"<len> <key>=<value>\n"`; only `path` and `size`
    /// matter for finding blobs.
    fn apply_pax(&mut self, mut records: &[u8]) -> Result<(), TarError> {
        let bad = || TarError("bad PAX record".to_string());
        while !records.is_empty() {
            let space = records.iter().position(|&b| b == b' ').ok_or_else(bad)?;
            let len: usize = std::str::from_utf8(&records[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&l| l > space + 1 && l <= records.len())
                .ok_or_else(bad)?;
            let record = &records[space + 1..len];
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            if let Some(eq) = record.iter().position(|&b| b == b'=') {
                let value = String::from_utf8_lossy(&record[eq + 1..]);
                match &record[..eq] {
                    b"path" => self.next_name = Some(value.into_owned()),
                    b"size" => self.next_size = Some(value.parse().map_err(|_| bad())?),
                    _ => {}
                }
            }
            records = &records[len..];
        }
        Ok(())
    }
}

fn ustar_name(block: &[u8]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let raw = &block[range];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).into_owned()
    };
    let name = field(0..100);
    let prefix = if &block[257..262] == b"ustar" {
        field(345..500)
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// Octal, or base-256 when the high bit of the first byte is set (GNU).
fn parse_size(field: &[u8]) -> Result<u64, TarError> {
    if field[0] & 0x80 == 0 {
        return parse_octal(field);
    }
    let mut value: u64 = u64::from(field[0] & 0x7f);
    for &b in &field[1..] {
        value = value
            .checked_mul(256)
            .and_then(|v| v.checked_add(u64::from(b)))
            .ok_or_else(|| TarError("base-256 size overflows".to_string()))?;
    }
    Ok(value)
}

fn parse_octal(field: &[u8]) -> Result<u64, TarError> {
    let text = String::from_utf8_lossy(field);
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(digits, 8).map_err(|_| TarError(format!("bad octal field {digits:?}")))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A ustar header block for `name` (at most 100 bytes) of `size` bytes.
    pub fn header(name: &str, size: u64, kind: u8) -> Vec<u8> {
        let mut block = vec![0u8; BLOCK];
        block[..name.len()].copy_from_slice(name.as_bytes());
        block[100..107].copy_from_slice(b"0000644");
        block[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        block[156] = kind;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        block
    }

    /// A tar of regular files, as Go's writer lays it out.
    pub fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, contents) in files {
            out.extend(header(name, contents.len() as u64, b'0'));
            out.extend_from_slice(contents);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    fn read_in_pieces(tar: &[u8], piece: usize, keep: u64) -> Result<Vec<Entry>, TarError> {
        let mut stream = TarStream::new(keep);
        let mut out = Vec::new();
        for chunk in tar.chunks(piece) {
            stream.push(chunk, &mut out)?;
        }
        assert!(stream.is_done());
        Ok(out)
    }

    #[test]
    fn entries_come_out_whatever_the_chunking() {
        let big = vec![7u8; 3000];
        let tar = archive(&[("blobs/sha256/aa", b"{}"), ("big", &big), ("empty", b"")]);
        for piece in [1, 7, 511, 512, 513, 4096, tar.len()] {
            let entries = read_in_pieces(&tar, piece, 100).unwrap();
            let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["blobs/sha256/aa", "big", "empty"], "piece {piece}");
            assert_eq!(entries[0].contents.as_deref(), Some(&b"{}"[..]));
            assert_eq!(entries[1].contents, None, "over the keep limit");
            assert_eq!(entries[2].contents.as_deref(), Some(&b""[..]));
        }
    }

    #[test]
    fn pax_and_gnu_long_names_name_the_next_entry() {
        let long = format!("blobs/sha256/{}", "b".repeat(120));
        let record = format!("path={long}\n");
        let pax = format!("{} {record}", record.len() + 4); // "NNN " + record
        let mut tar = header("PaxHeaders/x", pax.len() as u64, b'x');
        tar.extend_from_slice(pax.as_bytes());
        tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
        tar.extend(archive(&[("short", b"1")]).split_at(2 * BLOCK).0);
        let gnu = format!("{long}-gnu\0");
        tar.extend(header("././@LongLink", gnu.len() as u64, b'L'));
        tar.extend_from_slice(gnu.as_bytes());
        tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
        tar.extend(archive(&[("short2", b"2")]));
        let entries = read_in_pieces(&tar, 100, 100).unwrap();
        assert_eq!(entries[0].name, long);
        assert_eq!(entries[1].name, format!("{long}-gnu"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut stream = TarStream::new(10);
        let mut out = Vec::new();
        let err = stream.push(&[b'x'; 1024], &mut out).unwrap_err();
        assert!(err.to_string().contains("malformed tar"), "{err}");
        let mut bad = header("x", 1, b'x');
        bad[124..135].copy_from_slice(b"77777777777");
        let sum: u32 = bad[..148]
            .iter()
            .chain(&[32u8; 8])
            .chain(&bad[156..])
            .map(|&b| u32::from(b))
            .sum();
        bad[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(
            TarStream::new(10).push(&bad, &mut out).is_err(),
            "oversized PAX"
        );
    }

    #[test]
    fn sizes_parse_in_octal_and_base_256() {
        assert_eq!(parse_size(b"00000001750\0").unwrap(), 1000);
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[10] = 1;
        b256[11] = 2;
        assert_eq!(parse_size(&b256).unwrap(), 258);
        assert!(parse_size(b"9zz\0\0\0\0\0\0\0\0\0").is_err());
    }

    /// Fuzz target `tar`: the stream fed in pieces whose sizes the input's first byte
    /// picks; whatever arrives, kept contents stay within the limit.
    #[test]
    fn fuzz_tar() {
        crate::fuzz::run("tar", |data| {
            let (piece, tar) = match data.split_first() {
                Some((&p, rest)) => (usize::from(p).max(1) * 7, rest),
                None => (1, data),
            };
            let mut stream = TarStream::new(256);
            let mut out = Vec::new();
            for chunk in tar.chunks(piece) {
                if stream.push(chunk, &mut out).is_err() {
                    break;
                }
            }
            for entry in &out {
                assert!(entry.contents.as_ref().is_none_or(|c| c.len() <= 256));
            }
        });
    }
}
