//! Writing results to stdout. A closed pipe (`sfvault list | head -1`) is not an error.

use std::io::Write;
use std::os::fd::AsFd;

use serde_json::Value;
use sfvault::{Error, Result};
use zeroize::Zeroizing;

/// Print `text` to stdout as is: straight to the file descriptor, not through std's stdout
/// buffer, which nobody zeroizes (`get --no-newline` would leave the secret there).
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let result = out
        .flush()
        .and_then(|()| write_all_fd(&out, text.as_bytes()));
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::failed_with("cannot write to stdout", e)),
    }
}

/// Write all of `bytes` to `fd` with direct `write(2)` calls (no buffer keeps a copy), retrying
/// on EINTR.
pub fn write_all_fd(fd: impl AsFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(&fd, bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Write one line to stderr. Failure is ignored: a message is not worth a panic (what
/// `eprintln!` does on a closed or full stderr), and the exit code still tells the outcome.
pub fn stderr_line(message: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(message.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}

/// Print a JSON value, pretty, with a final newline, then wipe it (see
/// [`sfvault::handoff::json`]: secrets revealed by `show --reveal --json`, tokens).
pub fn print_json(value: Value) -> Result<()> {
    print(&sfvault::handoff::json::into_text(value)?)
}

/// Left-aligned columns, two spaces apart, with a header row. Built in one zeroizing buffer of
/// exactly its size: cells may hold revealed secrets (`show --reveal`, `history --reveal`),
/// which the callers keep in zeroizing cells too.
pub fn table<C: AsRef<str>>(header: &[&str], rows: &[Vec<C>]) -> Zeroizing<String> {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell.as_ref()));
        }
    }
    let lines: Vec<Vec<&str>> = std::iter::once(header.to_vec())
        .chain(rows.iter().map(|r| r.iter().map(AsRef::as_ref).collect()))
        .collect();
    // Bytes: each cell, its padding (chars, one byte each) and separators, and a newline.
    let size: usize = lines
        .iter()
        .map(|cells| {
            cells.iter().map(|c| c.len()).sum::<usize>()
                + widths.iter().sum::<usize>()
                + 2 * widths.len()
                + 1
        })
        .sum();
    let mut out = Zeroizing::new(String::with_capacity(size));
    for cells in &lines {
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                for _ in width(cell)..w + 2 {
                    out.push(' ');
                }
            }
        }
        let kept = out.trim_end_matches(' ').len();
        out.truncate(kept);
        out.push('\n');
    }
    debug_assert!(out.len() <= size, "the table outgrew its buffer");
    out
}

/// `shred -u PATH` advice for a plaintext copy, only when `path` is a regular file (never
/// `/dev/stdin`, a pipe or a device, which shred would damage or which are no copy at all).
pub fn shred_advice(path: &std::path::Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let special = path.starts_with("/dev") || path.starts_with("/proc");
    (meta.is_file() && !special).then(|| {
        format!(
            "shred -u {}",
            sfvault::quote::shell_word(&path.display().to_string())
        )
    })
}
