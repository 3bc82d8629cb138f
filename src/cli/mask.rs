//! `run --mask`: a command's output passed on with every secret value replaced by
//! [`CONCEALED`], also when a value arrives split over several reads.
//!
//! Each stream is read into one zeroizing buffer allocated once (never grown, so no stray
//! copy is left in freed memory). Bytes are written on as soon as they cannot be the start of
//! a secret: only a tail that is a proper prefix of some secret (at most the longest secret
//! less one byte) waits for the next read, so a prompt the command prints is not held back
//! unless it ends like the start of a secret.

use std::os::fd::AsFd;

use sfvault::secret::SecretString;
use zeroize::Zeroizing;

/// What a secret value is replaced by.
pub const CONCEALED: &[u8] = b"<concealed by sfvault>";

/// Bytes asked for per read.
const CHUNK: usize = 64 * 1024;

/// Lines of a multi-line secret (a PEM key) shorter than this are not masked on their own.
const MIN_LINE: usize = 8;

/// The values to conceal, longest first, indexed by their first byte; and which pairs of
/// bytes start one, so that most positions are passed over after two table lookups.
pub struct Secrets {
    patterns: Vec<Zeroizing<Vec<u8>>>,
    by_first: Vec<Vec<usize>>,
    /// A bit per (first byte, second byte) pair that starts a secret (every second byte for a
    /// one-byte secret).
    pairs: Vec<u64>,
    max_len: usize,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets([{} redacted])", self.patterns.len())
    }
}

