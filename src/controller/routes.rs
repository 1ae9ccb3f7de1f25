//! Which reconciles a watch event asks for: the Integrations of a changed application or
//! Secret, the applications of a changed Secret, and the applications whose use changed (told by
//! the Integration cache, so the application controller needs no Integration watch of its own).

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::in_use;
use crate::crd::{Integration, LosantApplication};
use crate::sync::desired::secret_refs;

/// How the Integration controller's cache wakes the LosantApplication controller of its scope
/// (see [`in_use::UsageTracker`]): one application, or all of them after a (re)list.
pub(super) struct WakeApplications {
    one: tokio::sync::mpsc::UnboundedSender<ObjectRef<LosantApplication>>,
    all: tokio::sync::mpsc::UnboundedSender<()>,
}

/// The receiving ends of [`WakeApplications`].
pub(super) struct ApplicationsWoken {
    pub(super) one: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<LosantApplication>>,
    pub(super) all: tokio::sync::mpsc::UnboundedReceiver<()>,
}

pub(super) fn wake_channel() -> (WakeApplications, ApplicationsWoken) {
    let (one, one_rx) = tokio::sync::mpsc::unbounded_channel();
    let (all, all_rx) = tokio::sync::mpsc::unbounded_channel();
    (
        WakeApplications { one, all },
        ApplicationsWoken {
            one: one_rx,
            all: all_rx,
        },
    )
}

impl WakeApplications {
    /// A watch-event tap that follows usage and wakes applications whose use may have changed.
    /// A closed channel means the other controller stopped, as at shutdown: nothing to do.
    pub(super) fn into_tap(self) -> impl FnMut(&watcher::Event<Integration>) + Send + 'static {
        let mut tracker = in_use::UsageTracker::default();
        move |event| match tracker.observe(event) {
            in_use::Wake::Nothing => {}
            in_use::Wake::Applications(apps) => {
                if apps.into_iter().any(|app| self.one.send(app).is_err()) {
                    tracing::debug!("the LosantApplication controller stopped; nothing to wake");
                }
            }
            in_use::Wake::Everything => {
                if self.all.send(()).is_err() {
                    tracing::debug!("the LosantApplication controller stopped; nothing to wake");
                }
            }
        }
    }
}

/// The receiving end of an unbounded channel as a stream.
pub(super) fn unbounded_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The receiving end of a channel as a stream.
pub(super) fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The applications whose token or CA bundle is the Secret `secret`.
pub(super) fn applications_using<S: ResourceExt>(
    store: &Store<LosantApplication>,
    secret: &S,
) -> Vec<ObjectRef<LosantApplication>> {
    let (namespace, name) = (secret.namespace(), secret.name_any());
    store
        .state()
        .iter()
        .filter(|app| {
            app.namespace() == namespace
                && (app.spec.token_secret_ref.name == name
                    || app
                        .spec
                        .ca_bundle_secret_ref
                        .as_ref()
                        .is_some_and(|r| r.name == name))
        })
        .map(|app| ObjectRef::from_obj(app.as_ref()))
        .collect()
}

pub(super) fn integrations_of(
    store: &Store<Integration>,
    app: &LosantApplication,
) -> Vec<ObjectRef<Integration>> {
    let (namespace, name) = (app.namespace(), app.name_any());
    store
        .state()
        .iter()
        .filter(|i| i.namespace() == namespace && i.spec.application_ref.name == name)
        .map(|i| ObjectRef::from_obj(i.as_ref()))
        .collect()
}

pub(super) fn integrations_using<S: ResourceExt>(
    store: &Store<Integration>,
    secret: &S,
) -> Vec<ObjectRef<Integration>> {
    let (namespace, name) = (secret.namespace(), secret.name_any());
    store
        .state()
        .iter()
        .filter(|i| {
            i.namespace() == namespace && secret_refs(&i.spec).iter().any(|r| r.name == name)
        })
        .map(|i| ObjectRef::from_obj(i.as_ref()))
        .collect()
}
