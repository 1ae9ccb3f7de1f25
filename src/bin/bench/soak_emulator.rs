//! The soak's emulator: one `losant-emulator` process, restarted on the same port and state
//! file to switch between clean and faulty phases, whose request counts are kept across the
//! restarts; and the soak's own requests to it, counted apart so the figures leave them out.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;
use losant_operator::testkit::EmulatorProcess;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::fleet::{OPERATOR_TOKEN, application_ids};
use crate::observe::{BENCH_TOKEN, Calls, Observer};
use crate::soak::SoakArgs;

/// The emulator, restarted on the same port and state file to switch between clean and faulty
/// phases; its request counts are kept across restarts.
pub struct SoakEmulator {
    process: EmulatorProcess,
    faulty: bool,
    /// What the emulators before the last restart counted.
    earlier_calls: Calls,
    /// API requests (not admin ones) the soak itself sent with its own token, and of those the
    /// lists.
    own_calls: AtomicU64,
    own_lists: AtomicU64,
}

impl SoakEmulator {
    pub fn start(args: &SoakArgs) -> anyhow::Result<SoakEmulator> {
        let state = args.log_dir.join("emulator-state.json");
        // A state file left by an earlier run would bring its integrations back.
        std::fs::remove_file(&state).ok();
        let apps = application_ids(args.applications.max(1));
        let binary = args
            .bin_dir
            .clone()
            .unwrap_or_else(losant_operator::testkit::profile_dir)
            .join("losant-emulator");
        let process = EmulatorProcess::builder()
            .binary(binary)
            .token(BENCH_TOKEN)
            .application(apps[0].as_str())
            .args(emulator_args(args, false))
            .log_path(args.log_dir.join("emulator.log"))
            .start()?;
        Ok(SoakEmulator {
            process,
            faulty: false,
            earlier_calls: Calls::default(),
            own_calls: AtomicU64::new(0),
            own_lists: AtomicU64::new(0),
        })
    }

    pub fn process(&self) -> &EmulatorProcess {
        &self.process
    }

    pub fn base_url(&self) -> &str {
        self.process.base_url()
    }

    pub fn faulty(&self) -> bool {
        self.faulty
    }

    /// Restarts the emulator with or without its faults (nothing when already so).
    pub fn set_faulty(&mut self, args: &SoakArgs, faulty: bool) -> anyhow::Result<()> {
        if faulty == self.faulty {
            return Ok(());
        }
        let calls = self.calls()?;
        let extra = emulator_args(args, faulty);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.process.restart_with(&extra);
        self.earlier_calls = calls;
        self.faulty = faulty;
        Ok(())
    }

    /// Losant requests counted since the first start, less the soak's own.
    pub fn calls(&self) -> anyhow::Result<Calls> {
        let now = Observer::new(&self.process, 0).calls()?;
        let mut total = self.earlier_calls.clone();
        for (kind, count) in now.by_kind {
            *total.by_kind.entry(kind).or_default() += count;
        }
        total.rate_limited += now.rate_limited;
        total.created += now.created;
        Ok(total)
    }

    /// The soak's own API requests so far, and of those the lists.
    pub fn own_calls(&self) -> (u64, u64) {
        (
            self.own_calls.load(Ordering::Relaxed),
            self.own_lists.load(Ordering::Relaxed),
        )
    }

    /// An API request with the soak's token; the body of a 2xx answer.
    pub fn api(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.own_calls.fetch_add(1, Ordering::Relaxed);
        if method == Method::GET && path.contains("/integrations?") {
            self.own_lists.fetch_add(1, Ordering::Relaxed);
        }
        self.admin(method, path, body)
    }

    /// A request that the emulator does not count as an API call (`/_emulator/...`), or one
    /// already counted by [`Self::api`].
    pub fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let (status, answer) = self.process.try_request(method.clone(), path, body)?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}");
        }
        Ok(answer)
    }

    /// Gives remote `id`'s connection back to the emulator's automatic behaviour.
    pub fn restore_connection(&self, id: &str) {
        let path = format!("/_emulator/integrations/{id}/connection");
        // Gone with its remote (deleted since) is as good as restored.
        if let Err(e) = self.admin(Method::DELETE, &path, None)
            && !e.to_string().contains(StatusCode::NOT_FOUND.as_str())
        {
            eprintln!("soak: restoring the connection of {id}: {e:#}");
        }
    }
}

/// The emulator's arguments after the kit's fixed ones (its address, the soak's token and the
/// first application): the operator's token, the other applications, the state file, the
/// latency and rate limit, and in a faulty phase the faults.
fn emulator_args(args: &SoakArgs, faulty: bool) -> Vec<String> {
    let mut extra: Vec<String> = vec![
        "--token".into(),
        OPERATOR_TOKEN.into(),
        "--state-file".into(),
        args.log_dir
            .join("emulator-state.json")
            .display()
            .to_string(),
        "--latency-ms".into(),
        args.latency_ms.to_string(),
        "--rate-limit".into(),
        args.rate_limit.to_string(),
    ];
    for app in application_ids(args.applications.max(1)).iter().skip(1) {
        extra.extend(["--application".into(), app.clone()]);
    }
    if faulty {
        extra.extend([
            "--error-rate".into(),
            args.error_rate.to_string(),
            "--fault-after-commit".into(),
            args.fault_after_commit.to_string(),
        ]);
    }
    extra
}
