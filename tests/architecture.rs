//! The layering, checked on the source text: `src/losant` (the REST client) and `src/sync` (pure
//! reconcile logic) stay free of Kubernetes; `src/sync` also of the async runtime and HTTP. So
//! the logic is testable with plain tables and the client reusable outside a cluster. The test
//! kit (`src/testkit`) may use anything, but only the tests and the benchmark may use it: it
//! is never part of the operator.
//!
//! The scan reads code only: comments and string literals are skipped, so a doc comment or a
//! message may name a crate.

use std::path::{Path, PathBuf};

/// Crates reached through Kubernetes, the async runtime or HTTP.
const KUBERNETES: &[&str] = &["kube", "kube_runtime", "k8s_openapi"];
const RUNTIME_AND_HTTP: &[&str] = &["tokio", "reqwest"];

/// The only files under `src/` that may name the test kit (a path prefix: a file or directory).
const TESTKIT_USERS: &[&str] = &["src/testkit", "src/bin/bench"];
/// The test kit's macros, which name it only in their expansion.
const TESTKIT_MACROS: &[&str] = &["require_cluster", "require_helm", "require_nodes"];

/// A layer: its directory, the external crates it must not name, and the crate modules it must
/// not reach (dependencies point losant → sync → controller, never back).
struct Layer {
    dir: &'static str,
    crates: Vec<&'static str>,
    modules: &'static [&'static str],
}

fn layers() -> Vec<Layer> {
    vec![
        Layer {
            // The REST client needs an HTTP client and timers: tokio and reqwest are its own.
            dir: "src/losant",
            crates: KUBERNETES.to_vec(),
            modules: &["controller", "crd", "sync", "ops", "emulator"],
        },
        Layer {
            dir: "src/sync",
            crates: [KUBERNETES, RUNTIME_AND_HTTP].concat(),
            modules: &["controller", "ops", "emulator"],
        },
    ]
}

#[test]
fn losant_and_sync_do_not_reach_kubernetes_or_upper_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for layer in layers() {
        let files = rust_files(&root.join(layer.dir));
        assert!(!files.is_empty(), "no Rust files under {}", layer.dir);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let relative = file.strip_prefix(root).unwrap().display().to_string();
            for path in paths(&code_only(&text)) {
                if let Some(why) = forbidden(&layer, &path) {
                    found.push(format!("{relative}:{}: {} ({why})", path.line, path.text));
                }
            }
        }
    }
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn only_the_tests_and_the_benchmark_use_the_testkit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for file in rust_files(&root.join("src")) {
        let relative = file.strip_prefix(root).unwrap().display().to_string();
        if TESTKIT_USERS.iter().any(|user| relative.starts_with(user)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for path in paths(&code_only(&text)) {
            if uses_testkit(&path) {
                found.push(format!("{relative}:{}: {}", path.line, path.text));
            }
        }
    }
    assert!(
        found.is_empty(),
        "only tests/ and the benchmark may use the test kit:\n{}",
        found.join("\n")
    );
}

/// Whether `path` reaches the test kit (declaring the module, `mod testkit`, does not).
fn uses_testkit(path: &CodePath) -> bool {
    let segments: Vec<&str> = path.text.trim_start_matches("::").split("::").collect();
    let names_module = segments.contains(&"testkit") && !path.declared;
    let last = segments.last().copied().unwrap_or_default();
    names_module || TESTKIT_MACROS.contains(&last)
}

#[test]
fn the_testkit_scan_sees_uses_and_skips_the_declaration() {
    let code = code_only(
        "#[cfg(feature = \"testkit\")]\npub mod testkit;\n\
         use losant_operator::testkit::TestNamespace;\nlet x = crate::testkit::kubectl(&[]);\n\
         crate::require_cluster!();\n// testkit::wait_until\n",
    );
    let seen: Vec<(usize, String)> = paths(&code)
        .iter()
        .filter(|p| uses_testkit(p))
        .map(|p| (p.line, p.text.clone()))
        .collect();
    let expected = [
        (3, "losant_operator::testkit::TestNamespace"),
        (4, "crate::testkit::kubectl"),
        (5, "crate::require_cluster"),
    ];
    assert_eq!(seen, expected.map(|(l, p)| (l, p.to_owned())));
}

