//! The library's modules form layers (docs/ARCHITECTURE.md): a module uses only modules of
//! lower layers, so arrows point one way and there is no cycle. This test reads every source
//! file (test modules left out) and fails on a `crate::X` use that goes up or sideways.

use std::collections::BTreeSet;
use std::path::Path;

/// Lowest first. The binary (`src/main.rs`, `src/cli/`) sits above them all.
const LAYERS: &[&[&str]] = &[
    &["quote"],
    &["error", "secret", "timefmt"],
    &["fs_safety", "pem", "url"],
    &["unlock", "vault"],
    &["agent", "oauth"],
    &["salesforce"],
    &["handoff", "rotation"],
    &["access"],
    &["audit"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| {
            panic!("module {module} is in no layer: add it to LAYERS and to docs/ARCHITECTURE.md")
        })
}

/// The code of a file without its trailing `#[cfg(test)] mod tests { … }`.
fn without_tests(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == "#[cfg(test)]" {
            let rest = &text[offset + line.len()..];
            if rest.trim_start().starts_with("mod tests") {
                return &text[..offset];
            }
        }
        offset += line.len();
    }
    text
}

/// The top-level modules a piece of code names as `crate::X` (or in `crate::{X, Y::…}`).
fn uses(code: &str) -> BTreeSet<String> {
    let name = |s: &str| {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect::<String>()
    };
    let mut found = BTreeSet::new();
    for (i, m) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + m.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a group: each item's first segment, nested braces skipped.
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    _ if item_start && !c.is_whitespace() => {
                        found.insert(name(&group[j..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(name(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_owned();
        if matches!(module.as_str(), "lib" | "main" | "cli") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let layer = layer_of(&module);
        for used in uses(without_tests(&text)) {
            if used != module && layer_of(&used) >= layer {
                wrong.push(format!("{} uses crate::{used}", rel.display()));
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} files read");
    assert!(
        wrong.is_empty(),
        "arrows that go up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_must() {
    assert_eq!(
        uses("use crate::vault::model;\nlet x = crate::url::check(); mycrate::nope"),
        BTreeSet::from(["url".to_owned(), "vault".to_owned()])
    );
    assert_eq!(
        uses("use crate::{error::{Error, Result}, secret::SecretString};"),
        BTreeSet::from(["error".to_owned(), "secret".to_owned()])
    );
    let text = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n";
    assert_eq!(uses(without_tests(text)), BTreeSet::from(["a".to_owned()]));
}
