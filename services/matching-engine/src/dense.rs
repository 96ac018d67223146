//! Meaning vectors of the achievements (sentence embeddings made outside the engine) and the
//! exact nearest-neighbour search over them: every vector is compared, so nothing is missed
//! and the order is reproducible. 100,000 achievements × 384 dimensions take a few
//! milliseconds to scan.

use std::collections::HashMap;

/// The vectors, one row per achievement, in one flat buffer.
#[derive(Debug, Default)]
pub struct DenseIndex {
    dim: usize,
    ids: Vec<String>,
    rows: HashMap<String, usize>,
    data: Vec<f32>,
}

/// A vector the index cannot take.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum DenseError {
    #[error("vector of {got} dimensions where the index holds {want}")]
    Dimension { want: usize, got: usize },
    #[error("vector with a value that is not finite")]
    NotFinite,
}

impl DenseIndex {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds or replaces the vector of `id`. The first vector fixes the dimension.
    pub fn upsert(&mut self, id: &str, vector: &[f32]) -> Result<(), DenseError> {
        if self.ids.is_empty() && self.dim == 0 {
            self.dim = vector.len();
        }
        if vector.len() != self.dim || vector.is_empty() {
            return Err(DenseError::Dimension {
                want: self.dim,
                got: vector.len(),
            });
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(DenseError::NotFinite);
        }
        match self.rows.get(id) {
            Some(&row) => self.data[row * self.dim..(row + 1) * self.dim].copy_from_slice(vector),
            None => {
                self.rows.insert(id.to_owned(), self.ids.len());
                self.ids.push(id.to_owned());
                self.data.extend_from_slice(vector);
            }
        }
        Ok(())
    }

    /// Forgets the vector of `id` (unknown ids are fine).
    pub fn remove(&mut self, id: &str) {
        let Some(row) = self.rows.remove(id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if row != last {
            // The last row takes the freed place.
            self.data
                .copy_within(last * self.dim..(last + 1) * self.dim, row * self.dim);
            self.ids.swap(row, last);
            self.rows.insert(self.ids[row].clone(), row);
        }
        self.ids.pop();
        self.data.truncate(last * self.dim);
    }

    pub fn get(&self, id: &str) -> Option<&[f32]> {
        let row = *self.rows.get(id)?;
        Some(&self.data[row * self.dim..(row + 1) * self.dim])
    }

    /// Cosine similarity (the vectors are unit length) of `query` with `id`'s vector.
    pub fn similarity(&self, query: &[f32], id: &str) -> Option<f32> {
        let v = self.get(id)?;
        (v.len() == query.len()).then(|| dot(v, query))
    }

    /// The `n` most similar achievements, most similar first (ties by id).
    pub fn nearest(&self, query: &[f32], n: usize) -> Vec<(String, f32)> {
        if n == 0 || query.len() != self.dim || self.dim == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f32, usize)> = self
            .data
            .chunks_exact(self.dim)
            .map(|row| dot(row, query))
            .enumerate()
            .map(|(i, s)| (s, i))
            .collect();
        let by_similarity = |a: &(f32, usize), b: &(f32, usize)| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.ids[a.1].cmp(&self.ids[b.1]))
        };
        if scored.len() > n {
            scored.select_nth_unstable_by(n - 1, by_similarity);
            scored.truncate(n);
        }
        scored.sort_by(by_similarity);
        scored
            .into_iter()
            .map(|(s, i)| (self.ids[i].clone(), s))
            .collect()
    }
}

/// The dot product, in eight lanes the compiler vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn nearest_orders_by_similarity_and_breaks_ties_by_id() {
        let mut ix = DenseIndex::default();
        ix.upsert("b", &[1.0, 0.0]).unwrap();
        ix.upsert("a", &[1.0, 0.0]).unwrap();
        ix.upsert("c", &unit(&[1.0, 1.0])).unwrap();
        ix.upsert("d", &[0.0, 1.0]).unwrap();
        let got: Vec<String> = ix
            .nearest(&[1.0, 0.0], 3)
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[test]
    fn replacing_and_removing_keep_the_rows_consistent() {
        let mut ix = DenseIndex::default();
        for (id, v) in [("a", [1.0, 0.0]), ("b", [0.0, 1.0]), ("c", [0.6, 0.8])] {
            ix.upsert(id, &v).unwrap();
        }
        ix.upsert("a", &[0.0, 1.0]).unwrap();
        ix.remove("a");
        ix.remove("nobody");
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.get("a"), None);
        assert_eq!(ix.get("b"), Some(&[0.0, 1.0][..]));
        assert_eq!(ix.get("c"), Some(&[0.6, 0.8][..]));
        assert_eq!(ix.nearest(&[1.0, 0.0], 5)[0].0, "c");
    }

    #[test]
    fn wrong_dimensions_and_nan_are_refused() {
        let mut ix = DenseIndex::default();
        ix.upsert("a", &[1.0, 0.0]).unwrap();
        assert_eq!(
            ix.upsert("b", &[1.0]),
            Err(DenseError::Dimension { want: 2, got: 1 })
        );
        assert_eq!(ix.upsert("b", &[f32::NAN, 0.0]), Err(DenseError::NotFinite));
        assert!(ix.nearest(&[1.0], 3).is_empty());
    }

    proptest! {
        #[test]
        fn nearest_is_the_head_of_a_full_sort(
            rows in proptest::collection::vec(proptest::collection::vec(-1f32..1.0, 4), 1..40),
            q in proptest::collection::vec(-1f32..1.0, 4),
            n in 1usize..50,
        ) {
            let mut ix = DenseIndex::default();
            for (i, r) in rows.iter().enumerate() {
                ix.upsert(&format!("{i:03}"), r).unwrap();
            }
            let mut all: Vec<(String, f32)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("{i:03}"), dot(r, &q)))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(n);
            prop_assert_eq!(ix.nearest(&q, n), all);
        }
    }
}
