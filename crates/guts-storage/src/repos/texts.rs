//! Bodies of issues, pull requests, comments and reviews, read from the operation log
//! when they are rendered: the folded state names them ([`TextRef`]) rather than
//! keeping them (see `guts_core::collab`, "Bodies"), so a repository's state, its
//! checkpoint and the cache's budget do not grow with what people write.

use std::cell::RefCell;

use guts_core::{SignedOp, TextRef};
use redb::ReadOnlyTable;

use super::Repositories;
use crate::error::StoreError;
use crate::schema::OPS;

/// Reads texts from one snapshot of the store. Operations are never removed, so any
/// snapshot taken after a state was published holds every text that state names.
pub struct Texts {
    ops: ReadOnlyTable<&'static [u8], &'static [u8]>,
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
        let mut last = self.last.borrow_mut();
        if last.as_ref().is_none_or(|op| op.id() != text.op) {
            let Some(bytes) = self.ops.get(text.op.as_bytes().as_slice())? else {
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
    /// A reader of bodies, on a snapshot taken now: take it after the view whose
    /// references it resolves.
    pub fn texts(&self) -> Result<Texts, StoreError> {
        Ok(Texts {
            ops: self.store.read()?.open_table(OPS)?,
            last: RefCell::new(None),
        })
    }
}
