//! URL encoding for paths and queries, and the name filter used to look integrations up.
//!
//! Every path segment and query value is percent-encoded except RFC 3986's unreserved characters.
//! In particular `+` goes out as `%2B`: servers decode queries as form data, where a bare `+` is a
//! space, and a name lookup that silently searched for the wrong name would end in a duplicate.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query component.
pub fn component(value: &str) -> String {
    utf8_percent_encode(value, STRICT).to_string()
}

/// Builds `k=v&k=v` with every key and value encoded.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(key, value)| format!("{}={}", component(key), component(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether `id` has the shape of a Losant id (24 hex characters).
pub fn is_losant_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Characters replaced by `*` in a name filter: Losant documents only `*` as special in its glob,
/// but these are special in other glob, regex or LIKE dialects. A filter must match a superset of
/// the exact name whatever the server makes of them, because a lookup that misses leads to a
/// second POST; exact (byte-equal) matching happens on the client afterwards.
const FILTER_WILDCARDED: &[char] = &[
    '*', '?', '[', ']', '{', '}', '(', ')', '^', '$', '|', '\\', '.', '+', '%', '_',
];

/// The `filter` that finds every integration named `name` (and possibly more).
pub fn name_filter(name: &str) -> String {
    let mut filter = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if FILTER_WILDCARDED.contains(&c) {
            '*'
        } else {
            c
        };
        if !(c == '*' && filter.ends_with('*')) {
            filter.push(c);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_form(query: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn special_characters_survive_form_decoding() {
        let name = "a+b&c#d%e?f[g]h *é=漢字/..";
        let encoded = query([("filter", name)]);
        assert!(!encoded.contains('+'), "{encoded}");
        assert_eq!(
            decode_form(&encoded),
            [("filter".to_string(), name.to_string())]
        );
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(component("../x/y"), "..%2Fx%2Fy");
        assert!(is_losant_id("575ec8687ae143cd83dc4a97"));
        assert!(!is_losant_id("../../../../../../etc/pass"));
        assert!(!is_losant_id("575ec8687ae143cd83dc4a9g"));
    }

    #[test]
    fn name_filter_wildcards_special_characters() {
        assert_eq!(name_filter("plain name"), "plain name");
        assert_eq!(name_filter("a+b"), "a*b");
        assert_eq!(name_filter("a[1]?*%"), "a*1*");
        assert_eq!(name_filter("***"), "*");
        assert_eq!(name_filter("é&#"), "é&#");
    }

    /// A stand-in for the server's glob: anchored, `*` any run, everything else literal.
    fn glob_matches(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let mut reachable = vec![false; t.len() + 1];
        reachable[0] = true;
        for pc in p {
            if pc == '*' {
                for i in 1..=t.len() {
                    reachable[i] = reachable[i] || reachable[i - 1];
                }
            } else {
                for i in (1..=t.len()).rev() {
                    reachable[i] = reachable[i - 1] && t[i - 1] == pc;
                }
                reachable[0] = false;
            }
        }
        reachable[t.len()]
    }

    proptest! {
        #[test]
        fn every_name_matches_its_own_filter(name in "\\PC{1,40}") {
            prop_assert!(glob_matches(&name_filter(&name), &name));
        }

        #[test]
        fn every_value_round_trips_through_a_query(value in "\\PC{0,40}") {
            let decoded = decode_form(&query([("v", value.as_str())]));
            prop_assert_eq!(decoded, vec![("v".to_string(), value)]);
        }
    }
}
