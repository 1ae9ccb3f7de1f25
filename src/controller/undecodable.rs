//! Objects this version of the operator cannot decode (stored before a schema tightened, or
//! written by a newer version): the watches keep them as stand-ins ([`crate::ops::lean`]) so one
//! bad object never stops the others, and this reports them: a log line naming the object, a
//! Warning Event on it, and the `Undecodable` reason in `losant_operator_objects`. Nothing else
//! is done with them — no Losant call, no status write, no finalizer change — until a fixed
//! version arrives through the watch and is reconciled as usual.

use kube::Resource;
use kube::api::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::context::Context;
use crate::sync::reason::Reason;

/// Reports the stand-in `obj`, unreadable because of `why`, and waits for a change.
pub async fn report<K>(obj: &K, why: &str, ctx: &Context) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let kind = K::kind(&());
    let (namespace, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    tracing::warn!(%kind, %namespace, %name, error = why, "cannot decode this object; it is skipped until it is fixed");
    let deleting = obj.meta().deletion_timestamp.is_some();
    let note = format!(
        "this version of losant-operator cannot read the object ({why}); it is left alone until it is fixed (e.g. kubectl edit){}",
        if deleting {
            "; its deletion waits too, since the operator cannot tell what to do with its remote"
        } else {
            ""
        }
    );
    let reason = Reason::Undecodable.as_str();
    ctx.event(
        &obj.object_ref(&()),
        EventType::Warning,
        reason,
        "Decode",
        note,
    )
    .await;
    Action::await_change()
}
