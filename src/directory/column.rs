//! One attribute over all workers, dictionary-encoded: the distinct values once, and a code
//! per worker. A million workers' departments are a few dozen strings and four bytes each;
//! the columnar evaluator tests a predicate once per distinct value.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::Value;

/// A worker's code when the value is missing.
pub const MISSING: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
pub struct Column {
    /// Shared by a column and its selections.
    dict: Arc<Vec<Value>>,
    codes: Vec<u32>,
}

impl Column {
    /// The distinct values, in order of first appearance. A selection shares its column's,
    /// so some of them may belong to no worker of it.
    pub fn dict(&self) -> &[Value] {
        &self.dict
    }

    /// Each worker's index into [`Column::dict`], or [`MISSING`].
    pub fn codes(&self) -> &[u32] {
        &self.codes
    }

    pub fn get(&self, worker: usize) -> Option<&Value> {
        match self.codes[worker] {
            MISSING => None,
            code => Some(&self.dict[code as usize]),
        }
    }
}

impl Column {
    /// The column of just these workers, in this order, sharing this one's dictionary.
    pub fn select(&self, workers: &[usize]) -> Column {
        Column {
            dict: Arc::clone(&self.dict),
            codes: workers.iter().map(|&w| self.codes[w]).collect(),
        }
    }
}

/// Builds a column value by value, finding repeated values by hash.
#[derive(Debug, Default)]
pub struct ColumnBuilder {
    dict: Vec<Value>,
    codes: Vec<u32>,
    index: DictIndex,
}

/// Where a dictionary's values are, by hash: kept with a snapshot in a process that loads
/// the next export from it, so that its dictionaries grow without being hashed again.
#[derive(Debug, Default, Clone)]
pub struct DictIndex {
    /// Hash → the first code with it; `next` chains codes whose values share a hash.
    first: rustc_hash::FxHashMap<u64, u32>,
    next: Vec<u32>,
}

impl DictIndex {
    /// How many values it indexes.
    pub(super) fn len(&self) -> usize {
        self.next.len()
    }
}

impl ColumnBuilder {
    /// Goes on building a column whose dictionary is `dict`, indexed by `index` (both from
    /// [`ColumnBuilder::finish_indexed`]): codes of the earlier column stay valid in the new
    /// one, whose dictionary only grows.
    pub fn resume(dict: Vec<Value>, index: DictIndex) -> ColumnBuilder {
        debug_assert_eq!(dict.len(), index.len());
        ColumnBuilder {
            dict,
            codes: Vec::new(),
            index,
        }
    }

    pub fn push(&mut self, value: Option<Value>) {
        let code = value.map_or(MISSING, |v| self.intern(v));
        self.codes.push(code);
    }

    /// The code of `value`, adding it to the dictionary when it is new. A value interned for
    /// a row that is then rejected stays in the dictionary, belonging to no worker.
    pub fn intern(&mut self, value: Value) -> u32 {
        let h = hash(&value);
        let index = &mut self.index;
        let mut code = index.first.get(&h).copied().unwrap_or(MISSING);
        while code != MISSING {
            if self.dict[code as usize] == value {
                return code;
            }
            code = index.next[code as usize];
        }
        let new = self.dict.len() as u32;
        let chain = index.first.insert(h, new).unwrap_or(MISSING);
        index.next.push(chain);
        self.dict.push(value);
        new
    }

    /// The next worker's value, by a code [`ColumnBuilder::intern`] gave (or [`MISSING`]).
    pub fn push_code(&mut self, code: u32) {
        debug_assert!(code == MISSING || (code as usize) < self.dict.len());
        self.codes.push(code);
    }

    /// The value of a code [`ColumnBuilder::intern`] gave.
    pub fn value(&self, code: u32) -> Option<&Value> {
        self.dict.get(code as usize)
    }

    pub fn finish(self) -> Column {
        self.finish_indexed().0
    }

    /// The column, and its dictionary's index for [`ColumnBuilder::resume`].
    pub fn finish_indexed(self) -> (Column, DictIndex) {
        let column = Column {
            dict: Arc::new(self.dict),
            codes: self.codes,
        };
        (column, self.index)
    }
}

impl Column {
    /// The dictionary, to go on building from ([`ColumnBuilder::resume`]); the column is left
    /// without one until [`Column::share_dict`] gives it back. Copied when a selection
    /// shares it.
    pub(super) fn lend_dict(&mut self) -> Vec<Value> {
        let dict = std::mem::take(&mut self.dict);
        Arc::try_unwrap(dict).unwrap_or_else(|shared| {
            tracing::debug!(
                values = shared.len(),
                "a shared dictionary is copied to grow"
            );
            shared.as_ref().clone()
        })
    }

    /// Takes `other`'s dictionary, which holds this column's values at the same codes (it
    /// grew from this one's).
    pub(super) fn share_dict(&mut self, other: &Column) {
        debug_assert!(other.dict.len() >= self.dict.len());
        self.dict = Arc::clone(&other.dict);
    }
}

fn hash(value: &Value) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    match value {
        Value::Str(s) => (0u8, s).hash(&mut h),
        // Equal numbers other than 0.0 and -0.0 have equal bits; those two may end up as two
        // entries of the dictionary, which only costs a duplicate.
        Value::Num(n) => (1u8, n.to_bits()).hash(&mut h),
        Value::Bool(b) => (2u8, b).hash(&mut h),
        Value::Date(d) => (3u8, d).hash(&mut h),
        Value::List(items) => (4u8, items).hash(&mut h),
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_values_share_a_code() {
        let mut b = ColumnBuilder::default();
        for v in [Some("a"), None, Some("b"), Some("a")] {
            b.push(v.map(|s| Value::Str(s.into())));
        }
        let c = b.finish();
        assert_eq!(c.dict().len(), 2);
        assert_eq!(c.codes(), &[0, MISSING, 1, 0]);
        assert_eq!(c.get(3), Some(&Value::Str("a".into())));
        assert_eq!(c.get(1), None);
    }

    #[test]
    fn a_selection_shares_the_dictionary() {
        let mut b = ColumnBuilder::default();
        for v in [Some("a"), None, Some("b"), Some("a"), Some("c")] {
            b.push(v.map(|s| Value::Str(s.into())));
        }
        let c = b.finish().select(&[4, 1, 3, 0]);
        assert_eq!(c.dict().len(), 3);
        assert_eq!(c.codes(), &[2, MISSING, 0, 0]);
        assert_eq!(c.get(0), Some(&Value::Str("c".into())));
    }
}
