//! The `LosantApplication` reconciler: Ready means the token works against the application,
//! checked with one cheap call (a one-item list), re-checked periodically and whenever the token
//! or CA bundle Secret changes.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource};

use super::context::Context;
use super::error::Error;
use super::outcome::{Failure, LosantCall};
use super::{clients, in_use, status};
use crate::crd::{LosantApplication, LosantApplicationStatus};
use crate::losant::ListQuery;
use crate::sync::conditions::{self, Health};
use crate::sync::reason::Reason;

/// The controller's entry point for a `LosantApplication`.
pub async fn reconcile(app: Arc<LosantApplication>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = app.namespace().ok_or(Error::MissingNamespace)?;
    if let Some(why) = crate::ops::lean::undecodable(&*app) {
        return Ok(super::undecodable::report(&*app, why, &ctx).await);
    }
    let now = ctx.clock.now();
    let in_use = manage_in_use(&app, &namespace, &ctx).await?;
    if matches!(in_use, InUse::Released) {
        // Deleted and no longer used: let it go (nothing left to report on).
        return Ok(Action::await_change());
    }
    let (health, action) = check(&app, &namespace, &ctx, now).await?;
    report(&app, &namespace, &health, &ctx, now).await?;
    if matches!(in_use, InUse::HeldWhileDeleting) {
        // The Integrations' cache may lag behind their deletion: look again soon rather than at
        // the next re-check, so a namespace deletion is not held up.
        return Ok(Action::requeue(std::time::Duration::from_secs(2)));
    }
    Ok(action)
}

/// Whether the token works, and when to look again. Integration events wake this reconciler
/// for the in-use bookkeeping; the token is checked against Losant only when something it
/// depends on changed or the re-check is due.
async fn check(
    app: &LosantApplication,
    namespace: &str,
    ctx: &Context,
    now: Timestamp,
) -> Result<(Health, Action), Error> {
    let key = super::backoff_key("LosantApplication", Some(namespace), &app.name_any());
    let fingerprint = fingerprint(app, namespace, ctx).await?;
    let ready = app.status.as_ref().is_some_and(|s| {
        s.observed_generation == app.metadata.generation && conditions::is_ready(&s.conditions)
    });
    let uid = app.uid().unwrap_or_default();
    let result = if ready && ctx.verified_recently(&uid, &fingerprint, now) {
        Ok(())
    } else {
        let result = verify(app, namespace, ctx).await?;
        if result.is_ok() {
            ctx.note_verified(&uid, fingerprint, now);
        }
        result
    };
    Ok(match result {
        Ok(()) => {
            ctx.reset_backoff(&key);
            let message = format!(
                "the token can manage integrations of application {}",
                app.spec.application_id
            );
            let ready = Health::Ready {
                reason: Reason::Verified,
                message,
            };
            (
                ready,
                Action::requeue(ctx.settings.application_recheck_interval),
            )
        }
        Err(failure) => {
            let wait = match &failure {
                Failure::Transient { retry_after, .. } => ctx.backoff(&key, *retry_after),
                Failure::Permanent { .. } => ctx.settings.stalled_retry_interval,
            };
            (failure.health(), Action::requeue(wait))
        }
    })
}

/// Publishes an Event when `Ready` changed, and writes the status if it changed.
async fn report(
    app: &LosantApplication,
    namespace: &str,
    health: &Health,
    ctx: &Context,
    now: Timestamp,
) -> Result<(), Error> {
    let previous = app.status.clone().unwrap_or_default();
    let generation = app.metadata.generation;
    let next = LosantApplicationStatus {
        observed_generation: generation,
        conditions: conditions::conditions(health, generation, &previous.conditions, now),
    };
    let ready =
        |list| conditions::ready_condition(list).map(|c| (c.status.clone(), c.reason.clone()));
    if ready(&previous.conditions) != ready(&next.conditions) {
        let type_ = if matches!(health, Health::Ready { .. }) {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let note = health.message().to_owned();
        ctx.event(
            &app.object_ref(&()),
            type_,
            health.reason().as_str(),
            "Verify",
            note,
        )
        .await;
    }
    let api: Api<LosantApplication> = Api::namespaced(ctx.kube.clone(), namespace);
    if status::apply_if_changed(&api, &app.name_any(), app.status.as_ref(), &next).await? {
        ctx.metrics.status_written();
    }
    Ok(())
}

/// One cheap call that proves the token works against the application.
async fn verify(
    app: &LosantApplication,
    namespace: &str,
    ctx: &Context,
) -> Result<Result<(), Failure>, Error> {
    let client = match clients::for_application(app, namespace, ctx).await? {
        Ok(client) => client,
        Err(failure) => return Ok(Err(failure)),
    };
    let probe = ListQuery {
        per_page: Some(1),
        ..ListQuery::default()
    };
    Ok(
        match client
            .list(&app.spec.application_id.to_ascii_lowercase(), &probe)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_not_found() => Err(Failure::permanent(
                Reason::ApplicationNotFound,
                format!(
                    "Losant says application {} does not exist (or the token cannot see it)",
                    app.spec.application_id
                ),
            )),
            Err(error) => Err(Failure::losant(LosantCall::List, &error)),
        },
    )
}

