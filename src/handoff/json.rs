//! JSON that may hold secrets (`export --format json`, `show --reveal --json`, `token --json`):
//! written into one zeroizing buffer of exactly its size, and wiped once written.

use std::io::Write;

use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Pretty JSON and a final newline, in a zeroizing buffer measured first, so no reallocation
/// leaves a copy behind.
pub fn to_text(value: &Value) -> Result<Zeroizing<String>> {
    let encode = |e| Error::failed_with("cannot encode JSON", e);
    let mut counter = Counter(0);
    serde_json::to_writer_pretty(&mut counter, value).map_err(encode)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(counter.0 + 1));
    serde_json::to_writer_pretty(&mut *buf, value).map_err(encode)?;
    buf.push(b'\n');
    // serde_json writes UTF-8; the bytes move into the String without a copy.
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

/// [`to_text`] of `value`, then `value` wiped.
pub fn into_text(mut value: Value) -> Result<Zeroizing<String>> {
    let text = to_text(&value);
    wipe(&mut value);
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_fits_its_buffer_and_the_tree_is_wiped() {
        let mut value = serde_json::json!({"secret": "hunter2", "list": ["a", {"k": "v"}], "n": 1});
        let text = to_text(&value).unwrap();
        assert_eq!(
            text.len(),
            text.capacity(),
            "no spare room: no reallocation"
        );
        assert!(text.ends_with("}\n") && text.contains("\"hunter2\""));
        wipe(&mut value);
        assert_eq!(value["secret"], "");
        assert_eq!(value["list"][1]["k"], "");
        assert_eq!(value["n"], 1);
    }
}
