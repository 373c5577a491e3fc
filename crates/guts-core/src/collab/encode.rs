//! The canonical encoding of the collaboration state, part of
//! [`crate::RepoState::encode`] (its decoder is `fold::decode::parts`), and of the
//! parts the store keeps apart to serve issue lists without a state: one thread with
//! its id ([`Thread::encode_row`]) and a repository's labels ([`Collab::encode_labels`]).

use imbl::OrdMap;

use crate::codec::Writer;
use crate::ids::OpId;

use super::{Collab, LabelDef, TextRef, Thread};

/// Version byte leading [`Thread::encode_row`] and [`Collab::encode_labels`].
pub const ROW_FORMAT_VERSION: u8 = 1;

impl Collab {
    /// Appends the canonical encoding (for [`crate::RepoState::encode`]).
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.long_count(self.threads.len());
        for (id, t) in &self.threads {
            w.fixed(id.as_bytes());
            encode_thread(w, t);
        }
        w.long_count(self.comments.len());
        for (id, c) in &self.comments {
            w.fixed(id.as_bytes());
            w.fixed(c.thread.as_bytes());
            w.fixed(c.author.as_bytes());
            encode_text(w, &c.body);
            w.hlc(c.created_at);
            w.hlc(c.updated_at);
        }
        encode_labels(w, &self.labels);
        w.long_count(self.reviews.len());
        for (id, r) in &self.reviews {
            w.fixed(id.as_bytes());
            w.fixed(r.pull.as_bytes());
            w.fixed(r.author.as_bytes());
            w.u8(crate::codec::verdict_tag(r.verdict));
            encode_text(w, &r.body);
            w.fixed(r.commit.as_bytes());
            w.hlc(r.at);
            w.long_count(r.comments.len());
            for c in &r.comments {
                w.long_bytes(c.path.as_bytes());
                w.u32(c.line);
                encode_text(w, &c.body);
            }
            w.option_tag(r.role.is_some());
            if let Some(role) = r.role {
                w.u8(crate::codec::role_tag(role));
            }
        }
    }

    /// The label definitions alone (`Thread::decode_row`'s companion
    /// `Collab::decode_labels` reads them back).
    pub fn encode_labels(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(ROW_FORMAT_VERSION);
        encode_labels(&mut w, &self.labels);
        w.into_bytes()
    }
}

impl Thread {
    /// Thread `id` alone: its canonical encoding, then a pull request's requested
    /// reviewers (which the state encodes in a section of its own). `Thread::decode_row`
    /// reads it back exactly.
    pub fn encode_row(&self, id: &OpId) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(ROW_FORMAT_VERSION);
        w.fixed(id.as_bytes());
        encode_thread(&mut w, self);
        if let Some(pull) = &self.pull {
            w.long_count(pull.requested.len());
            for key in &pull.requested {
                w.fixed(key.as_bytes());
            }
        }
        w.into_bytes()
    }
}

fn encode_labels(w: &mut Writer, labels: &OrdMap<String, LabelDef>) {
    w.long_count(labels.len());
    for (key, l) in labels {
        w.long_bytes(key.as_bytes());
        w.long_bytes(l.name.as_bytes());
        w.long_bytes(l.color.as_bytes());
        w.long_bytes(l.description.as_bytes());
    }
}

fn encode_thread(w: &mut Writer, t: &Thread) {
    w.u64(t.number);
    w.fixed(t.author.as_bytes());
    w.long_bytes(t.title.as_bytes());
    encode_text(w, &t.body);
    w.hlc(t.created_at);
    w.hlc(t.updated_at);
    w.bool(t.open);
    w.option_tag(t.closed.is_some());
    if let Some((at, by)) = &t.closed {
        w.hlc(*at);
        w.fixed(by.as_bytes());
    }
    w.bool(t.locked);
    w.long_count(t.labels.len());
    for label in &t.labels {
        w.long_bytes(label.as_bytes());
    }
    w.long_count(t.assignees.len());
    for key in &t.assignees {
        w.fixed(key.as_bytes());
    }
    w.long_count(t.comments.len());
    for id in &t.comments {
        w.fixed(id.as_bytes());
    }
    w.option_tag(t.pull.is_some());
    if let Some(p) = &t.pull {
        w.long_bytes(p.head.as_bytes());
        w.long_bytes(p.base.as_bytes());
        w.fixed(p.head_sha.as_bytes());
        w.fixed(p.base_sha.as_bytes());
        w.bool(p.draft);
        w.long_count(p.reviews.len());
        for id in &p.reviews {
            w.fixed(id.as_bytes());
        }
        w.option_tag(p.merged.is_some());
        if let Some(m) = &p.merged {
            w.fixed(m.by.as_bytes());
            w.hlc(m.at);
            w.u8(crate::codec::merge_method_tag(m.method));
            w.fixed(m.head.as_bytes());
            w.fixed(m.commit.as_bytes());
        }
    }
}

fn encode_text(w: &mut Writer, text: &TextRef) {
    w.fixed(text.op.as_bytes());
    w.u32(text.part);
    w.u32(text.len);
}
