//! Quoting of outside text (names, URLs, values typed by people) for error messages. Shared by
//! every module that refuses input; depends on nothing else in the crate.

/// Quote user input for an error message, escaping control characters and cutting it short, so a
/// hostile name cannot mangle the terminal or flood the screen.
pub fn quoted(text: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    format!("'{out}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes_and_truncates() {
        assert_eq!(quoted("a\nb"), "'a\\nb'");
        assert!(quoted(&"x".repeat(1000)).chars().count() < 90);
    }
}