/// Why `path` breaks `layer`'s rule, if it does.
fn forbidden(layer: &Layer, path: &CodePath) -> Option<String> {
    let segments: Vec<&str> = path.text.trim_start_matches("::").split("::").collect();
    let first = segments[0];
    // A lone `kube` may be a field or variable (`ctx.kube`): the crate is named with a path or
    // in a `use`.
    let names_crate = segments.len() > 1 || path.imported || first != "kube";
    if layer.crates.contains(&first) && names_crate {
        return Some(format!("{} must not use the {first} crate", layer.dir));
    }
    if first == "crate" && segments.len() > 1 && layer.modules.contains(&segments[1]) {
        return Some(format!(
            "{} must not reach crate::{}",
            layer.dir, segments[1]
        ));
    }
    None
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The text with comments and the contents of string and character literals blanked out
/// (newlines kept, so line numbers hold).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let skipped = match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => line_comment(&chars, i),
            '/' if chars.get(i + 1) == Some(&'*') => block_comment(&chars, i),
            '"' => string(&chars, i),
            'r' if raw_string_start(&chars, i).is_some() => raw_string(&chars, i),
            '\'' => char_literal(&chars, i),
            _ => 0,
        };
        if skipped == 0 {
            out.push(chars[i]);
            i += 1;
        } else {
            // Blank what was skipped, keeping line breaks.
            out.extend(
                chars[i..i + skipped]
                    .iter()
                    .map(|&c| if c == '\n' { '\n' } else { ' ' }),
            );
            i += skipped;
        }
    }
    out
}

fn line_comment(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .position(|&c| c == '\n')
        .unwrap_or(chars.len() - start)
}

/// A block comment, nested ones included.
fn block_comment(chars: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
            ('*', Some('/')) => {
                (depth, i) = (depth - 1, i + 2);
                if depth == 0 {
                    return i - start;
                }
            }
            _ => i += 1,
        }
    }
    chars.len() - start
}

/// A string from its opening quote at `start`: its length, quotes included.
fn string(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1 - start,
            _ => i += 1,
        }
    }
    chars.len() - start
}

/// The number of `#`s of a raw string starting at `start` (`r"`, `r#"`, …), if one does.
fn raw_string_start(chars: &[char], start: usize) -> Option<usize> {
    // `r` must begin a token, not end an identifier such as `for`.
    if start > 0 && (chars[start - 1].is_alphanumeric() || chars[start - 1] == '_') {
        return None;
    }
    let hashes = chars[start + 1..].iter().take_while(|&&c| c == '#').count();
    (chars.get(start + 1 + hashes) == Some(&'"')).then_some(hashes)
}

fn raw_string(chars: &[char], start: usize) -> usize {
    let hashes = raw_string_start(chars, start).unwrap_or_default();
    let body = start + hashes + 2;
    let closing: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    (body..chars.len())
        .find(|&i| chars[i..].starts_with(&closing))
        .map_or(chars.len() - start, |i| i + closing.len() - start)
}

/// A character literal's length; 0 for a lifetime or label.
fn char_literal(chars: &[char], start: usize) -> usize {
    match (chars.get(start + 1), chars.get(start + 2)) {
        (Some('\\'), _) => chars[start + 2..]
            .iter()
            .position(|&c| c == '\'')
            .map_or(0, |end| end + 3),
        (Some(_), Some('\'')) => 3,
        _ => 0,
    }
}

/// A path as written in code: identifiers joined by `::`.
struct CodePath {
    line: usize,
    text: String,
    /// It follows `use` (or `extern crate`): a crate name even when alone.
    imported: bool,
    /// It follows `mod`: a module declared, not used.
    declared: bool,
}

