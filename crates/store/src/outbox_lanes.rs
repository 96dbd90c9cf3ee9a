//! The outbox's lanes, kept in memory: which copy of each lane is next, when it is due, and
//! which lanes have a copy in flight.
//!
//! The database stays the authority — a copy is taken by a guarded `UPDATE` that refuses
//! anything not due, not first in its lane or already taken — but choosing what to take no
//! longer scans the outbox: with thousands of copies queued, the scan cost more than the
//! sending. A hub owns its database alone (see [`crate::Store::recover_outbox`]), so every
//! change to the outbox passes through this process's store, which keeps this index in step;
//! the guard and a periodic reconciliation catch whatever it missed.

use std::collections::{BTreeMap, HashMap, HashSet};

use switchboard_core::Platform;

/// A queued copy, as far as choosing the next one needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuedCopy {
    pub id: i64,
    pub lane: String,
    /// Its place in the lane (ties broken by `id`).
    pub order: i64,
    /// When it may be tried (milliseconds since the epoch).
    pub due: i64,
}

/// Whether the copies of `lane` (see `lane_of` in `relay.rs`: the conversation, a slash, the
/// platform) go to `platform`.
fn lane_goes_to(lane: &str, platform: Platform) -> bool {
    lane.rsplit_once('/')
        .is_some_and(|(_, destination)| destination == platform.as_str())
}

#[derive(Debug, Default)]
pub(crate) struct Lanes {
    /// Each lane's queued copies by place: (order, id) → due.
    lanes: HashMap<String, BTreeMap<(i64, i64), i64>>,
    /// Where each queued copy is: id → (lane, order).
    copies: HashMap<i64, (String, i64)>,
    /// The first copy of each lane with nothing in flight: (due, id) → lane.
    ready: BTreeMap<(i64, i64), String>,
    /// The `ready` key of each lane listed there.
    ready_key: HashMap<String, (i64, i64)>,
    /// Lanes with a copy in flight, or reserved for a copy about to be queued and taken.
    in_flight: HashSet<String>,
    /// Copies removed while a reconciliation reads the database: its snapshot may still hold
    /// them, and they must not come back.
    removed_during_reconciliation: Option<HashSet<i64>>,
    reconciliations: usize,
}

impl Lanes {
    /// Queues a copy, or updates where and when it is; a lane's first copy becomes ready.
    pub fn queue(&mut self, copy: QueuedCopy) {
        if let Some((lane, order)) = self.copies.get(&copy.id).cloned() {
            if let Some(queued) = self.lanes.get_mut(&lane) {
                queued.remove(&(order, copy.id));
            }
            self.refresh(&lane);
        }
        self.copies.insert(copy.id, (copy.lane.clone(), copy.order));
        self.lanes
            .entry(copy.lane.clone())
            .or_default()
            .insert((copy.order, copy.id), copy.due);
        self.refresh(&copy.lane);
    }

    /// Whether nothing of `lane` is queued nor in flight: a copy queued there now is first.
    pub fn is_idle(&self, lane: &str) -> bool {
        !self.in_flight.contains(lane) && self.lanes.get(lane).is_none_or(BTreeMap::is_empty)
    }

    /// Marks `lane` as in flight before its copy is queued, so that nothing else is taken
    /// from it meanwhile.
    pub fn reserve(&mut self, lane: &str) {
        self.in_flight.insert(lane.to_owned());
        self.refresh(lane);
    }

    /// The lane's copy is no longer in flight (it failed and waits for its retry, or a
    /// reservation was not used): the lane's first copy is ready again.
    pub fn release(&mut self, lane: &str) {
        self.in_flight.remove(lane);
        self.refresh(lane);
    }

