//! Writing results to stdout. A closed pipe (`sfvault list | head -1`) is not an error.

use std::io::Write;
use std::os::fd::AsFd;

use serde_json::Value;
use sfvault::{Error, Result};
use zeroize::{Zeroize, Zeroizing};

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

fn write_all_fd(fd: impl AsFd, mut bytes: &[u8]) -> std::io::Result<()> {
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

/// Print a JSON value, pretty, with a final newline, then wipe it: the text is built in a
/// zeroizing buffer of exactly its size, and every string in `value` (secrets revealed by
/// `show --reveal --json`, tokens) is zeroized once printed.
pub fn print_json(mut value: Value) -> Result<()> {
    let result = json_text(&value).and_then(|text| print(&text));
    wipe(&mut value);
    result
}

/// Pretty JSON and a final newline, in a zeroizing buffer measured first, so no reallocation
/// leaves a copy behind.
pub fn json_text(value: &Value) -> Result<Zeroizing<String>> {
    let encode = |e| Error::failed_with("cannot encode JSON", e);
    let mut counter = Counter(0);
    serde_json::to_writer_pretty(&mut counter, value).map_err(encode)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(counter.0 + 1));
    serde_json::to_writer_pretty(&mut *buf, value).map_err(encode)?;
    buf.push(b'\n');
    let text = String::from_utf8(std::mem::take(&mut *buf))
        .map_err(|e| Error::failed_with("cannot encode JSON", e.utf8_error()))?;
    Ok(Zeroizing::new(text))
}

/// Zeroize every string in `value` (object keys are names, not values).
pub fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Counts what is written to it.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Left-aligned columns, two spaces apart, with a header row.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
