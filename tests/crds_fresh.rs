//! Guards the checked-in CRDs: `crds/losant.io_crds.yaml` must be exactly what
//! `losant_operator::crd::crds_yaml()` renders, and the rendered schemas must be structural in
//! the sense of `apiextensions.k8s.io/v1` and free of anything an older API server refuses (CEL).
//!
//! The structural rules are checked here by a small walker of our own rather than by installing
//! the CRDs, so a mistake shows up in the fast tier with the exact JSON path, long before the
//! end-to-end tests (which do install them on a real apiserver) get to run.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

const CRDS_FILE: &str = "crds/losant.io_crds.yaml";
const REGENERATE: &str = "cargo run --bin losant-operator -- crds > crds/losant.io_crds.yaml";

#[test]
fn checked_in_crds_match_the_code() {
    let rendered = losant_operator::crd::crds_yaml().expect("CRDs render");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CRDS_FILE);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nGenerate it with:\n    {REGENERATE}",
            path.display()
        )
    });
    if rendered != on_disk {
        let first_difference = rendered
            .lines()
            .zip(on_disk.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  code: {a}\n  file: {b}", i + 1))
            .unwrap_or_else(|| {
                format!(
                    "one is a prefix of the other ({} vs {} lines)",
                    rendered.lines().count(),
                    on_disk.lines().count()
                )
            });
        panic!(
            "{CRDS_FILE} is stale: it differs from what the code renders (first difference at \
             {first_difference}).\nRegenerate it with:\n    {REGENERATE}\nand commit the result."
        );
    }
}

#[test]
fn generated_crds_are_structural() {
    let crds = losant_operator::crd::crds().expect("CRDs build");
    assert_eq!(crds.len(), 2, "one CRD per kind");
    let mut problems = Vec::new();
    for crd in &crds {
        let crd = serde_json::to_value(crd).expect("CRD serializes");
        let name = crd["metadata"]["name"].as_str().unwrap_or("?").to_owned();
        problems.extend(check_crd(&crd).into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(
        problems.is_empty(),
        "the CRD schemas break rules of structural schemas:\n  {}",
        problems.join("\n  ")
    );
}

/// The checker must actually catch each kind of mistake, or the test above proves nothing.
#[test]
fn structural_checker_finds_each_kind_of_problem() {
    let bad = json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.a == self.b"}],
                "properties": {
                    "untyped": {"description": "no type"},
                    "ref": {"$ref": "#/definitions/X"},
                    "closed": {"type": "object", "additionalProperties": false},
                    "unique": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
                    "list": {"type": "array", "items": {"minLength": 1}},
                    "free": {"x-kubernetes-preserve-unknown-fields": true},
                    "port": {"x-kubernetes-int-or-string": true},
                    "declared": {"type": "string"}
                },
                "definitions": {"X": {"type": "string"}},
                "oneOf": [
                    {"required": ["declared"], "description": "not allowed here"},
                    {"properties": {"undeclared": {"type": "string"}}},
                    {"not": {"properties": {"declared": {"default": "x", "nullable": true}}}},
                    {"items": {"minLength": 1}}
                ]
            }
        }
    });
    let problems = check_schema_root(&bad);
    let expect = [
        "metadata: only name and generateName",
        "x-kubernetes-validations",
        ".spec.properties.untyped: no type",
        "$ref",
        "additionalProperties: false",
        "uniqueItems: true",
        ".spec.properties.list.items: no type",
        "definitions",
        "oneOf[0]: description",
        "oneOf[1].properties.undeclared: not declared",
        "oneOf[1].properties.undeclared: type",
        "oneOf[2].not.properties.declared: default",
        "oneOf[2].not.properties.declared: nullable",
        "oneOf[3].items: not declared",
    ];
    for needle in expect {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "checker missed `{needle}`; it found:\n  {}",
            problems.join("\n  ")
        );
    }
    // The two escape hatches for `type` are honoured.
    assert!(
        !problems
            .iter()
            .any(|p| p.contains(".free:") || p.contains(".port:")),
        "{problems:#?}"
    );
}

/// Problems in one CRD: its versions' schemas, and CEL anywhere in the document.
fn check_crd(crd: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let versions = crd["spec"]["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        problems.push("no spec.versions".to_owned());
    }
    for v in &versions {
        let version = v["name"].as_str().unwrap_or("?");
        match v.pointer("/schema/openAPIV3Schema") {
            Some(schema) => problems.extend(
                check_schema_root(schema)
                    .into_iter()
                    .map(|p| format!("{version}: {p}")),
            ),
            None => problems.push(format!("{version}: no schema.openAPIV3Schema")),
        }
    }
    // CEL rules anywhere (also outside the schema) make a pre-1.25 kubectl or apiserver refuse
    // the whole CRD.
    find_key(crd, "x-kubernetes-validations", "", &mut problems);
    problems
}

/// Checks a version's `openAPIV3Schema`. Paths in messages are JSON-ish (`.spec.properties.x`).
fn check_schema_root(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_node(schema, "", Context::Plain, true, &mut problems);
    // Only restrictions on metadata.name and metadata.generateName are allowed.
    if let Some(meta) = schema.pointer("/properties/metadata") {
        let allowed_keys = ["type", "properties"];
        let bad_key = meta
            .as_object()
            .is_some_and(|m| m.keys().any(|k| !allowed_keys.contains(&k.as_str())));
        let bad_property = meta["properties"]
            .as_object()
            .is_some_and(|p| p.keys().any(|k| k != "name" && k != "generateName"));
        if bad_key || bad_property {
            problems.push("metadata: only name and generateName may be restricted".to_owned());
        }
    }
    problems
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    /// A node of the structural skeleton: properties and items need a type.
    Plain,
    /// A node inside `allOf`/`anyOf`/`oneOf`/`not`: value validations only.
    Junctor,
}