    /// Takes up to `limit` copies due at `now`, each the first of a lane with nothing in
    /// flight, earliest due first, none to a platform in `busy`; their lanes are in flight
    /// from now on.
    pub fn take_due(&mut self, now: i64, limit: usize, busy: &[Platform]) -> Vec<QueuedCopy> {
        let due: Vec<((i64, i64), String)> = self
            .ready
            .range(..=(now, i64::MAX))
            .filter(|(_, lane)| !busy.iter().any(|platform| lane_goes_to(lane, *platform)))
            .take(limit)
            .map(|(key, lane)| (*key, lane.clone()))
            .collect();
        due.into_iter()
            .map(|((due, id), lane)| {
                self.in_flight.insert(lane.clone());
                self.refresh(&lane);
                let order = self.copies.get(&id).map_or(0, |(_, order)| *order);
                QueuedCopy {
                    id,
                    lane,
                    order,
                    due,
                }
            })
            .collect()
    }

    /// The copy's attempt ended without delivering it: it waits in its place until `due`,
    /// and its lane is free again.
    pub fn retry(&mut self, id: i64, due: i64) {
        let Some((lane, order)) = self.copies.get(&id).cloned() else {
            return;
        };
        self.in_flight.remove(&lane);
        self.queue(QueuedCopy {
            id,
            lane,
            order,
            due,
        });
    }

    /// When the earliest ready copy is due, if any is queued.
    pub fn next_due(&self) -> Option<i64> {
        self.ready.keys().next().map(|(due, _)| *due)
    }

    /// A copy left the outbox (delivered, or dead-lettered): its lane's next copy is ready.
    pub fn remove(&mut self, id: i64) {
        if let Some(removed) = &mut self.removed_during_reconciliation {
            removed.insert(id);
        }
        let Some((lane, order)) = self.copies.remove(&id) else {
            return;
        };
        if let Some(queued) = self.lanes.get_mut(&lane) {
            queued.remove(&(order, id));
            if queued.is_empty() {
                self.lanes.remove(&lane);
            }
        }
        self.in_flight.remove(&lane);
        self.refresh(&lane);
    }

    /// Copies the database holds and this index does not: a reconciliation's findings, read
    /// after [`Lanes::begin_reconciliation`]. Returns how many were missing.
    pub fn add_missing(&mut self, found: Vec<QueuedCopy>) -> usize {
        let mut added = 0;
        for copy in found {
            let removed_meanwhile = self
                .removed_during_reconciliation
                .as_ref()
                .is_some_and(|removed| removed.contains(&copy.id));
            if !removed_meanwhile && !self.copies.contains_key(&copy.id) {
                self.queue(copy);
                added += 1;
            }
        }
        added
    }

    /// A reconciliation starts reading the database: removals from now on are remembered until
    /// the last one running ends.
    pub fn begin_reconciliation(&mut self) {
        self.reconciliations += 1;
        self.removed_during_reconciliation.get_or_insert_default();
    }

    pub fn end_reconciliation(&mut self) {
        self.reconciliations = self.reconciliations.saturating_sub(1);
        if self.reconciliations == 0 {
            self.removed_during_reconciliation = None;
        }
    }

