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

/// One word for a POSIX shell, single-quoted (each `'` inside becomes `'\''`), for commands
/// sfvault suggests that carry text from elsewhere (an app's name from Salesforce): pasted, it
/// is that text and nothing more. Control characters are dropped.
pub fn shell_word(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes_and_truncates() {
        assert_eq!(quoted("a\nb"), "'a\\nb'");
        assert!(quoted(&"x".repeat(1000)).chars().count() < 90);
    }

    #[test]
    fn shell_words_stay_one_word() {
        assert_eq!(shell_word("Data Loader"), "'Data Loader'");
        assert_eq!(shell_word("Bob's"), r"'Bob'\''s'");
        assert_eq!(
            shell_word("x'$(touch /tmp/p)'\n"),
            r"'x'\''$(touch /tmp/p)'\'''"
        );
    }
}
