//! Which remote integrations an export includes, pure: `--filter GLOB` on the name and
//! `--type` on the type.

use crate::crd::IntegrationTypeSpec;
use crate::losant::Integration;

/// What to include.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// A glob over the whole name: `*` matches any run of characters, `?` any one character,
    /// `\` makes the next character literal. Case-sensitive. `None`: every name.
    pub name_glob: Option<String>,
    /// The types to include; empty: every type.
    pub types: Vec<IntegrationTypeSpec>,
}

impl Selection {
    /// Whether `remote` is included. An integration of a type this tool does not know is
    /// included only when no type is asked for (and then reported as not exportable).
    pub fn includes(&self, remote: &Integration) -> bool {
        let type_ok = self.types.is_empty()
            || self
                .types
                .iter()
                .any(|t| t.as_str() == remote.integration_type.as_str());
        type_ok
            && self
                .name_glob
                .as_deref()
                .is_none_or(|glob| glob_matches(glob, &remote.name))
    }
}

/// One element of a glob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Any,
    One,
    Char(char),
}

fn tokens(glob: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::Any,
            '?' => Token::One,
            // A trailing backslash stands for itself.
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            other => Token::Char(other),
        });
    }
    out
}

/// Whether `glob` matches all of `text` (linear-time backtracking over the last `*`).
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let pattern = tokens(glob);
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Any) => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((star, from)) => {
                    p = star + 1;
                    t = from + 1;
                    last_star = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|token| *token == Token::Any)
}
