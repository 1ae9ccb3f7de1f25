//! How every watch of the operator lists and watches: decoded lean ([`lean::Lean`]: no
//! managedFields, no last-applied copy), with the initial list paged, and kept going through
//! failures of the API server by itself ([`persist`]).

use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::runtime::watcher;

use super::lean;

/// What a watched kind must be: decoded lean ([`lean::DecodeLean`]).
pub trait Watched:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + lean::DecodeLean
    + serde::de::DeserializeOwned
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + lean::DecodeLean
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// Lists and watches what `api` covers as every watch of the operator does: with
/// [`watch_config`], each object decoded [`lean`](lean::Lean) (managedFields and the
/// last-applied annotation never decoded), kept going through failures ([`persist`]; `label`
/// names the watch in its log lines). The stream never yields an error.
pub fn watch<K: Watched>(
    label: String,
    api: kube::Api<K>,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static {
    let lean_api: kube::Api<lean::Lean<K>> = match api.namespace().map(str::to_owned) {
        Some(namespace) => kube::Api::namespaced(api.into_client(), &namespace),
        None => kube::Api::all(api.into_client()),
    };
    let events = watcher::watcher(lean_api, watch_config()).map_ok(|event| match event {
        watcher::Event::Apply(lean::Lean(object)) => watcher::Event::Apply(object),
        watcher::Event::Delete(lean::Lean(object)) => watcher::Event::Delete(object),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(lean::Lean(object)) => watcher::Event::InitApply(object),
        watcher::Event::InitDone => watcher::Event::InitDone,
    });
    persist(label, events)
}

/// First wait after a watch fails; it doubles per failure in a row up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(800);
/// Longest wait between attempts of a failing watch: also how long, at most, the operator stays
/// deaf after the API server is back. A process has few watches (five per watched namespace),
/// so even many of them retrying this often are light for a recovering API server.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Keeps a watch going through failures of the API server on its own, so the stream never
/// yields an error:
/// - `410 Gone` (the watch resumed from a version the API server or etcd no longer holds, as
///   after a restart or a compaction) is no failure: the watcher lists again at once, by itself.
/// - Any other failure is logged and tried again after this watch's own backoff (jittered,
///   from [`RETRY_FIRST`] doubling to [`RETRY_MAX`], reset by the next event).
///
/// Not left to the controller: a kube-runtime controller backs off all its trigger streams
/// together on any one's error, so after an API server restart each watch's `410 Gone` stepped
/// one shared backoff up (0.8 s doubling to 30 s), and while it waited the controller heard
/// nothing from any of its watches.
fn persist<K: Send + 'static>(
    label: String,
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static {
    let state = Persisted {
        events: events.boxed(),
        label,
        failures: 0,
        listed: false,
    };
    futures::stream::unfold(state, |mut watch| async move {
        loop {
            match watch.events.next().await? {
                Ok(event) => {
                    watch.note(&event);
                    return Some((Ok(event), watch));
                }
                Err(error) if is_gone(&error) => {
                    tracing::info!(watch = %watch.label, "watch fell behind the API server's history (410 Gone); listing again");
                }
                Err(error) => {
                    let wait = retry_wait(watch.failures);
                    watch.failures = watch.failures.saturating_add(1);
                    tracing::warn!(watch = %watch.label, %error, failures = watch.failures, retry_in_ms = wait.as_millis() as u64, "watch failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    })
}

/// A watch and what [`persist`] remembers of it.
struct Persisted<K> {
    events: futures::stream::BoxStream<'static, watcher::Result<watcher::Event<K>>>,
    label: String,
    /// Failures in a row.
    failures: u32,
    /// Whether a list has completed (a later one is a relist).
    listed: bool,
}

impl<K> Persisted<K> {
    fn note(&mut self, event: &watcher::Event<K>) {
        if self.failures > 0 {
            tracing::info!(watch = %self.label, failures = self.failures, "watch recovered");
            self.failures = 0;
        }
        if matches!(event, watcher::Event::InitDone) {
            if self.listed {
                tracing::info!(watch = %self.label, "listed again; watching for changes");
            }
            self.listed = true;
        }
    }
}

/// Whether the API server answered `410 Gone` where the watcher starts a new list by itself: a
/// watch's error event (the version it resumed from is no longer kept) or a failed list page
/// (its continue token expired). Anywhere else the watcher would retry the same request, so
/// that is backed off like any failure.
fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::InitialListFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// The wait after `failures` failures in a row: [`RETRY_FIRST`] doubled per failure, at most
/// [`RETRY_MAX`], jittered by ±20 % so many watches do not retry in step.
fn retry_wait(failures: u32) -> Duration {
    let step = RETRY_FIRST
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(RETRY_MAX);
    step.mul_f64(0.8 + 0.4 * rand::random::<f64>())
}

/// Objects per page of the initial lists; 0 for none. A start-up setting (`--watch-page-size`),
/// read by every watch.
static WATCH_PAGE_SIZE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(500);

/// Sets the page size of the watches' initial lists (0: unpaged), before any watch starts.
pub fn set_watch_page_size(objects: u32) {
    WATCH_PAGE_SIZE.store(objects, std::sync::atomic::Ordering::Relaxed);
}

/// How every watch of the operator lists and watches. Paged (the default, 500 objects), each page
/// is decoded before the next is asked for, so the list never holds more than a page's body;
/// kube's client then drops `resourceVersion=0` (a limit with it would be ignored), and the
/// pages are read from etcd. Unpaged, the list is served from the API server's watch cache
/// (`resourceVersion=0`, as client-go's informers do): faster, but the whole body is held while
/// it is decoded (bench/README.md compares the two).
pub fn watch_config() -> watcher::Config {
    let mut config = watcher::Config::default().any_semantic();
    config.page_size = match WATCH_PAGE_SIZE.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        objects => Some(objects),
    };
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn gone() -> watcher::Error {
        watcher::Error::WatchError(
            Status::failure("too old resource version", "Expired")
                .with_code(410)
                .boxed(),
        )
    }

    fn refused() -> watcher::Error {
        watcher::Error::WatchStartFailed(kube::Error::Api(
            Status::failure("the server is unavailable", "ServiceUnavailable")
                .with_code(503)
                .boxed(),
        ))
    }

    /// The watch's events come through in order and its errors never do; a `410 Gone` is
    /// answered at once, any other failure after a backoff that the next event resets.
    #[tokio::test(start_paused = true)]
    async fn a_persisted_watch_never_yields_an_error_and_waits_only_after_real_failures() {
        use watcher::Event;
        let events = futures::stream::iter(vec![
            Ok(Event::Init),
            Ok(Event::InitApply(1)),
            Ok(Event::InitDone),
            Err(gone()),
            Ok(Event::Init),
            Ok(Event::InitDone),
            Err(refused()),
            Err(refused()),
            Ok(Event::Apply(2)),
            Err(refused()),
            Ok(Event::Delete(2)),
        ]);
        let mut persisted = std::pin::pin!(persist("test".to_owned(), events));
        let mut next = async || {
            let started = tokio::time::Instant::now();
            let event = persisted
                .next()
                .await
                .expect("an event")
                .expect("never an error");
            (event, started.elapsed())
        };
        for _ in 0..3 {
            assert_eq!(next().await.1, Duration::ZERO);
        }
        let (relist, waited) = next().await;
        assert!(matches!(relist, Event::Init), "410 Gone: listed again");
        assert_eq!(waited, Duration::ZERO, "at once");
        assert!(matches!(next().await.0, Event::InitDone));
        let (applied, waited) = next().await;
        assert!(matches!(applied, Event::Apply(2)));
        let two_failures = RETRY_FIRST.mul_f64(0.8) + RETRY_FIRST.saturating_mul(2).mul_f64(0.8);
        assert!(waited >= two_failures, "backed off twice: {waited:?}");
        let (deleted, waited) = next().await;
        assert!(matches!(deleted, Event::Delete(2)));
        assert!(
            waited < RETRY_FIRST.mul_f64(1.2) + Duration::from_millis(1),
            "the event in between reset the backoff: {waited:?}"
        );
        assert!(persisted.next().await.is_none(), "ends with the watch");
    }

    #[test]
    fn only_a_410_the_watcher_lists_again_after_skips_the_backoff() {
        assert!(is_gone(&gone()));
        let expired_page = Status::failure("continue token expired", "Expired").with_code(410);
        assert!(is_gone(&watcher::Error::InitialListFailed(
            kube::Error::Api(expired_page.clone().boxed())
        )));
        assert!(!is_gone(&watcher::Error::WatchStartFailed(
            kube::Error::Api(expired_page.boxed())
        )));
        assert!(!is_gone(&refused()));
    }

    #[test]
    fn retries_back_off_to_a_bound() {
        assert!(retry_wait(0) <= RETRY_FIRST.mul_f64(1.2));
        assert!(retry_wait(3) >= RETRY_FIRST.saturating_mul(8).mul_f64(0.8));
        assert!(retry_wait(u32::MAX) <= RETRY_MAX.mul_f64(1.2));
    }

    #[test]
    fn watches_list_in_pages_unless_the_page_size_is_zero() {
        // kube drops resourceVersion=0 from a list with a limit, so unpaged is what reaches
        // the API server's watch cache.
        let paged = watch_config();
        assert_eq!(paged.page_size, Some(500));
        set_watch_page_size(0);
        let unpaged = watch_config();
        set_watch_page_size(500);
        assert_eq!(unpaged.page_size, None);
        assert!(matches!(unpaged.list_semantic, watcher::ListSemantic::Any));
    }
}
