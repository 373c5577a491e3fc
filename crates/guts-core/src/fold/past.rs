//! The causal past of each operation as interned bit sets of the accepted ACL
//! operations among its ancestors, and the ACL each set produces (see "Permissions in
//! the causal past" in `fold.rs`): kept apart from the rules that consult it.

use std::collections::BTreeMap;

use super::{Acl, OpInfo};
use crate::identity::PublicKey;
use crate::op::Role;

/// One ACL change.
#[derive(Debug, Clone, Copy)]
pub(super) enum AclEffect {
    /// A collaborator gets a role, or is removed when `None`.
    Collaborator(PublicKey, Option<Role>),
    /// A user's access through the organization; `None`: they left it, which ends
    /// their collaborator role too.
    Org(PublicKey, Option<Role>),
}

/// Interned causal-past sets and the ACL each produces. Set 0 is the empty past.
#[derive(Debug, Clone)]
pub(super) struct Pasts {
    sets: Vec<(Vec<u64>, Acl)>,
    lookup: BTreeMap<Vec<u64>, usize>,
}

impl Pasts {
    pub(super) fn new() -> Self {
        Self {
            sets: vec![(Vec::new(), Acl::default())],
            lookup: BTreeMap::from([(Vec::new(), 0)]),
        }
    }

    /// One past, set 0, producing `acl`: the past of an operation that descends from
    /// every operation folded so far, whose ACL is the state's (see `frontier`). Not to
    /// be combined further.
    pub(super) fn everything(acl: Acl) -> Self {
        Self {
            sets: vec![(Vec::new(), acl)],
            lookup: BTreeMap::new(),
        }
    }

    fn bits(&self, past: usize) -> &[u64] {
        self.sets.get(past).map_or(&[], |(bits, _)| bits)
    }

    pub(super) fn acl(&self, past: usize) -> Option<&Acl> {
        self.sets.get(past).map(|(_, acl)| acl)
    }

    /// The past of an operation with these parents.
    pub(super) fn combine(
        &mut self,
        parents: &[usize],
        info: &[OpInfo],
        effects: &[AclEffect],
    ) -> usize {
        let parent_info: Vec<OpInfo> = parents
            .iter()
            .filter_map(|&p| info.get(p).copied())
            .collect();
        let Some(first) = parent_info.first().copied() else {
            return 0;
        };
        // Fast path, the common case: no parent is an ACL operation and all parents
        // share one past (a linear history, or a merge of branches with the same ACL).
        if parent_info
            .iter()
            .all(|p| p.acl_bit.is_none() && p.past == first.past)
        {
            return first.past;
        }
        let mut bits = self.bits(first.past).to_vec();
        for parent in &parent_info {
            or_into(&mut bits, self.bits(parent.past));
            if let Some(bit) = parent.acl_bit {
                set_bit(&mut bits, bit);
            }
        }
        while bits.last() == Some(&0) {
            bits.pop();
        }
        if let Some(&known) = self.lookup.get(&bits) {
            return known;
        }
        let acl = match (parent_info.as_slice(), first.acl_bit) {
            // One parent that is an ACL operation: its bit is above every bit of its
            // own past (it comes after its ancestors), so extend its ACL by one step.
            ([_], Some(bit)) => {
                let mut acl = self.acl(first.past).cloned().unwrap_or_default();
                if let Some(effect) = effects.get(bit) {
                    apply_effect(&mut acl, effect);
                }
                acl
            }
            _ => replay(&bits, effects),
        };
        let id = self.sets.len();
        self.sets.push((bits.clone(), acl));
        self.lookup.insert(bits, id);
        id
    }
}

fn or_into(bits: &mut Vec<u64>, other: &[u64]) {
    if bits.len() < other.len() {
        bits.resize(other.len(), 0);
    }
    for (word, extra) in bits.iter_mut().zip(other) {
        *word |= extra;
    }
}

fn set_bit(bits: &mut Vec<u64>, bit: usize) {
    let word = bit / 64;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    if let Some(w) = bits.get_mut(word) {
        *w |= 1 << (bit % 64);
    }
}

/// The ACL produced by the effects whose bits are set, in bit (= topological) order.
fn replay(bits: &[u64], effects: &[AclEffect]) -> Acl {
    let mut acl = Acl::default();
    for (w, &word) in bits.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            let bit = w * 64 + rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if let Some(effect) = effects.get(bit) {
                apply_effect(&mut acl, effect);
            }
        }
    }
    acl
}

pub(super) fn apply_effect(acl: &mut Acl, effect: &AclEffect) {
    match *effect {
        AclEffect::Collaborator(user, Some(role)) => {
            acl.collaborators.insert(user, role);
        }
        AclEffect::Collaborator(user, None) => {
            acl.collaborators.remove(&user);
        }
        AclEffect::Org(user, Some(role)) => {
            acl.org.insert(user, role);
        }
        AclEffect::Org(user, None) => {
            acl.org.remove(&user);
            acl.collaborators.remove(&user);
        }
    }
}
