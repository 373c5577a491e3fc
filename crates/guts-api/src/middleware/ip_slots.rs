//! Git requests in flight per client IP: counted slots that give themselves back when
//! dropped, apart from the git edge that takes them, so the state can hold them
//! without importing a middleware.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts of git requests in flight per client IP. The map holds only addresses with a
/// request in flight, so its size is bounded by the in-flight limit.
#[derive(Debug)]
pub(crate) struct IpSlots {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl IpSlots {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for `ip`, or `None` when it already holds its maximum.
    pub(crate) fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            slots: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn in_flight(&self, ip: IpAddr) -> usize {
        self.held
            .lock()
            .map_or(0, |h| h.get(&ip).copied().unwrap_or(0))
    }
}

/// One git request in flight from an address; given back on drop.
#[derive(Debug)]
pub(crate) struct IpSlot {
    slots: Arc<IpSlots>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let slots = Arc::new(IpSlots::new(2));
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let first = slots.try_take(a).unwrap();
        let _second = slots.try_take(a).unwrap();
        assert!(slots.try_take(a).is_none(), "a third from one address");
        let _other = slots.try_take(b).unwrap();
        drop(first);
        assert_eq!(slots.in_flight(a), 1);
        let _again = slots.try_take(a).unwrap();
        assert_eq!(slots.in_flight(a), 2);
    }

    #[test]
    fn an_address_without_requests_leaves_no_entry() {
        let slots = Arc::new(IpSlots::new(1));
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        drop(slots.try_take(a).unwrap());
        assert!(slots.held.lock().unwrap().is_empty());
    }
}