/// Keeps the in-use finalizers of the application and its token and CA bundle Secrets in step
/// with whether any Integration references the application. Returns true when the application
/// is being deleted and was released.
async fn manage_in_use(
    app: &LosantApplication,
    namespace: &str,
    ctx: &Context,
) -> Result<InUse, Error> {
    let patience = std::time::Duration::from_secs(2);
    let Some(stores) = ctx.caches.synced_integrations(patience).await else {
        // The caches are not there yet: leave the finalizers as they are; the next reconcile
        // (an Integration event or the periodic re-check) settles them.
        tracing::debug!("Integration caches not synced yet; in-use finalizers left as they are");
        return Ok(InUse::Unknown);
    };
    let used = in_use::users(stores, namespace, &app.name_any()) > 0;
    let deleting = app.metadata.deletion_timestamp.is_some();
    let apps: Api<LosantApplication> = Api::namespaced(ctx.kube.clone(), namespace);
    let others = apps
        .list(&kube::api::ListParams::default())
        .await
        .map_err(Error::kube("list LosantApplications"))?;
    // When this application goes, it no longer needs its Secrets.
    let remaining: Vec<LosantApplication> = others
        .items
        .into_iter()
        .filter(|a| !(deleting && !used && a.name_any() == app.name_any()))
        .collect();
    // The Secrets first: once the application's own finalizer is gone, nothing would revisit them.
    // Through the metadata API: a finalizer needs no Secret data, so neither the read nor the
    // patch's answer carries any.
    let secrets_api: Api<PartialObjectMeta<Secret>> = Api::namespaced(ctx.kube.clone(), namespace);
    let mut guarded = vec![&app.spec.token_secret_ref.name];
    guarded.extend(app.spec.ca_bundle_secret_ref.as_ref().map(|r| &r.name));
    for secret_name in guarded {
        let Some(secret) = secrets_api
            .get_opt(secret_name)
            .await
            .map_err(Error::kube("read a Secret of the application"))?
        else {
            continue;
        };
        let needed = in_use::secret_needed(stores, &remaining, namespace, secret_name);
        let secret_deleting = secret.metadata.deletion_timestamp.is_some();
        // No new finalizer may be added to an object being deleted.
        if !secret_deleting || !needed {
            in_use::set_finalizer(&secrets_api, &secret, needed && !secret_deleting).await?;
        }
    }
    if !deleting || !used {
        in_use::set_finalizer(&apps, app, used && !deleting).await?;
    }
    Ok(match (deleting, used) {
        (true, false) => InUse::Released,
        (true, true) => InUse::HeldWhileDeleting,
        (false, _) => InUse::Settled,
    })
}

/// Where the in-use bookkeeping left the application.
enum InUse {
    /// Finalizers are as they should be.
    Settled,
    /// The caches were not ready; nothing was changed.
    Unknown,
    /// Being deleted, and Integrations still need it: the finalizer stays.
    HeldWhileDeleting,
    /// Being deleted, and no longer used: let go.
    Released,
}

/// What a verification depends on: the spec's generation and the Secrets' versions (from the
/// Secret metadata cache, else read).
async fn fingerprint(
    app: &LosantApplication,
    namespace: &str,
    ctx: &Context,
) -> Result<String, Error> {
    if let Some(cached) = cached_fingerprint(app, namespace, ctx) {
        return Ok(cached);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), namespace);
    let mut versions = Vec::new();
    for name in secret_names(app) {
        let version = secrets
            .get_metadata_opt(name)
            .await
            .map_err(Error::kube("read a Secret of the application"))?
            .and_then(|s| s.metadata.resource_version);
        versions.push(version);
    }
    Ok(fingerprint_of(app, &versions))
}

/// The fingerprint from the Secret metadata cache; `None` while it is not synced.
pub fn cached_fingerprint(
    app: &LosantApplication,
    namespace: &str,
    ctx: &Context,
) -> Option<String> {
    let versions = secret_names(app)
        .map(|name| ctx.caches.secret_version(namespace, name))
        .collect::<Option<Vec<_>>>()?;
    Some(fingerprint_of(app, &versions))
}

fn secret_names(app: &LosantApplication) -> impl Iterator<Item = &String> {
    std::iter::once(&app.spec.token_secret_ref.name)
        .chain(app.spec.ca_bundle_secret_ref.as_ref().map(|r| &r.name))
}

fn fingerprint_of(app: &LosantApplication, versions: &[Option<String>]) -> String {
    std::iter::once(app.metadata.generation.unwrap_or_default().to_string())
        .chain(versions.iter().map(|v| v.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("/")
}
