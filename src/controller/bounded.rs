//! The one bound every memo of the controllers obeys: at most `capacity` entries, and a new key
//! in a full map evicts another entry. Everything kept here can be recomputed (a Losant client,
//! when a token was last verified, a failure count), so an eviction costs one recomputation;
//! rotated tokens and deleted objects leave entries nobody asks for again, and the bound keeps
//! them from growing without end.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A map of recomputable values with a bounded number of entries.
#[derive(Debug)]
pub struct Bounded<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    /// An empty map that holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value of `key`, if kept.
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    /// Keeps `value` for `key`, evicting another entry when the map is full.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        make_room(&mut entries, &key, self.capacity);
        entries.insert(key, value);
    }

    /// Changes the value of `key` (starting from `V::default()`) and returns what `change`
    /// returns, evicting another entry when a new key finds the map full.
    pub fn update<R>(&self, key: K, change: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        let mut entries = self.lock();
        make_room(&mut entries, &key, self.capacity);
        change(entries.entry(key).or_default())
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Evicts one entry (whichever the map yields first) if `key` is new and the map is full.
fn make_room<K: Eq + Hash + Clone, V>(entries: &mut HashMap<K, V>, key: &K, capacity: usize) {
    if entries.len() >= capacity && !entries.contains_key(key) {
        let victim = entries.keys().next().cloned();
        if let Some(victim) = victim {
            entries.remove(&victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_capacity() {
        let map = Bounded::new(3);
        for i in 0..10 {
            map.insert(i, i * 2);
            assert!(map.len() <= 3);
            assert_eq!(map.get(&i), Some(i * 2), "the newest entry is kept");
        }
        map.update(42, |count: &mut i32| *count += 1);
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(&42), Some(1));
    }

    #[test]
    fn updating_a_kept_key_evicts_nothing() {
        let map = Bounded::new(2);
        map.insert("a", 1);
        map.insert("b", 1);
        let after = map.update("a", |v| {
            *v += 1;
            *v
        });
        assert_eq!(after, 2);
        assert_eq!((map.get(&"a"), map.get(&"b")), (Some(2), Some(1)));
        map.remove(&"a");
        assert_eq!(map.get(&"a"), None);
        assert_eq!(map.len(), 1);
        assert!(!map.is_empty());
    }
}
