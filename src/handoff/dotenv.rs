//! A strict subset of dotenv files: `KEY=VALUE` lines, `export ` allowed, `#` comments, values
//! optionally in single or double quotes (no interpolation, no multi-line values).

use crate::error::{Error, Result};
use crate::secret::SecretString;

/// Largest env file accepted.
pub const MAX_ENV_FILE_LEN: usize = 1024 * 1024;

/// Parse `text` into (key, value) pairs in file order. Values are kept as secrets (env files
/// hold them), and errors name the line number and, once known, the key: never the line.
pub fn parse(text: &str) -> Result<Vec<(String, SecretString)>> {
    Ok(parse_numbered(text)?
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .collect())
}

/// [`parse`], each pair with its line number (from 1).
pub fn parse_numbered(text: &str) -> Result<Vec<(usize, String, SecretString)>> {
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
        let at = |why: &str| Error::Usage(format!("env file line {}: {why}", n + 1));
        let (key, value) = line.split_once('=').ok_or_else(|| {
            at("expected KEY=VALUE (the line is not shown: it may hold a secret)")
        })?;
        let key = key.trim();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(at(
                "invalid variable name before '=' (letters, digits and _ only)",
            ));
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value
                .strip_prefix(q)
                .and_then(|v| v.strip_suffix(q))
                .ok_or_else(|| at(&format!("unterminated quote in the value of {key}")))?,
            _ => value.split(" #").next().unwrap_or("").trim_end(),
        };
        out.push((n + 1, key.to_owned(), SecretString::new(value.to_owned())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn parses_common_forms() {
        let v = parse("# c\nA=1\nexport B = \"two words\"\nC='sfvault://a/b/c'\nD=x # note\n\n")
            .unwrap();
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(
            v,
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "sfvault://a/b/c"),
                ("D", "x")
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_key_never_the_text() {
        for (text, line, says) in [
            ("A=1\nno equals CANARY1", "line 2", "expected KEY=VALUE"),
            ("1A=CANARY2", "line 1", "invalid variable name"),
            (
                "\nSECRET=\"CANARY3",
                "line 2",
                "unterminated quote in the value of SECRET",
            ),
            ("X='CANARY4\"", "line 1", "unterminated quote"),
        ] {
            let err = parse(text).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.kind(), ErrorKind::Usage);
            assert!(msg.contains(line) && msg.contains(says), "{msg}");
            assert!(!msg.contains("CANARY"), "a value leaked: {msg}");
        }
    }
}
