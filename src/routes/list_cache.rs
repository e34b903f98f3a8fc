//! Answers to `GET /tasks` kept in memory, each labelled with the owner's
//! `tasks_version` it was read at. The bearer middleware reads the current
//! version from the database on every request (in its one query), so a kept
//! answer is served only while no task of that owner has changed since: on
//! any instance, and however the change was made. A changed version is a
//! miss, and the list is read again.
//!
//! Why a kept answer is never older than its label: the version is read
//! before the list (the auth statement runs first), so the list reflects at
//! least that version; it may reflect a newer one, which is harmless, since a
//! request carrying the newer version will not match the older label.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use actix_web::web::Bytes;

/// What identifies one list of one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub completed: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

/// A serialised page and its `X-Total-Count`.
#[derive(Debug, Clone)]
pub struct CachedList {
    pub total: i64,
    pub body: Bytes,
}

/// Bookkeeping per kept list beyond its body (key, total, map slot), roughly.
const ENTRY_OVERHEAD: usize = 96;

/// Bounded by the bytes it holds; `budget` 0 turns it off.
#[derive(Debug)]
pub struct TaskListCache {
    budget: usize,
    inner: Mutex<Owners>,
}

#[derive(Debug, Default)]
struct Owners {
    by_owner: HashMap<i64, OwnerLists>,
    bytes: usize,
}

/// One owner's lists, all read at the same version: a newer version drops them.
#[derive(Debug)]
struct OwnerLists {
    version: i64,
    lists: HashMap<ListKey, CachedList>,
    bytes: usize,
}

fn cost(list: &CachedList) -> usize {
    list.body.len() + ENTRY_OVERHEAD
}

impl OwnerLists {
    /// Drops every list; returns the bytes freed.
    fn clear(&mut self) -> usize {
        self.lists.clear();
        std::mem::take(&mut self.bytes)
    }
}

impl TaskListCache {
    pub fn new(budget: usize) -> TaskListCache {
        TaskListCache {
            budget,
            inner: Mutex::default(),
        }
    }

    /// The list as kept, if it was read at exactly `version`.
    pub fn get(&self, owner: i64, version: i64, key: &ListKey) -> Option<CachedList> {
        if self.budget == 0 {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let lists = inner.by_owner.get(&owner)?;
        if lists.version != version {
            return None;
        }
        lists.lists.get(key).cloned()
    }

    /// Keeps `list`, read at `version`, making room by dropping other owners'
    /// lists. A list older than one already kept for the owner is not kept.
    pub fn put(&self, owner: i64, version: i64, key: ListKey, list: CachedList) {
        let size = cost(&list);
        if size > self.budget {
            return;
        }
        // A panic while holding the lock leaves counts that are at worst
        // approximate; nothing here can make an answer wrong.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *inner;
        match inner.by_owner.get_mut(&owner) {
            Some(lists) if lists.version > version => return,
            Some(lists) if lists.version < version => {
                inner.bytes -= lists.clear();
                lists.version = version;
            }
            Some(lists) => {
                if let Some(old) = lists.lists.remove(&key) {
                    lists.bytes -= cost(&old);
                    inner.bytes -= cost(&old);
                }
            }
            None => {}
        }
        while inner.bytes + size > self.budget {
            // Any other owner will do: HashMap's order is as good as random here.
            let victim = inner.by_owner.keys().copied().find(|&o| o != owner);
            match victim.and_then(|o| inner.by_owner.remove(&o)) {
                Some(evicted) => inner.bytes -= evicted.bytes,
                None => {
                    // Only this owner's lists are left: drop them all.
                    if let Some(lists) = inner.by_owner.get_mut(&owner) {
                        inner.bytes -= lists.clear();
                    }
                    break;
                }
            }
        }
        let lists = inner.by_owner.entry(owner).or_insert_with(|| OwnerLists {
            version,
            lists: HashMap::new(),
            bytes: 0,
        });
        lists.lists.insert(key, list);
        lists.bytes += size;
        inner.bytes += size;
    }

    /// Bytes held, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: ListKey = ListKey {
        completed: None,
        limit: 50,
        offset: 0,
    };

    fn list(body: &'static str) -> CachedList {
        CachedList {
            total: 1,
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn a_list_is_served_only_at_the_version_it_was_read_at() {
        let cache = TaskListCache::new(1 << 20);
        cache.put(1, 7, KEY, list("[1]"));
        assert_eq!(cache.get(1, 7, &KEY).map(|l| l.body), Some("[1]".into()));
        assert!(cache.get(1, 8, &KEY).is_none());
        assert!(cache.get(1, 6, &KEY).is_none());
        assert!(cache.get(2, 7, &KEY).is_none());
        let other = ListKey { offset: 50, ..KEY };
        assert!(cache.get(1, 7, &other).is_none());
    }

    #[test]
    fn a_newer_version_drops_the_owners_older_lists_and_an_older_one_is_not_kept() {
        let cache = TaskListCache::new(1 << 20);
        let other = ListKey {
            completed: Some(true),
            ..KEY
        };
        cache.put(1, 7, KEY, list("[1]"));
        cache.put(1, 7, other, list("[2]"));
        cache.put(1, 8, KEY, list("[3]"));
        assert!(cache.get(1, 7, &other).is_none());
        assert_eq!(cache.bytes(), 3 + ENTRY_OVERHEAD);
        cache.put(1, 7, other, list("[2]"));
        assert!(cache.get(1, 7, &other).is_none());
        assert_eq!(cache.get(1, 8, &KEY).map(|l| l.body), Some("[3]".into()));
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let budget = 3 * (3 + ENTRY_OVERHEAD);
        let cache = TaskListCache::new(budget);
        for owner in 0..100 {
            cache.put(owner, 1, KEY, list("[1]"));
            assert!(cache.bytes() <= budget);
            assert!(cache.get(owner, 1, &KEY).is_some(), "the newest is kept");
        }
        // One owner with more lists than fit: still bounded.
        for offset in 0..10 {
            cache.put(5, 2, ListKey { offset, ..KEY }, list("[1]"));
            assert!(cache.bytes() <= budget);
        }
        assert_eq!(
            cache.bytes(),
            cache
                .inner
                .lock()
                .unwrap()
                .by_owner
                .values()
                .map(|o| o.bytes)
                .sum::<usize>()
        );
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = TaskListCache::new(0);
        cache.put(1, 1, KEY, list("[]"));
        assert!(cache.get(1, 1, &KEY).is_none());
        assert_eq!(cache.bytes(), 0);
    }
}
