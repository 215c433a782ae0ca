//! The table of open requests.

use std::collections::{BTreeMap, VecDeque};

use super::Request;
use crate::command::RequestId;

/// Slack of the request table: runs of empty slots up to this long are kept.
pub(super) const SMALL: usize = 8;
/// The request table and the command queue give back capacity beyond this once empty
/// (after a storm), down to [`KEPT`]; up to it they keep it, so a steady load never
/// reallocates.
pub(super) const LARGE: usize = 32;
/// Capacity kept after giving memory back: room for one request or one command.
pub(super) const KEPT: usize = 1;

/// The open requests, by id. Ids are issued by the core in increasing order and most
/// requests end soon, in roughly that order: a ring of slots indexed by `id - base`
/// (O(1), contiguous, cache-friendly at any scale). A request that stays open while far
/// newer ones come and go (a "straggler") moves to an ordered side table, so one
/// long-lived request never pins a long run of empty slots. Memory follows the open
/// requests: the ring gives its capacity back once it empties.
#[derive(Clone, Debug, Default)]
pub(super) struct Requests {
    /// The id of `slots[0]`.
    pub(super) base: u64,
    pub(super) slots: VecDeque<Option<Request>>,
    /// Occupied slots.
    pub(super) occupied: usize,
    pub(super) stragglers: BTreeMap<u64, Request>,
}

impl Requests {
    pub(super) fn len(&self) -> usize {
        self.occupied + self.stragglers.len()
    }

