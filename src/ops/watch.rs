//! How every watch of the operator lists and watches: decoded lean ([`lean::Lean`]: no
//! managedFields, no last-applied copy), with the initial list paged.

use futures::TryStreamExt;
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
/// last-applied annotation never decoded).
pub fn watch<K: Watched>(
    api: kube::Api<K>,
) -> impl futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static {
    let lean_api: kube::Api<lean::Lean<K>> = match api.namespace().map(str::to_owned) {
        Some(namespace) => kube::Api::namespaced(api.into_client(), &namespace),
        None => kube::Api::all(api.into_client()),
    };
    watcher::watcher(lean_api, watch_config()).map_ok(|event| match event {
        watcher::Event::Apply(lean::Lean(object)) => watcher::Event::Apply(object),
        watcher::Event::Delete(lean::Lean(object)) => watcher::Event::Delete(object),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(lean::Lean(object)) => watcher::Event::InitApply(object),
        watcher::Event::InitDone => watcher::Event::InitDone,
    })
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