/// Every path in `code`.
fn paths(code: &str) -> Vec<CodePath> {
    let mut found: Vec<CodePath> = Vec::new();
    for (number, line) in code.lines().enumerate() {
        // `::` joins a path, spaces around it too (`kube:: Api`); a lone `:` ends one.
        let joined = line
            .split("::")
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\u{1}");
        let mut tokens = Vec::new();
        let mut current = String::new();
        for c in joined.chars().chain(std::iter::once(' ')) {
            if c.is_alphanumeric() || c == '_' || c == '\u{1}' {
                current.push(c);
            } else if !current.is_empty() {
                tokens.push(std::mem::take(&mut current).replace('\u{1}', "::"));
            }
        }
        for (index, text) in tokens.iter().enumerate() {
            let before = index.checked_sub(1).map(|i| tokens[i].as_str());
            found.push(CodePath {
                line: number + 1,
                text: text.clone(),
                imported: matches!(before, Some("use" | "crate")),
                declared: before == Some("mod"),
            });
        }
    }
    found
}

#[test]
fn the_scan_sees_code_and_skips_comments_and_literals() {
    let code = code_only(
        "// use kube::Api;\n/* tokio /* nested */ reqwest */ let a = \"k8s_openapi::x\";\n\
         let b = r#\"tokio::spawn\"#; let c = '\"'; fn f<'a>(x: &'a str) {}\n\
         use kube::Api; let y: tokio ::time::Instant; use reqwest;\nlet z = ctx.kube;\n",
    );
    let sync = &layers()[1];
    let seen: Vec<(usize, String)> = paths(&code)
        .iter()
        .filter(|p| forbidden(sync, p).is_some())
        .map(|p| (p.line, p.text.clone()))
        .collect();
    let expected = [
        (4, "kube::Api"),
        (4, "tokio::time::Instant"),
        (4, "reqwest"),
    ];
    assert_eq!(seen, expected.map(|(l, p)| (l, p.to_owned())));
    let reaching = paths("use crate::controller::Context; use crate::crd::Condition;");
    let refused: Vec<&str> = reaching
        .iter()
        .filter(|p| forbidden(sync, p).is_some())
        .map(|p| p.text.as_str())
        .collect();
    assert_eq!(refused, ["crate::controller::Context"]);
}

/// No file under `src/` is longer than this many lines: a longer one holds more than one concern.
const MAX_FILE_LINES: usize = 500;
/// No function under `src/` (tests included) is longer than this many lines, from `fn` to its
/// closing brace.
const MAX_FUNCTION_LINES: usize = 80;

#[test]
fn files_and_functions_stay_small() {
    let mut too_long = Vec::new();
    for file in rust_files(Path::new("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            too_long.push(format!("{}: {lines} lines", file.display()));
        }
        for (line, name, length) in functions(&code_only(&text)) {
            if length > MAX_FUNCTION_LINES {
                too_long.push(format!(
                    "{}:{line} fn {name}: {length} lines",
                    file.display()
                ));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "over {MAX_FILE_LINES} lines per file or {MAX_FUNCTION_LINES} per function:\n{}",
        too_long.join("\n")
    );
}

/// Every function with a body in `code` (comments and literals blanked): the line it starts
/// on, its name, and how many lines it spans.
fn functions(code: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = function_name(line) else {
            continue;
        };
        let mut depth = 0usize;
        let mut opened = false;
        for (offset, text) in lines[start..].iter().enumerate() {
            for c in text.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth = depth.saturating_sub(1),
                    // A declaration without a body (a trait method).
                    ';' if !opened => break,
                    _ => {}
                }
            }
            if !opened && text.contains(';') {
                break;
            }
            if opened && depth == 0 {
                found.push((start + 1, name.clone(), offset + 1));
                break;
            }
        }
    }
    found
}

/// The name of the function whose signature starts on `line`, if one does.
fn function_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "fn")?;
    let qualifiers = ["pub", "const", "async", "unsafe", "extern"];
    let before_ok = words[..at]
        .iter()
        .all(|w| qualifiers.contains(w) || w.starts_with("pub("));
    let name: String = words
        .get(at + 1)?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (before_ok && !name.is_empty()).then_some(name)
}

#[test]
fn the_size_scan_measures_bodies_and_skips_declarations() {
    let code = "trait T {\n    fn declared(&self);\n}\n\npub(crate) async fn two() {\n    {\n    }\n}\nfn one() {}\n";
    assert_eq!(
        functions(code),
        [(5, "two".to_owned(), 4), (9, "one".to_owned(), 1)]
    );
    assert_eq!(function_name("    let f = |x| x;"), None);
    assert_eq!(function_name("impl Fn() for X {"), None);
}
