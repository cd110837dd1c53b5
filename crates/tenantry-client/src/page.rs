//! Cursor pagination: a list is a stream that fetches the next page when
//! the current one is used up, until `next_cursor` is null.

use crate::Client;
use crate::error::Error;
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use tenantry_api::Page;

/// `limit` (page size, 1–200) and a starting `cursor` of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl ListParams {
    pub fn limit(limit: u32) -> ListParams {
        ListParams {
            limit: Some(limit),
            cursor: None,
        }
    }
}

struct State<T> {
    client: Client,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    limit: Option<u32>,
    cursor: Option<String>,
    buffer: VecDeque<T>,
    done: bool,
}

/// One page of the list at `segments`.
pub(crate) async fn page<T: DeserializeOwned>(
    client: &Client,
    segments: &[&str],
    query: &[(String, String)],
    params: &ListParams,
) -> Result<Page<T>, Error> {
    let mut call = client.call(Method::GET, segments);
    for (k, v) in query {
        call = call.query(k, Some(v));
    }
    call.query("limit", params.limit)
        .query("cursor", params.cursor.as_deref())
        .send()
        .await
}

/// Every item of the list at `segments`, page after page.
pub(crate) fn stream<T: DeserializeOwned + Send + 'static>(
    client: &Client,
    segments: &[&str],
    query: Vec<(String, String)>,
    params: ListParams,
) -> BoxStream<'static, Result<T, Error>> {
    let state = State {
        client: client.clone(),
        segments: segments.iter().map(|s| (*s).to_owned()).collect(),
        query,
        limit: params.limit,
        cursor: params.cursor,
        buffer: VecDeque::new(),
        done: false,
    };
    stream::try_unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.buffer.pop_front() {
                return Ok(Some((item, st)));
            }
            if st.done {
                return Ok(None);
            }
            let segments: Vec<&str> = st.segments.iter().map(String::as_str).collect();
            let params = ListParams {
                limit: st.limit,
                cursor: st.cursor.take(),
            };
            let got: Page<T> = page(&st.client, &segments, &st.query, &params).await?;
            st.done = got.next_cursor.is_none();
            st.cursor = got.next_cursor;
            st.buffer.extend(got.data);
        }
    })
    .boxed()
}

/// A list stream's type.
pub type ItemStream<T> = BoxStream<'static, Result<T, Error>>;
