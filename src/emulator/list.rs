//! The list action's query: parsing, the anchored case-insensitive glob filter, sorting,
//! paging and the response envelope.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::error::ApiError;

/// Default largest page size (`EmulatorConfig::max_per_page`); bigger requests are clamped.
pub const MAX_PER_PAGE: u64 = super::config::DEFAULT_MAX_PER_PAGE;
/// Page size when none is given.
pub const DEFAULT_PER_PAGE: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Name,
    Id,
    CreationDate,
    IntegrationType,
    LastUpdated,
}

impl SortField {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "name" => Self::Name,
            "id" => Self::Id,
            "creationDate" => Self::CreationDate,
            "integrationType" => Self::IntegrationType,
            "lastUpdated" => Self::LastUpdated,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Id => "id",
            Self::CreationDate => "creationDate",
            Self::IntegrationType => "integrationType",
            Self::LastUpdated => "lastUpdated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterField {
    Name,
    IntegrationType,
}

impl FilterField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::IntegrationType => "integrationType",
        }
    }
}

/// A parsed, validated list query.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub sort_field: SortField,
    pub descending: bool,
    pub page: u64,
    /// Effective page size (after clamping).
    pub per_page: u64,
    pub filter_field: Option<FilterField>,
    pub filter: Option<String>,
}

/// Decodes a query string as `application/x-www-form-urlencoded`; the last value of a
/// repeated key wins.
pub fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Parses the list parameters; blank values mean "not given". `perPage` (given or default) is
/// clamped to `max_per_page`.
pub fn parse_list_query(
    params: &HashMap<String, String>,
    max_per_page: u64,
) -> Result<ListQuery, ApiError> {
    let given = |k: &str| {
        params
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    };
    let sort_field = match given("sortField") {
        None => SortField::Name,
        Some(v) => SortField::parse(v).ok_or_else(|| {
            invalid(
                "sortField",
                "name, id, creationDate, integrationType, lastUpdated",
            )
        })?,
    };
    let descending = match given("sortDirection") {
        None | Some("asc" | "ASC") => false,
        Some("desc" | "DESC") => true,
        Some(_) => return Err(invalid("sortDirection", "asc, desc")),
    };
    let page = match given("page") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| invalid("page", "a non-negative integer"))?,
    };
    let requested = match given("perPage") {
        None => DEFAULT_PER_PAGE,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| invalid("perPage", "a positive integer"))?,
    };
    let per_page = clamp_per_page(requested, max_per_page);
    let filter_field = match given("filterField") {
        None => None,
        Some("name") => Some(FilterField::Name),
        Some("integrationType") => Some(FilterField::IntegrationType),
        Some(_) => return Err(invalid("filterField", "name, integrationType")),
    };
    let filter = params.get("filter").filter(|v| !v.is_empty()).cloned();
    Ok(ListQuery {
        sort_field,
        descending,
        page,
        per_page,
        filter_field,
        filter,
    })
}

/// Clamps a requested page size to `max` (itself at least 1).
pub fn clamp_per_page(requested: u64, max: u64) -> u64 {
    requested.min(max.max(1))
}

fn invalid(param: &str, allowed: &str) -> ApiError {
    ApiError::Validation(format!("query parameter {param}: must be one of {allowed}"))
}

/// Anchored, case-insensitive glob match where only `*` is special.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let value: Vec<char> = value.to_lowercase().chars().collect();
    let (mut p, mut v) = (0, 0);
    // Position of the last `*` seen and the value index it is currently standing for.
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, v));
            p += 1;
        } else if p < pattern.len() && pattern[p] == value[v] {
            p += 1;
            v += 1;
        } else if let Some((sp, sv)) = star {
            // Let the last `*` swallow one more character and retry.
            p = sp + 1;
            v = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

fn text<'a>(doc: &'a Map<String, Value>, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or("")
}

/// One page of matching items plus the total match count.
pub struct ListPage {
    pub items: Vec<Map<String, Value>>,
    pub total: u64,
}

/// Filters, sorts (ties broken by ascending id) and pages `docs`.
pub fn select(query: &ListQuery, mut docs: Vec<Map<String, Value>>) -> ListPage {
    if let (Some(field), Some(pattern)) = (query.filter_field, &query.filter) {
        docs.retain(|d| glob_match(pattern, text(d, field.as_str())));
    }
    let key = query.sort_field.as_str();
    docs.sort_by(|a, b| {
        let primary = text(a, key).cmp(text(b, key));
        let primary = if query.descending {
            primary.reverse()
        } else {
            primary
        };
        primary.then_with(|| text(a, "id").cmp(text(b, "id")))
    });
    let total = docs.len() as u64;
    let skip = query.page.saturating_mul(query.per_page);
    let items = docs
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(query.per_page).unwrap_or(usize::MAX))
        .collect();
    ListPage { items, total }
}

/// Builds the list envelope (without HAL extras).
pub fn envelope(
    query: &ListQuery,
    application_id: &str,
    items: Vec<Value>,
    total: u64,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("count".into(), json!(items.len()));
    out.insert("items".into(), Value::Array(items));
    out.insert("totalCount".into(), json!(total));
    out.insert("perPage".into(), json!(query.per_page));
    out.insert("page".into(), json!(query.page));
    out.insert("sortField".into(), json!(query.sort_field.as_str()));
    let direction = if query.descending { "desc" } else { "asc" };
    out.insert("sortDirection".into(), json!(direction));
    out.insert("applicationId".into(), json!(application_id));
    if let Some(field) = query.filter_field {
        out.insert("filterField".into(), json!(field.as_str()));
    }
    if let Some(filter) = &query.filter {
        out.insert("filter".into(), json!(filter));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_match("Example*", "example integrations"));
        assert!(!glob_match("Example", "Example integrations"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYYcd"));
        assert!(glob_match("a?b", "A?B"));
        assert!(!glob_match("a?b", "axb"));
        assert!(glob_match("[x]+&#% y", "[X]+&#% Y"));
        assert!(glob_match("ÄPFEL*", "äpfel grün"));
        assert!(glob_match("**a", "ba"));
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        parse_list_query(&params(pairs), MAX_PER_PAGE)
    }

    #[test]
    fn per_page_is_clamped_and_validated() {
        assert_eq!(parse(&[("perPage", "5000")]).unwrap().per_page, 1000);
        assert_eq!(parse(&[]).unwrap().per_page, 100);
        assert!(parse(&[("perPage", "0")]).is_err());
        assert!(parse(&[("perPage", "1.5")]).is_err());
        assert!(parse(&[("page", "-1")]).is_err());
        assert!(parse(&[("sortField", "bogus")]).is_err());
        assert!(parse(&[("sortDirection", "DESC")]).unwrap().descending);
    }

    #[test]
    fn a_lower_max_clamps_the_default_too() {
        let q = |pairs: &[(&str, &str)]| parse_list_query(&params(pairs), 10).unwrap().per_page;
        assert_eq!(q(&[("perPage", "1000")]), 10);
        assert_eq!(q(&[]), 10, "the default page size is clamped as well");
        assert_eq!(q(&[("perPage", "3")]), 3);
        assert_eq!(clamp_per_page(5, 0), 1, "never a zero page size");
    }

    #[test]
    fn plus_decodes_to_space() {
        let q = query_map(Some("filter=a+b%2Bc&filterField=name"));
        assert_eq!(q["filter"], "a b+c");
    }
}
