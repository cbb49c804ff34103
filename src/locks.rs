//! The standard library's locks, taken whatever happened to an earlier holder.
//!
//! A lock whose holder panicked is "poisoned"; these helpers use the value anyway. Every
//! value kept under these locks is whole between statements (a map, a counter, an `Arc`
//! swapped in one assignment), so a panic elsewhere cannot leave it half-changed, and one
//! failed request must not make every later one fail too.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