impl Secrets {
    /// The values to conceal: each non-empty value, and each line (white space trimmed, at
    /// least 8 bytes) of a multi-line one, since programs print keys line by line.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a SecretString>) -> Secrets {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut add = |bytes: &[u8]| {
            if !bytes.is_empty() && !patterns.iter().any(|p| p.as_slice() == bytes) {
                patterns.push(Zeroizing::new(bytes.to_vec()));
            }
        };
        for value in values {
            let text = value.expose();
            add(text.as_bytes());
            if text.contains('\n') {
                for line in text.lines().map(str::trim).filter(|l| l.len() >= MIN_LINE) {
                    add(line.as_bytes());
                }
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut by_first = vec![Vec::new(); 256];
        let mut pairs = vec![0u64; 65536 / 64];
        for (i, p) in patterns.iter().enumerate() {
            by_first[usize::from(p[0])].push(i);
            let seconds = match p.get(1) {
                Some(&b) => usize::from(b)..usize::from(b) + 1,
                None => 0..256,
            };
            for second in seconds {
                let pair = usize::from(p[0]) << 8 | second;
                pairs[pair / 64] |= 1 << (pair % 64);
            }
        }
        let max_len = patterns.first().map_or(0, |p| p.len());
        Secrets {
            patterns,
            by_first,
            pairs,
            max_len,
        }
    }

    /// Nothing to conceal.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The length of the longest secret `hay` starts with.
    fn match_at(&self, hay: &[u8]) -> Option<usize> {
        self.by_first[usize::from(hay[0])]
            .iter()
            .map(|&i| &self.patterns[i])
            .find(|p| hay.starts_with(p))
            .map(|p| p.len())
    }

    /// Whether `hay` (all that is left of the buffer) is a proper prefix of a secret: more
    /// input may complete it.
    fn proper_prefix(&self, hay: &[u8]) -> bool {
        self.by_first[usize::from(hay[0])]
            .iter()
            .map(|&i| &self.patterns[i])
            .any(|p| p.len() > hay.len() && p.starts_with(hay))
    }

    /// Write `hay` to `out` with secrets concealed, up to the first position that more input
    /// could still turn into a secret (all of it at `eof`); how many bytes were consumed.
    fn conceal(
        &self,
        hay: &[u8],
        eof: bool,
        out: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<usize> {
        let n = hay.len();
        let (mut i, mut written) = (0, 0);
        while i < n {
            // No secret starts with these two bytes (or this last one): neither a match nor a
            // prefix here. One lookup, rarely true, so the branch is well predicted.
            let possible = match hay.get(i + 1) {
                Some(&second) => {
                    let pair = usize::from(hay[i]) << 8 | usize::from(second);
                    self.pairs[pair / 64] & (1 << (pair % 64)) != 0
                }
                None => !self.by_first[usize::from(hay[i])].is_empty(),
            };
            if !possible {
                i += 1;
                continue;
            }
            if !eof && n - i < self.max_len && self.proper_prefix(&hay[i..]) {
                break;
            }
            match self.match_at(&hay[i..]) {
                Some(len) => {
                    out(&hay[written..i])?;
                    out(CONCEALED)?;
                    i += len;
                    written = i;
                }
                None => i += 1,
            }
        }
        out(&hay[written..i])?;
        Ok(i)
    }

    /// Copy `from` to `to` until `from` ends, secrets concealed. Stops early (dropping the
    /// rest, so the writer gets EPIPE as it would writing to `to` itself) when `to` is closed
    /// or fails.
    pub fn pump(&self, from: impl AsFd, to: impl AsFd) {
        let mut buf = Zeroizing::new(vec![0u8; CHUNK + self.max_len]);
        let mut len = 0;
        let mut out = |bytes: &[u8]| super::output::write_all_fd(&to, bytes);
        loop {
            let n = match rustix::io::read(&from, &mut buf[len..len + CHUNK]) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => 0,
            };
            len += n;
            let eof = n == 0;
            match self.conceal(&buf[..len], eof, &mut out) {
                Ok(used) => {
                    buf.copy_within(used..len, 0);
                    len -= used;
                }
                Err(_) => return,
            }
            if eof {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> Secrets {
        let owned: Vec<SecretString> = values
            .iter()
            .map(|v| SecretString::new((*v).to_owned()))
            .collect();
        Secrets::new(&owned)
    }

    /// `input` fed in pieces of `step` bytes, as reads would deliver it.
    fn masked(s: &Secrets, input: &[u8], step: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut out = |b: &[u8]| {
            got.extend_from_slice(b);
            Ok(())
        };
        let mut pending = Vec::new();
        for piece in input.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            let used = s.conceal(&pending, false, &mut out).unwrap();
            pending.drain(..used);
        }
        let used = s.conceal(&pending, true, &mut out).unwrap();
        assert_eq!(used, pending.len());
        got
    }

    #[test]
    fn every_occurrence_is_concealed_at_every_split() {
        let s = secrets(&["s3cret-value", "s3cret-value-longer", "tok"]);
        let input = b"a s3cret-value b s3cret-value-longer c tok s3cret-valu s3cret-values tok";
        let want = "a <concealed by sfvault> b <concealed by sfvault> c <concealed by sfvault> \
                    s3cret-valu <concealed by sfvault>s <concealed by sfvault>";
        for step in 1..=input.len() {
            assert_eq!(
                String::from_utf8(masked(&s, input, step)).unwrap(),
                want,
                "step {step}"
            );
        }
    }

    #[test]
    fn only_a_possible_prefix_waits_and_lines_of_a_key_are_concealed() {
        let s = secrets(&["abcdef"]);
        let mut got = Vec::new();
        let used = s
            .conceal(b"Password? ab", false, &mut |b: &[u8]| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!((used, got.as_slice()), (10, &b"Password? "[..]));
        let key = secrets(&["-----BEGIN KEY-----\nAAAABBBBCCCC\nxy\n-----END KEY-----\n"]);
        assert_eq!(
            masked(&key, b"line AAAABBBBCCCC xy", 3),
            b"line <concealed by sfvault> xy"
        );
        assert!(secrets(&[""]).is_empty());
        assert_eq!(masked(&secrets(&[]), b"plain", 2), b"plain");
    }
}
