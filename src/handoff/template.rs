//! Templates for `inject`: `{{ sfvault://ORG/APP/FIELD }}` placeholders (white space inside the
//! braces optional); everything else is copied as is. A `{{` that does not hold a reference is
//! left alone, so other template languages pass through.

use crate::error::{Error, Result};
use crate::handoff::reference::Reference;

/// Largest template accepted.
pub const MAX_TEMPLATE_LEN: usize = 1024 * 1024;

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// A placeholder to resolve.
    Ref(Reference),
}

/// Split a template into text and references. Malformed references inside `{{ }}` that start
/// with `sfvault://` are errors (a typo must not leak through as literal text).
pub fn parse(template: &str) -> Result<Vec<Piece<'_>>> {
    if template.len() > MAX_TEMPLATE_LEN {
        return Err(Error::Usage("the template is larger than 1 MiB".into()));
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let inner = &after[..close];
        if Reference::looks_like(inner) {
            if open > 0 {
                pieces.push(Piece::Text(&rest[..open]));
            }
            pieces.push(Piece::Ref(Reference::parse(inner)?));
        } else {
            pieces.push(Piece::Text(&rest[..open + 2 + close + 2]));
        }
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_passthrough() {
        let t = "key={{ sfvault://a/b/consumer_key }}\nother={{ .Values.x }} {{sfvault://a/b/username}}";
        let p = parse(t).unwrap();
        let refs: Vec<String> = p
            .iter()
            .filter_map(|x| match x {
                Piece::Ref(r) => Some(r.to_string()),
                Piece::Text(_) => None,
            })
            .collect();
        assert_eq!(
            refs,
            ["sfvault://a/b/consumer_key", "sfvault://a/b/username"]
        );
        let text: String = p
            .iter()
            .map(|x| match x {
                Piece::Text(t) => (*t).to_owned(),
                Piece::Ref(_) => "#".into(),
            })
            .collect();
        assert_eq!(text, "key=#\nother={{ .Values.x }} #");
        assert!(parse("{{ sfvault://a/b/Bad }}").is_err());
        assert_eq!(
            parse("{{ unclosed").unwrap(),
            vec![Piece::Text("{{ unclosed")]
        );
    }
}