    /// Lists the lane's first copy as ready, or not, as the lane now stands.
    fn refresh(&mut self, lane: &str) {
        if let Some(key) = self.ready_key.remove(lane) {
            self.ready.remove(&key);
        }
        if self.in_flight.contains(lane) {
            return;
        }
        let first = self
            .lanes
            .get(lane)
            .and_then(|queued| queued.iter().next())
            .map(|((_, id), due)| (*due, *id));
        if let Some(key) = first {
            self.ready.insert(key, lane.to_owned());
            self.ready_key.insert(lane.to_owned(), key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(id: i64, lane: &str, order: i64, due: i64) -> QueuedCopy {
        QueuedCopy {
            id,
            lane: lane.to_owned(),
            order,
            due,
        }
    }

    fn ids(taken: &[QueuedCopy]) -> Vec<i64> {
        taken.iter().map(|c| c.id).collect()
    }

    #[test]
    fn each_lane_gives_its_first_copy_and_nothing_more_while_it_is_in_flight() {
        let mut lanes = Lanes::default();
        lanes.queue(copy(2, "a", 20, 0));
        lanes.queue(copy(1, "a", 10, 0));
        lanes.queue(copy(3, "b", 5, 0));
        assert_eq!(ids(&lanes.take_due(100, 10, &[])), vec![1, 3]);
        assert!(lanes.take_due(100, 10, &[]).is_empty());
        lanes.remove(1);
        assert_eq!(ids(&lanes.take_due(100, 10, &[])), vec![2]);
    }

    #[test]
    fn copies_to_a_busy_platform_wait_while_the_others_are_taken() {
        let mut lanes = Lanes::default();
        lanes.queue(copy(1, "c1/google_chat", 10, 0));
        lanes.queue(copy(2, "c2/google_chat", 10, 1));
        lanes.queue(copy(3, "c1/slack", 10, 2));
        lanes.queue(copy(4, "c2/teams", 10, 3));
        assert_eq!(
            ids(&lanes.take_due(100, 10, &[Platform::GoogleChat])),
            vec![3, 4]
        );
        assert_eq!(ids(&lanes.take_due(100, 10, &[])), vec![1, 2]);
    }

    #[test]
    fn a_copy_not_due_holds_its_lane_but_not_the_others() {
        let mut lanes = Lanes::default();
        lanes.queue(copy(1, "a", 10, 500));
        lanes.queue(copy(2, "a", 20, 0));
        lanes.queue(copy(3, "b", 10, 0));
        assert_eq!(ids(&lanes.take_due(100, 10, &[])), vec![3]);
        assert_eq!(lanes.next_due(), Some(500));
        assert_eq!(ids(&lanes.take_due(500, 10, &[])), vec![1]);
    }

    #[test]
    fn a_failed_copy_is_queued_again_for_its_retry_and_keeps_its_place() {
        let mut lanes = Lanes::default();
        lanes.queue(copy(1, "a", 10, 0));
        lanes.queue(copy(2, "a", 20, 0));
        assert_eq!(ids(&lanes.take_due(0, 10, &[])), vec![1]);
        lanes.queue(copy(1, "a", 10, 300));
        lanes.release("a");
        assert!(lanes.take_due(299, 10, &[]).is_empty());
        assert_eq!(ids(&lanes.take_due(300, 10, &[])), vec![1]);
    }

    #[test]
    fn earliest_due_goes_first_and_the_limit_holds() {
        let mut lanes = Lanes::default();
        lanes.queue(copy(1, "a", 10, 30));
        lanes.queue(copy(2, "b", 10, 10));
        lanes.queue(copy(3, "c", 10, 20));
        assert_eq!(ids(&lanes.take_due(100, 2, &[])), vec![2, 3]);
        assert_eq!(ids(&lanes.take_due(100, 2, &[])), vec![1]);
    }

    #[test]
    fn a_reserved_lane_is_not_idle_and_gives_nothing_until_released() {
        let mut lanes = Lanes::default();
        assert!(lanes.is_idle("a"));
        lanes.reserve("a");
        assert!(!lanes.is_idle("a"));
        lanes.queue(copy(1, "a", 10, 0));
        assert!(lanes.take_due(100, 10, &[]).is_empty());
        lanes.release("a");
        assert_eq!(ids(&lanes.take_due(100, 10, &[])), vec![1]);
    }

    #[test]
    fn a_reconciliation_adds_what_is_missing_but_not_what_was_removed_meanwhile() {
        let mut lanes = Lanes::default();
        lanes.queue(copy(1, "a", 10, 0));
        lanes.begin_reconciliation();
        lanes.remove(1);
        let added = lanes.add_missing(vec![copy(1, "a", 10, 0), copy(2, "b", 10, 0)]);
        lanes.end_reconciliation();
        assert_eq!(added, 1);
        assert_eq!(ids(&lanes.take_due(100, 10, &[])), vec![2]);
        assert!(lanes.is_idle("a"));
    }
}
