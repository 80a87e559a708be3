//! [`Rows`]: the token ids of a set's rows, held in memory (a few thousand sentences, as every
//! labelled set) or read in place from a [`TokenStore`] (a corpus of any size), behind one
//! interface so that batching, sampling and splitting do not care which.

use std::borrow::Cow;
use std::sync::Arc;

use super::store::TokenStore;

/// The ids of a set's rows.
#[derive(Debug, Clone)]
pub enum Rows {
    Memory(Vec<Vec<i64>>),
    /// Rows of a token store: all of them in order, or those `pick` names (a split, a subset),
    /// as 4-byte row numbers.
    Stored {
        store: Arc<TokenStore>,
        pick: Option<Arc<Vec<u32>>>,
    },
}

impl From<Vec<Vec<i64>>> for Rows {
    fn from(rows: Vec<Vec<i64>>) -> Self {
        Rows::Memory(rows)
    }
}

impl Rows {
    /// Every row of `store`, in order.
    pub fn stored(store: Arc<TokenStore>) -> Self {
        Rows::Stored { store, pick: None }
    }

    pub fn len(&self) -> usize {
        match self {
            Rows::Memory(rows) => rows.len(),
            Rows::Stored { store, pick: None } => store.len(),
            Rows::Stored {
                pick: Some(pick), ..
            } => pick.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn store_row(&self, i: usize) -> usize {
        match self {
            Rows::Stored {
                pick: Some(pick), ..
            } => pick[i] as usize,
            _ => i,
        }
    }

    /// Row `i`'s ids: borrowed from memory, or read from the store's file.
    pub fn row(&self, i: usize) -> Cow<'_, [i64]> {
        match self {
            Rows::Memory(rows) => Cow::Borrowed(rows[i].as_slice()),
            Rows::Stored { store, .. } => Cow::Owned(store.row(self.store_row(i))),
        }
    }

    /// For each id of row `i`, whether it starts a word: known for stored rows alone (the
    /// corpus was tokenized with offsets), `None` in memory.
    pub fn word_starts(&self, i: usize) -> Option<Vec<bool>> {
        match self {
            Rows::Memory(_) => None,
            Rows::Stored { store, .. } => Some(store.word_starts(self.store_row(i))),
        }
    }

    /// Row `i`'s length in ids (from the store's index alone when stored).
    pub fn row_len(&self, i: usize) -> usize {
        match self {
            Rows::Memory(rows) => rows[i].len(),
            Rows::Stored { store, .. } => store.row_len(self.store_row(i)),
        }
    }

    /// Every row's length.
    pub fn lengths(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.row_len(i)).collect()
    }

    /// The rows at `indices`, in that order (a stored set stays in the store).
    pub fn subset(&self, indices: &[usize]) -> Rows {
        match self {
            Rows::Memory(rows) => Rows::Memory(indices.iter().map(|&i| rows[i].clone()).collect()),
            Rows::Stored { store, .. } => Rows::Stored {
                store: store.clone(),
                pick: Some(Arc::new(
                    indices.iter().map(|&i| self.store_row(i) as u32).collect(),
                )),
            },
        }
    }
}

impl PartialEq for Rows {
    fn eq(&self, other: &Rows) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.row(i) == other.row(i))
    }
}
