use super::*;

const INTEGRATION: &str = "apiVersion: losant.io/v1alpha1
kind: Integration
metadata:
  name: queue
spec:
  applicationRef: {name: app}
  integrationType: sqs
  sqsConfig: {queueUrl: 'https://sqs.example/q'}
";

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: team}
stringData: {password: hunter2-value}
";

fn parse(file: &str, text: &str) -> Result<Inputs, InputError> {
    let mut inputs = Inputs::default();
    parse_into(&mut inputs, file, text)?;
    Ok(inputs)
}

#[test]
fn documents_split_at_separator_lines_only() {
    let text = "a: 1\n---\nb: '---'\n--- # comment\n\n---\n# only a comment\n---\nc: 3\n";
    let docs = split_documents(text);
    let indexes: Vec<(usize, usize)> = docs.iter().map(|d| (d.index, d.first_line)).collect();
    assert_eq!(indexes, vec![(1, 1), (2, 3), (5, 9)]);
    assert_eq!(docs[1].text, "b: '---'\n");
}

#[test]
fn a_stream_holds_every_kind_plan_reads_and_skips_others() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n";
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n",
        serde_json::to_string(&serde_saphyr::from_str::<Value>(SECRET).unwrap()).unwrap()
    );
    let text = format!("---\n{INTEGRATION}---\n{deployment}---\n{SECRET}---\n{list}");
    let inputs = parse("all.yaml", &text).unwrap();
    assert_eq!(inputs.integrations.len(), 1);
    assert_eq!(inputs.secrets.len(), 2, "one plain, one inside a List");
    assert_eq!(inputs.integrations[0].source, "all.yaml (document 2)");
    assert_eq!(inputs.integrations[0].object.remote_name(), "queue");
}

#[test]
fn bad_yaml_names_the_file_and_the_document() {
    let text = format!("{INTEGRATION}---\nkind: [unclosed\n");
    let error = parse("bad.yaml", &text).unwrap_err().to_string();
    assert!(
        error.starts_with("bad.yaml: document 2: not valid YAML at line 1"),
        "{error}"
    );
}

#[test]
fn an_object_that_does_not_decode_names_its_kind_and_name() {
    let text = INTEGRATION.replace("integrationType: sqs", "integrationType: carrier-pigeon");
    let error = parse("x.yaml", &format!("{SECRET}---\n{text}")).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("x.yaml: document 2 (Integration/queue): does not match the schema"),
        "{message}"
    );
    let nameless = "apiVersion: losant.io/v1alpha1\nkind: Integration\nspec: {}\n";
    let message = parse("y.yaml", nameless).unwrap_err().to_string();
    assert!(
        message.contains("document 1 (Integration/<no name>): metadata.name is required"),
        "{message}"
    );
    let no_kind = parse("z.yaml", "metadata: {name: a}\n")
        .unwrap_err()
        .to_string();
    assert!(
        no_kind.contains("apiVersion and kind are required"),
        "{no_kind}"
    );
    let scalar = parse("s.yaml", "just text\n").unwrap_err().to_string();
    assert!(scalar.contains("document 1: not an object"), "{scalar}");
    let version = INTEGRATION.replace("v1alpha1", "v9");
    let message = parse("v.yaml", &version).unwrap_err().to_string();
    assert!(message.contains("losant.io/v9 is not served"), "{message}");
}

#[test]
fn a_bad_secret_is_reported_without_its_value() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata: {password: 'not*base64*hunter2'}\n";
    let message = parse("s.yaml", text).unwrap_err().to_string();
    assert!(message.contains("document 1 (Secret/creds)"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn files_directories_and_stdin_are_read_in_order() {
    let dir = std::env::temp_dir().join(format!("plan-input-{}", std::process::id()));
    let nested = dir.join("nested");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(dir.join("b.yaml"), INTEGRATION).unwrap();
    std::fs::write(dir.join("a.yml"), SECRET).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
    std::fs::write(
        nested.join("c.yaml"),
        INTEGRATION.replace("name: queue", "name: deep"),
    )
    .unwrap();
    let path = dir.display().to_string();
    let mut stdin = INTEGRATION.replace("name: queue", "name: piped");
    let mut reader = stdin.as_bytes();
    let flat = load(&[path.clone(), "-".into()], false, &mut reader).unwrap();
    let names: Vec<&str> = flat
        .integrations
        .iter()
        .map(|s| s.object.remote_name())
        .collect();
    assert_eq!(names, vec!["queue", "piped"]);
    assert_eq!(flat.secrets.len(), 1);
    stdin.clear();
    let deep = load(&[path], true, &mut stdin.as_bytes()).unwrap();
    let names: Vec<&str> = deep
        .integrations
        .iter()
        .map(|s| s.object.remote_name())
        .collect();
    assert_eq!(names, vec!["queue", "deep"]);
    let missing = load(
        &["/nonexistent/plan.yaml".into()],
        false,
        &mut stdin.as_bytes(),
    );
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .starts_with("/nonexistent/plan.yaml: ")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