    #[inline]
    pub(super) fn get(&self, id: RequestId) -> Option<&Request> {
        match id.0.checked_sub(self.base) {
            Some(index) => self.slots.get(usize::try_from(index).ok()?)?.as_ref(),
            None => self.stragglers.get(&id.0),
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, id: RequestId) -> Option<&mut Request> {
        match id.0.checked_sub(self.base) {
            Some(index) => self.slots.get_mut(usize::try_from(index).ok()?)?.as_mut(),
            None => self.stragglers.get_mut(&id.0),
        }
    }

    /// Inserts or replaces `id`'s entry. New ids are never smaller than any id seen.
    #[inline]
    pub(super) fn put(&mut self, id: RequestId, request: Request) {
        match self.get_mut(id) {
            Some(entry) => *entry = request,
            None => self.insert(id, request),
        }
    }

    /// Inserts `id`, which is not in the table and not smaller than any id seen.
    pub(super) fn insert(&mut self, id: RequestId, request: Request) {
        if self.slots.is_empty() {
            self.base = id.0;
        }
        let Some(index) = id.0.checked_sub(self.base) else {
            self.stragglers.insert(id.0, request);
            return;
        };
        let gap = index.saturating_sub(self.slots.len() as u64);
        if gap > (self.slots.len() as u64).max(SMALL as u64) {
            // A long run of ids that never entered the table (e.g. submits while logged
            // out): move what is here aside instead of filling the run with empty slots.
            self.evict_front(self.slots.len());
            self.base = id.0;
        }
        while (self.slots.len() as u64) < id.0 - self.base {
            self.slots.push_back(None);
        }
        self.slots.push_back(Some(request));
        self.occupied += 1;
    }

    /// Removes `id`'s entry, if any.
    #[inline]
    pub(super) fn remove(&mut self, id: RequestId) {
        if id.0 == self.base && matches!(self.slots.front(), Some(Some(_))) {
            // The oldest open request ends (requests mostly end in the order they began).
            self.slots.pop_front();
            self.base += 1;
            self.occupied -= 1;
            if !matches!(self.slots.front(), Some(Some(_))) {
                self.tidy();
            }
        } else {
            self.remove_other(id);
        }
    }

    #[inline(never)]
    pub(super) fn remove_other(&mut self, id: RequestId) {
        let Some(index) = id.0.checked_sub(self.base) else {
            self.stragglers.remove(&id.0);
            return;
        };
        let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
        else {
            return;
        };
        if slot.take().is_none() {
            return;
        }
        self.occupied -= 1;
        self.tidy();
    }

    /// After a removal: drops the empty front, moves stragglers aside when the ring is
    /// mostly holes, gives memory back once it empties.
    #[inline(never)]
    pub(super) fn tidy(&mut self) {
        self.trim_front();
        if self.slots.len() > 2 * self.occupied + 2 * SMALL {
            // Mostly holes: the oldest open requests are stragglers.
            self.evict_front(self.slots.len() - 2 * self.occupied);
        }
        if self.slots.is_empty() && self.slots.capacity() > LARGE {
            self.slots.shrink_to(KEPT);
        }
    }

    /// Moves the first `n` slots out of the ring (open ones to the side table).
    pub(super) fn evict_front(&mut self, n: usize) {
        for _ in 0..n {
            let Some(slot) = self.slots.pop_front() else {
                break;
            };
            if let Some(request) = slot {
                self.stragglers.insert(self.base, request);
                self.occupied -= 1;
            }
            self.base += 1;
        }
        self.trim_front();
    }

    pub(super) fn trim_front(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// Every open request, in increasing id order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (RequestId, &Request)> {
        let ring = self
            .slots
            .iter()
            .zip(self.base..)
            .filter_map(|(s, id)| s.as_ref().map(|r| (RequestId(id), r)));
        self.stragglers
            .iter()
            .map(|(&id, r)| (RequestId(id), r))
            .chain(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Timestamp;
    use crate::coordinator::{Progress, RequestState, Ticket};

    fn waiting(deadline: Timestamp) -> Request {
        Request {
            ticket: Ticket {
                replayable: true,
                refresh: true,
                replays: 0,
                progress: Progress::New,
                route: None,
            },
            state: RequestState::Waiting {
                deadline,
                prev: None,
                next: None,
            },
        }
    }

    #[test]
    fn request_table_moves_stragglers_aside_and_gives_memory_back() {
        let mut t = Requests::default();
        for id in 1..=10_000 {
            t.put(RequestId(id), waiting(id));
        }
        assert_eq!(t.len(), 10_000);
        // Everything but request 1 ends: 1 is a straggler, the ring empties.
        for id in 2..=10_000 {
            t.remove(RequestId(id));
        }
        assert_eq!(t.len(), 1);
        assert!(t.slots.capacity() <= KEPT, "{}", t.slots.capacity());
        assert_eq!(t.get(RequestId(1)), Some(&waiting(1)));
        // New ids keep working next to the straggler.
        t.put(RequestId(10_001), waiting(7));
        assert_eq!(
            t.iter().map(|(id, _)| id.0).collect::<Vec<_>>(),
            [1, 10_001]
        );
        t.remove(RequestId(1));
        t.remove(RequestId(10_001));
        assert_eq!((t.len(), t.stragglers.len(), t.slots.len()), (0, 0, 0));
    }

    #[test]
    fn a_long_run_of_unused_ids_does_not_fill_the_ring() {
        let mut t = Requests::default();
        t.put(RequestId(1), waiting(1));
        t.put(RequestId(1_000_000), waiting(2));
        assert!(t.slots.len() <= 2, "{}", t.slots.len());
        assert_eq!(t.get(RequestId(1)), Some(&waiting(1)));
        assert_eq!(t.get(RequestId(1_000_000)), Some(&waiting(2)));
        assert_eq!(t.get(RequestId(500)), None);
    }

    /// The table's thresholds, to the slot: a ring of 32 requests of which four stay open
    /// (1, 17, 23, 30) while the others end in a scattered order, then a request far
    /// ahead. Where it stops moving old requests aside, how many it moves, and when a far
    /// id clears the ring are each visible in the final layout (the sequence was chosen so
    /// that every change of `tidy`'s or `insert`'s comparisons and arithmetic gives
    /// another one).
    #[test]
    fn the_table_moves_exactly_its_stragglers_aside() {
        let mut t = Requests::default();
        for id in 1..=32 {
            t.put(RequestId(id), waiting(id));
        }
        for id in [
            3, 15, 28, 26, 7, 2, 9, 5, 29, 32, 11, 25, 22, 4, 6, 18, 20, 31, 19, 13, 10, 12, 27,
            16, 14, 21, 8, 24,
        ] {
            t.remove(RequestId(id));
        }
        t.put(RequestId(43), waiting(43));
        assert_eq!(
            (
                t.base,
                t.slots.len(),
                t.stragglers.keys().copied().collect::<Vec<_>>(),
                t.occupied
            ),
            (23, 21, vec![1, 17], 3)
        );
        for id in [1, 17, 23, 30, 43] {
            assert_eq!(t.get(RequestId(id)), Some(&waiting(id)), "{id}");
        }
    }
}
