//! `cogroup` of three and four pair RDDs (Spark's `cogroup(other1, other2)`,
//! `cogroup(other1, other2, other3)` and `groupWith`): for each key present on
//! any side, its values on every side.
//!
//! Built from two-way cogroups into one partitioning, Spark's
//! `Partitioner.defaultPartitioner` of all sides: the first result is already
//! partitioned that way, so each further side costs only its own shuffle (none
//! for a side already partitioned so), as Spark's `CoGroupedRDD` does.

use crate::rdd::Rdd;
use ember_core::data::{Data, Key};

/// `(left groups, c)` of a cogroup whose left side is itself a cogroup's
/// output: the left holds one record for the key, or none when only `c` has it.
fn flatten3<A, B, C>((left, c): (Vec<(Vec<A>, Vec<B>)>, Vec<C>)) -> (Vec<A>, Vec<B>, Vec<C>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (x, y) in left {
        a.extend(x);
        b.extend(y);
    }
    (a, b, c)
}

/// [`flatten3`] with one more side.
fn flatten4<A, B, C, D>((left, d): (Vec<(Vec<A>, Vec<B>, Vec<C>)>, Vec<D>)) -> (Vec<A>, Vec<B>, Vec<C>, Vec<D>) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for (x, y, z) in left {
        a.extend(x);
        b.extend(y);
        c.extend(z);
    }
    (a, b, c, d)
}

impl<K: Key, V: Data> Rdd<(K, V)> {
    /// Spark's `groupWith(other)`: the same as [`Rdd::cogroup`].
    pub fn group_with<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Vec<V>, Vec<W>))> {
        self.cogroup(other)
    }

    /// For each key on any of the three sides, its values on each (Spark's
    /// `cogroup(other1, other2)`); keys absent from a side get an empty `Vec`.
    pub fn cogroup3<W1: Data, W2: Data>(
        &self,
        other1: &Rdd<(K, W1)>,
        other2: &Rdd<(K, W2)>,
    ) -> Rdd<(K, (Vec<V>, Vec<W1>, Vec<W2>))> {
        let target = self.default_partitioning(&[
            (other1.partitioning(), other1.num_partitions()),
            (other2.partitioning(), other2.num_partitions()),
        ]);
        self.cogroup_into(other1, target.clone()).cogroup_into(other2, target).map_values(flatten3::<V, W1, W2>)
    }

    /// [`Rdd::cogroup3`] with a fourth side (Spark's `cogroup(other1, other2, other3)`).
    pub fn cogroup4<W1: Data, W2: Data, W3: Data>(
        &self,
        other1: &Rdd<(K, W1)>,
        other2: &Rdd<(K, W2)>,
        other3: &Rdd<(K, W3)>,
    ) -> Rdd<(K, (Vec<V>, Vec<W1>, Vec<W2>, Vec<W3>))> {
        let target = self.default_partitioning(&[
            (other1.partitioning(), other1.num_partitions()),
            (other2.partitioning(), other2.num_partitions()),
            (other3.partitioning(), other3.num_partitions()),
        ]);
        self.cogroup_into(other1, target.clone())
            .cogroup_into(other2, target.clone())
            .map_values(flatten3::<V, W1, W2>)
            .cogroup_into(other3, target)
            .map_values(flatten4::<V, W1, W2, W3>)
    }
}
