//! GitHub pagination: `page` (from 1) and `per_page` (default 30, at most 100), an
//! absolute `Link` header with `first`, `prev`, `next`, `last`, and `X-Total-Count`.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};

use crate::error::ApiError;
use crate::links::Links;

pub const DEFAULT_PER_PAGE: usize = 30;
pub const MAX_PER_PAGE: usize = 100;

/// `page` and `per_page`, as the OpenAPI document describes them.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "describes the query; `Page` parses it")]
pub struct PageParams {
    /// Page number, from 1.
    #[param(minimum = 1)]
    page: Option<u32>,
    /// Items per page, at most 100 (default 30).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// The requested page. Like GitHub, values that are not numbers fall back to the
/// defaults, and `per_page` above the maximum is clamped.
#[derive(Debug, Clone)]
pub struct Page {
    pub page: usize,
    pub per_page: usize,
    links: Links,
    path: String,
    query: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(links) = Links::from_request_parts(parts, state).await;
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                q.split('&')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<usize>().ok())
        };
        Ok(Page {
            page: get("page").filter(|p| *p >= 1).unwrap_or(1),
            per_page: get("per_page")
                .filter(|p| *p >= 1)
                .unwrap_or(DEFAULT_PER_PAGE)
                .min(MAX_PER_PAGE),
            links,
            path: parts.uri.path().to_string(),
            query,
        })
    }
}

impl Page {
    /// Cuts `items` to this page and returns the headers that describe the others.
    pub fn apply<T>(&self, items: Vec<T>) -> (Vec<T>, HeaderMap) {
        let total = items.len();
        let last = total.div_ceil(self.per_page).max(1);
        let start = (self.page - 1).saturating_mul(self.per_page);
        let page: Vec<T> = items.into_iter().skip(start).take(self.per_page).collect();

        let mut rels = Vec::new();
        if self.page < last {
            rels.push(("next", self.page + 1));
            rels.push(("last", last));
        }
        if self.page > 1 {
            rels.push(("first", 1));
            rels.push(("prev", (self.page - 1).min(last)));
        }
        let mut headers = HeaderMap::new();
        let link = rels
            .iter()
            .map(|(rel, n)| format!("<{}>; rel=\"{rel}\"", self.url_for(*n)))
            .collect::<Vec<_>>()
            .join(", ");
        if !link.is_empty()
            && let Ok(value) = HeaderValue::from_str(&link)
        {
            headers.insert(http::header::LINK, value);
        }
        headers.insert("x-total-count", HeaderValue::from(total));
        (page, headers)
    }

    fn url_for(&self, page: usize) -> String {
        let mut query: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        query.push(format!("per_page={}", self.per_page));
        query.push(format!("page={page}"));
        format!("{}{}?{}", self.links.origin(), self.path, query.join("&"))
    }
}
