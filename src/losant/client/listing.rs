//! Reads across pages: every integration of an application, or every one with a given name.

use super::{Client, Listing, MAX_PER_PAGE};
use crate::losant::encode;
use crate::losant::enums::{FilterField, SortDirection, SortField};
use crate::losant::error::Error;
use crate::losant::model::{Integration, IntegrationPage, ListQuery};

/// How often a list that changes while it is paged is read again before giving up.
const LIST_RESTARTS: u32 = 3;
/// The most integrations one application is taken to hold: far more than any real one (each is
/// a live connection Losant keeps open). A list claiming or yielding more is a broken or lying
/// server, and reading on would only spend memory and requests.
pub const MAX_LISTED_INTEGRATIONS: u64 = 50_000;
/// The most pages one list reads: [`MAX_LISTED_INTEGRATIONS`] at pages of 50, the smallest a
/// server is taken to clamp to, so a server whose pages hold one item each is stopped too.
pub const MAX_LIST_PAGES: u64 = MAX_LISTED_INTEGRATIONS / 50;

impl Client {
    /// Every integration named exactly `name` (byte-equal), across all pages.
    ///
    /// The server-side filter is a glob, so it is built to match a superset (see
    /// [`encode::name_filter`]) and exact matches are kept here.
    ///
    /// # Errors
    /// Besides request errors, [`Error::Decode`] when an item that could be this name cannot be
    /// read: treating it as absent could lead to a duplicate.
    pub async fn find_by_name(
        &self,
        application_id: &str,
        name: &str,
    ) -> Result<Vec<Integration>, Error> {
        let query = ListQuery {
            filter_field: Some(FilterField::Name),
            filter: Some(encode::name_filter(name)),
            ..ListQuery::default()
        };
        let pages = self.all_pages(application_id, query).await?;
        let mut found = Vec::new();
        for page in pages {
            // An item that may carry this name but cannot be read could be the one looked for.
            let unreadable = page
                .unreadable
                .iter()
                .filter(|item| item.name.as_deref().is_none_or(|n| n == name))
                .count();
            if unreadable > 0 {
                return Err(Error::Decode {
                    status: 200,
                    reason: format!(
                        "{unreadable} listed item(s) that may have this name could not be read"
                    ),
                });
            }
            found.extend(page.items.into_iter().filter(|item| item.name == name));
        }
        Ok(found)
    }

    /// Every integration of the application, across all pages. Items that cannot be identified
    /// are left out and logged.
    pub async fn list_all(&self, application_id: &str) -> Result<Vec<Integration>, Error> {
        Ok(self.list_everything(application_id).await?.items)
    }

    /// Every integration of the application (all pages), with the names of the items that
    /// could not be read (logged and left out of `items`), so a lookup by name can tell that an
    /// unreadable item might be the one it looks for.
    pub async fn list_everything(&self, application_id: &str) -> Result<Listing, Error> {
        let pages = self.all_pages(application_id, ListQuery::default()).await?;
        let mut all = Listing::default();
        for page in pages {
            for unreadable in &page.unreadable {
                tracing::warn!(
                    application_id,
                    page = page.page,
                    index = unreadable.index,
                    reason = unreadable.reason,
                    "skipping unreadable integration in list"
                );
                all.unreadable_names.push(unreadable.name.clone());
            }
            all.items.extend(page.items);
        }
        Ok(all)
    }

    /// Reads every page of `query`, driven by the server's own `count`, `perPage` and
    /// `totalCount` (it may clamp the page size). Pages are sorted by id so items created meanwhile
    /// land at the end; if the total changes mid-way an item may have shifted between pages, so
    /// the read starts over. A total above [`MAX_LISTED_INTEGRATIONS`], or more pages than
    /// [`MAX_LIST_PAGES`], is [`Error::EndlessList`].
    async fn all_pages(
        &self,
        application_id: &str,
        mut query: ListQuery,
    ) -> Result<Vec<IntegrationPage>, Error> {
        query.sort_field = Some(SortField::Id);
        query.sort_direction = Some(SortDirection::Asc);
        query.per_page = Some(MAX_PER_PAGE);
        'restart: for _ in 0..LIST_RESTARTS {
            let mut pages: Vec<IntegrationPage> = Vec::new();
            let mut seen = 0u64;
            loop {
                query.page = Some(pages.len() as u64);
                let page = self.list(application_id, &query).await?;
                if pages
                    .first()
                    .is_some_and(|first| first.total_count != page.total_count)
                {
                    continue 'restart;
                }
                seen += page.count;
                let read = pages.len() as u64 + 1;
                if page.total_count > MAX_LISTED_INTEGRATIONS
                    || seen > MAX_LISTED_INTEGRATIONS
                    || (read >= MAX_LIST_PAGES && seen < page.total_count)
                {
                    return Err(Error::EndlessList {
                        pages: read,
                        items: seen,
                        claimed: page.total_count,
                    });
                }
                let last =
                    page.count == 0 || page.count < page.per_page || seen >= page.total_count;
                pages.push(page);
                if last {
                    return Ok(pages);
                }
            }
        }
        Err(Error::UnstableList)
    }
}
