//! Bodies of issues, pull requests, comments and reviews, read from the operation log
//! when they are rendered: the folded state names them ([`TextRef`]) rather than
//! keeping them (see `guts_core::collab`, "Bodies"), so a repository's state, its
//! checkpoint and the cache's budget do not grow with what people write.
//!
//! A text never changes once written (a reference names the operation that wrote it),
//! so the bodies read lately are kept in a small shared cache ([`TEXT_CACHE_BYTES`]):
//! a page everyone reads costs no store read, and nothing in it can go stale.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use guts_core::{SignedOp, TextRef};
use redb::ReadOnlyTable;

use super::Repositories;
use crate::db::Store;
use crate::error::StoreError;
use crate::schema::OPS;

/// Bytes of text the shared cache holds at most; past it, it starts over (a memo, not
/// a working set: the store is the fallback and is fast).
const TEXT_CACHE_BYTES: usize = 8 << 20;

/// Texts read lately, by reference.
#[derive(Debug, Default)]
pub(super) struct TextCache {
    texts: Mutex<(HashMap<TextRef, Arc<str>>, usize)>,
}

impl TextCache {
    fn get(&self, text: &TextRef) -> Option<Arc<str>> {
        self.texts.lock().ok()?.0.get(text).cloned()
    }

    fn put(&self, text: TextRef, value: Arc<str>) {
        if value.len() > TEXT_CACHE_BYTES / 64 {
            return;
        }
        if let Ok(mut guard) = self.texts.lock() {
            let (texts, bytes) = &mut *guard;
            if *bytes + value.len() > TEXT_CACHE_BYTES {
                texts.clear();
                *bytes = 0;
            }
            *bytes += value.len();
            texts.insert(text, value);
        }
    }
}

/// Reads texts: from the shared cache, else from one snapshot of the store, taken at
/// the first miss. Operations are never removed, so any snapshot taken after a state
/// was published holds every text that state names.
pub struct Texts {
    store: Store,
    cache: Arc<TextCache>,
    ops: OnceCell<ReadOnlyTable<&'static [u8], &'static [u8]>>,
    /// The operation read last: a review's inline comments are texts of one operation,
    /// and a page renders them in a row.
    last: RefCell<Option<SignedOp>>,
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texts").finish_non_exhaustive()
    }
}

impl Texts {
    /// The text `text` names. An empty one costs nothing; a missing operation or part
    /// is a corrupt store (the fold wrote the reference from that operation).
    pub fn get(&self, text: &TextRef) -> Result<String, StoreError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        if let Some(known) = self.cache.get(text) {
            return Ok(known.to_string());
        }
        let found = self.read(text)?;
        self.cache.put(*text, Arc::from(found.as_str()));
        Ok(found)
    }

    fn read(&self, text: &TextRef) -> Result<String, StoreError> {
        let ops = match self.ops.get() {
            Some(ops) => ops,
            None => {
                let opened = self.store.read()?.open_table(OPS)?;
                self.ops.get_or_init(|| opened)
            }
        };
        let mut last = self.last.borrow_mut();
        if last.as_ref().is_none_or(|op| op.id() != text.op) {
            let Some(bytes) = ops.get(text.op.as_bytes().as_slice())? else {
                return Err(StoreError::Corrupt(format!(
                    "operation {} holding a body is missing",
                    text.op
                )));
            };
            let op = SignedOp::decode_stored(bytes.value(), &text.op)
                .map_err(|e| StoreError::Corrupt(format!("stored operation {}: {e}", text.op)))?;
            *last = Some(op);
        }
        last.as_ref()
            .and_then(|op| op.op().payload.text(text.part))
            .map(str::to_owned)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("operation {} has no text {}", text.op, text.part))
            })
    }
}

impl Repositories {
    /// A reader of bodies: take it after the view whose references it resolves.
    pub fn texts(&self) -> Texts {
        Texts {
            store: self.store.clone(),
            cache: self.texts.clone(),
            ops: OnceCell::new(),
            last: RefCell::new(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guts_core::OpId;

    #[test]
    fn the_shared_cache_stays_within_its_bytes_and_keeps_what_it_was_given() {
        let cache = TextCache::default();
        let text = |n: u8| TextRef {
            op: OpId::from_bytes([n; 32]),
            part: 0,
            len: 1,
        };
        let body: Arc<str> = Arc::from("x".repeat(TEXT_CACHE_BYTES / 100).as_str());
        for n in 0..=255 {
            cache.put(text(n), body.clone());
            let held = cache.texts.lock().unwrap().1;
            assert!(held <= TEXT_CACHE_BYTES, "{held}");
            assert_eq!(cache.get(&text(n)).as_deref(), Some(&*body));
        }
        // A text too large to be worth holding is not held.
        let large: Arc<str> = Arc::from("y".repeat(TEXT_CACHE_BYTES / 32).as_str());
        cache.put(text(7), large);
        assert_ne!(
            cache.get(&text(7)).map(|t| t.len()),
            Some(TEXT_CACHE_BYTES / 32)
        );
    }
}
