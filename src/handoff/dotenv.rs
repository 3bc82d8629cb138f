//! A strict subset of dotenv files: `KEY=VALUE` lines, `export ` allowed, `#` comments, values
//! optionally in single or double quotes (no interpolation, no multi-line values).

use crate::error::{Error, Result};
use crate::vault::name::quoted;

/// Largest env file accepted.
pub const MAX_ENV_FILE_LEN: usize = 1024 * 1024;

/// Parse `text` into (key, value) pairs in file order.
pub fn parse(text: &str) -> Result<Vec<(String, String)>> {
    if text.len() > MAX_ENV_FILE_LEN {
        return Err(Error::Usage("the env file is larger than 1 MiB".into()));
    }
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let bad =
            |why: &str| Error::Usage(format!("env file line {}: {why}: {}", n + 1, quoted(raw)));
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        let key = key.trim();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(bad("invalid variable name"));
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value
                .strip_prefix(q)
                .and_then(|v| v.strip_suffix(q))
                .ok_or_else(|| bad("unterminated quote"))?,
            _ => value.split(" #").next().unwrap_or("").trim_end(),
        };
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let v = parse("# c\nA=1\nexport B = \"two words\"\nC='sfvault://a/b/c'\nD=x # note\n\n")
            .unwrap();
        assert_eq!(
            v,
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "sfvault://a/b/c"),
                ("D", "x")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(parse("NOEQUALS").is_err());
        assert!(parse("1A=x").is_err());
        assert!(parse("A=\"open").is_err());
    }
}