const JUNCTORS: [&str; 3] = ["allOf", "anyOf", "oneOf"];
/// Keys a schema inside a junctor may not carry.
const NOT_IN_JUNCTORS: [&str; 5] = [
    "type",
    "description",
    "default",
    "nullable",
    "additionalProperties",
];

fn check_node(
    node: &Value,
    path: &str,
    context: Context,
    needs_type: bool,
    problems: &mut Vec<String>,
) {
    let Some(obj) = node.as_object() else {
        problems.push(format!("{path}: a schema must be an object"));
        return;
    };
    let flag = |k: &str| obj.get(k).and_then(Value::as_bool) == Some(true);

    for key in ["$ref", "definitions", "x-kubernetes-validations"] {
        if obj.contains_key(key) {
            problems.push(format!("{path}: {key} is not allowed"));
        }
    }
    if obj.get("additionalProperties") == Some(&Value::Bool(false)) {
        problems.push(format!(
            "{path}: additionalProperties: false is not allowed"
        ));
    }
    if flag("uniqueItems") {
        problems.push(format!(
            "{path}: uniqueItems: true is not allowed (use x-kubernetes-list-type: set)"
        ));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!(
            "{path}: properties and additionalProperties are mutually exclusive"
        ));
    }

    match context {
        Context::Plain => {
            let typed = obj
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
            let exempt =
                flag("x-kubernetes-int-or-string") || flag("x-kubernetes-preserve-unknown-fields");
            if needs_type && !typed && !exempt {
                problems.push(format!("{path}: no type"));
            }
        }
        Context::Junctor => {
            for key in NOT_IN_JUNCTORS {
                if obj.contains_key(key) {
                    problems.push(format!("{path}: {key} is not allowed inside a junctor"));
                }
            }
        }
    }

    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            check_node(
                sub,
                &format!("{path}.properties.{name}"),
                context,
                true,
                problems,
            );
        }
    }
    if let Some(items) = obj.get("items") {
        match items {
            Value::Array(list) => {
                problems.push(format!(
                    "{path}.items: a list of item schemas is not allowed"
                ));
                for (i, sub) in list.iter().enumerate() {
                    check_node(sub, &format!("{path}.items[{i}]"), context, true, problems);
                }
            }
            sub => check_node(sub, &format!("{path}.items"), context, true, problems),
        }
    }
    if let Some(sub @ Value::Object(_)) = obj.get("additionalProperties") {
        check_node(
            sub,
            &format!("{path}.additionalProperties"),
            context,
            true,
            problems,
        );
    }

    for junctor in JUNCTORS {
        match obj.get(junctor) {
            None => {}
            Some(Value::Array(branches)) => {
                for (i, branch) in branches.iter().enumerate() {
                    let branch_path = format!("{path}.{junctor}[{i}]");
                    check_node(branch, &branch_path, Context::Junctor, false, problems);
                    if context == Context::Plain {
                        check_declared(branch, obj, &branch_path, problems);
                    }
                }
            }
            Some(_) => problems.push(format!("{path}.{junctor}: must be a list")),
        }
    }
    if let Some(branch) = obj.get("not") {
        let branch_path = format!("{path}.not");
        check_node(branch, &branch_path, Context::Junctor, false, problems);
        if context == Context::Plain {
            check_declared(branch, obj, &branch_path, problems);
        }
    }
}

/// Every field and item a junctor branch talks about must also exist, at the same place, in the
/// structural schema around it (`outer`); otherwise the API server cannot prune or type it.
fn check_declared(
    branch: &Value,
    outer: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<String>,
) {
    let Some(branch) = branch.as_object() else {
        return;
    };
    if let Some(props) = branch.get("properties").and_then(Value::as_object) {
        let declared = outer.get("properties").and_then(Value::as_object);
        for (name, sub) in props {
            let field_path = format!("{path}.properties.{name}");
            match declared
                .and_then(|d| d.get(name))
                .and_then(Value::as_object)
            {
                Some(outer_sub) => check_declared(sub, outer_sub, &field_path, problems),
                None => problems.push(format!(
                    "{field_path}: not declared in the enclosing schema's properties"
                )),
            }
        }
    }
    if let Some(items) = branch.get("items") {
        match outer.get("items").and_then(Value::as_object) {
            Some(outer_items) => {
                check_declared(items, outer_items, &format!("{path}.items"), problems)
            }
            None => problems.push(format!(
                "{path}.items: not declared in the enclosing schema's items"
            )),
        }
    }
    // Nested junctors still describe the same value as `outer`.
    for junctor in JUNCTORS {
        if let Some(Value::Array(branches)) = branch.get(junctor) {
            for (i, nested) in branches.iter().enumerate() {
                check_declared(nested, outer, &format!("{path}.{junctor}[{i}]"), problems);
            }
        }
    }
    if let Some(nested) = branch.get("not") {
        check_declared(nested, outer, &format!("{path}.not"), problems);
    }
}

/// Reports every occurrence of `key` in `value`.
fn find_key(value: &Value, key: &str, path: &str, problems: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = format!("{path}.{k}");
                if k == key {
                    problems.push(format!(
                        "{child}: CEL rules are refused by API servers before 1.25"
                    ));
                }
                find_key(v, key, &child, problems);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                find_key(v, key, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}
