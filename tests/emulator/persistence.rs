//! State-file persistence: data survives a stop/start on the same file, the file is valid
//! JSON after every mutation, and ids stay unique across restarts.

use crate::common::*;
use losant_operator::testkit::TempDir;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn read_state(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("state file exists");
    serde_json::from_str(&text).expect("state file is valid JSON")
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = TempDir::new("restart");
    let state = dir.path().join("state.json");
    let c = client();

    let mut cfg = config();
    cfg.state_file = Some(state.clone());
    let em = start(cfg.clone()).await;
    let kept = create(&c, &em, APP, &example_post()).await;
    let gone = create(&c, &em, APP, &named("gone")).await;
    let url = item(&em, APP, &id_of(&kept));
    let (_, patched) = call(&c, Method::PATCH, &url, Some(&json!({"topics": ["t2"]}))).await;
    assert_eq!(
        read_state(&state)["applications"][APP]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    call(&c, Method::DELETE, &item(&em, APP, &id_of(&gone)), None).await;
    em.shutdown().await.unwrap();

    let on_disk = read_state(&state);
    assert_eq!(on_disk["applications"][APP].as_array().unwrap().len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temp files left behind: {leftovers:?}"
    );

    // The second instance knows neither application from flags: both come from the file.
    cfg.applications.clear();
    let em = start(cfg).await;
    let (status, fetched) = call(&c, Method::GET, &item(&em, APP, &id_of(&kept)), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, patched);
    let (status, _) = call(&c, Method::GET, &item(&em, APP, &id_of(&gone)), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, env) = list(&c, &em, "").await;
    assert_eq!(env["totalCount"], 1);
    let (status, _) = call(&c, Method::GET, &collection(&em, OTHER_APP), None).await;
    assert_eq!(status, StatusCode::OK, "empty applications persist too");

    let fresh = create(&c, &em, APP, &named("fresh")).await;
    assert_ne!(id_of(&fresh), id_of(&kept));
    assert_ne!(
        id_of(&fresh),
        id_of(&gone),
        "same seed, yet a deleted id is not reissued"
    );
    em.shutdown().await.unwrap();
    assert_eq!(
        read_state(&state)["applications"][APP]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_corrupt_state_file_stops_start_up() {
    let dir = TempDir::new("corrupt");
    let state = dir.path().join("state.json");
    std::fs::write(&state, "{not json").unwrap();
    let mut cfg = config();
    cfg.state_file = Some(state);
    let err = losant_operator::emulator::spawn(cfg)
        .await
        .err()
        .expect("start-up fails");
    assert!(err.to_string().contains("state file"), "{err}");
}

#[tokio::test]
async fn an_id_counter_at_its_limit_wraps_instead_of_panicking() {
    let dir = TempDir::new("counter");
    let state = dir.path().join("state.json");
    let file = json!({"format": 1, "idCounter": u32::MAX, "applications": {APP: []}});
    std::fs::write(&state, file.to_string()).unwrap();
    let mut cfg = config();
    cfg.state_file = Some(state.clone());
    let em = start(cfg).await;
    let c = client();
    let first = create(&c, &em, APP, &named("first")).await;
    let second = create(&c, &em, APP, &named("second")).await;
    assert_ne!(id_of(&first), id_of(&second));
    // The counter is the id's last three bytes, so it wrapped to 0, then 1.
    assert!(id_of(&first).ends_with("000000"), "{first}");
    assert_eq!(read_state(&state)["idCounter"], 1);
}

/// The state file holds integration secrets in clear, so only its owner may read it.
#[cfg(unix)]
#[tokio::test]
async fn the_state_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let state = dir.path().join("state.json");
    let mut cfg = config();
    cfg.state_file = Some(state.clone());
    let em = start(cfg).await;
    let c = client();
    create(&c, &em, APP, &example_post()).await;
    let mode = std::fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    em.shutdown().await.unwrap();
}
