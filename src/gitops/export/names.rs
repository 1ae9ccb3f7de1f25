//! Kubernetes names for exported integrations, pure: deterministic, DNS-1123, collision-free.
//!
//! An integration's name is lowercased and every run of other characters than `a-z0-9` becomes
//! one `-`. A name that comes out empty, is cut to length, or is shared with another
//! integration's gets a suffix from its id: 8 hex digits of the id's SHA-256, or the whole id
//! if even that collides. Ids are unique, so the last step always ends the collisions.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Longest name base: with `-` and a 24-character id it stays a 63-character label, and the
/// Secret's `-secrets` suffix still fits within 253.
const BASE_MAX: usize = 38;

/// How much of the id a name carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Suffix {
    None,
    Short,
    FullId,
}

/// The name base for an integration name: lowercase `a-z0-9` words joined by `-`, at most
/// [`BASE_MAX`] characters, and whether anything was cut or nothing was left.
fn base(name: &str) -> (String, bool) {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut lossy = false;
    if out.len() > BASE_MAX {
        out.truncate(BASE_MAX);
        lossy = true;
    }
    let trimmed = out.trim_end_matches('-').to_owned();
    let empty = trimmed.is_empty();
    (trimmed, lossy || empty)
}

fn with_suffix(base: &str, id: &str, suffix: Suffix) -> String {
    let tail = match suffix {
        Suffix::None => return base.to_owned(),
        Suffix::Short => {
            let digest = Sha256::digest(id.as_bytes());
            digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
        }
        Suffix::FullId => id
            .chars()
            .flat_map(char::to_lowercase)
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>(),
    };
    match base {
        "" => format!("integration-{tail}"),
        base => format!("{base}-{tail}"),
    }
}

/// A Kubernetes name for each `(id, name)`, in the same order.
pub fn object_names(integrations: &[(&str, &str)]) -> Vec<String> {
    let bases: Vec<(String, bool)> = integrations.iter().map(|(_, name)| base(name)).collect();
    let mut suffixes: Vec<Suffix> = bases
        .iter()
        .map(|(_, lossy)| if *lossy { Suffix::Short } else { Suffix::None })
        .collect();
    loop {
        let names: Vec<String> = integrations
            .iter()
            .zip(&bases)
            .zip(&suffixes)
            .map(|(((id, _), (base, _)), suffix)| with_suffix(base, id, *suffix))
            .collect();
        let mut holders: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, name) in names.iter().enumerate() {
            holders.entry(name.as_str()).or_default().push(index);
        }
        let shared: Vec<usize> = holders
            .values()
            .filter(|holders| holders.len() > 1)
            .flatten()
            .copied()
            .collect();
        if shared.is_empty() {
            return names;
        }
        // Everyone sharing a name moves up one step, so the result does not depend on order.
        // Names with a whole id are unique, so this ends after at most two rounds.
        let mut moved = false;
        for index in shared {
            let next = match suffixes[index] {
                Suffix::None => Suffix::Short,
                Suffix::Short | Suffix::FullId => Suffix::FullId,
            };
            moved |= next != suffixes[index];
            suffixes[index] = next;
        }
        if !moved {
            // Only reachable with repeated ids, which Losant never returns: keep them apart
            // by position rather than loop.
            return names
                .into_iter()
                .enumerate()
                .map(|(index, name)| format!("{name}-{index}"))
                .collect();
        }
    }
}

/// The Secret holding an exported integration's secret values.
pub fn secret_name(object_name: &str) -> String {
    format!("{object_name}-secrets")
}

/// Whether `name` is a DNS-1123 label (what every generated name is).
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}
