//! Runs the real `losant-emulator` binary: reads its listening line, then performs the docs
//! example (create, then a filtered list) over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::{APP, client, example_post};
use reqwest::StatusCode;
use serde_json::Value;

/// Kills the child even when an assertion fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_binary() -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_losant-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            "t",
            "--application",
            APP,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let guard = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let base = line
        .trim()
        .strip_prefix("losant-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    (guard, base)
}

#[tokio::test]
async fn binary_serves_the_docs_example() {
    let (_child, base) = start_binary();
    let c = client();
    let url = format!("{base}/applications/{APP}/integrations");
    let resp = c
        .post(&url)
        .bearer_auth("t")
        .json(&example_post())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["id"], created["integrationId"]);
    assert_eq!(created["applicationId"], APP);

    let resp = c
        .get(format!("{url}?filterField=name&filter=Example*"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let listed: Value = resp.json().await.unwrap();
    assert_eq!(listed["totalCount"], 1);
    assert_eq!(listed["items"][0]["id"], created["id"]);
}

#[test]
fn binary_rejects_a_bad_application_id() {
    let out = Command::new(env!("CARGO_BIN_EXE_losant-emulator"))
        .args(["--listen", "127.0.0.1:0", "--application", "not-an-id"])
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("24 hexadecimal"), "{stderr}");
}
