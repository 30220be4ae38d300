//! Summaries of an RDD's elements: `is_empty`, `max`, `min`, and for numbers
//! Spark's `DoubleRDDFunctions`: `sum`, `stats` ([`StatCounter`]), `mean`,
//! `variance`, `stdev` and their sample forms, and `histogram`.
//!
//! Each runs one job whose tasks summarize their partition; the driver merges the
//! summaries. Mean and variance use Welford's update within a partition and Chan,
//! Golub and LeVeque's pairwise merge across partitions ("Updating formulae and a
//! pairwise algorithm for computing sample variances", 1979), as Spark's
//! `StatCounter` does, so they stay accurate where a sum of squares would not.

use crate::rdd::Rdd;
use ember_core::data::{BoxIter, Data, Ordered};
use ember_core::error::{EmberError, Result};
use ember_core::format::jvm_fixed6;
use ember_core::key::OrderedBy;
use ember_core::task::{PartitionFn, TaskContext};
use serde::{Deserialize, Serialize};

/// A number an RDD can summarize: every primitive integer and float.
pub trait Numeric: Data + Copy {
    /// The value as an `f64` (rounded for integers beyond 2^53).
    fn to_f64(self) -> f64;
    /// `self + other`, or `None` when an integer sum overflows (floats never do).
    fn checked_sum(self, other: Self) -> Option<Self>;
    /// The additive identity.
    fn zero() -> Self;
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn checked_sum(self, other: Self) -> Option<Self> {
                self.checked_add(other)
            }
            fn zero() -> Self {
                0
            }
        }
    )*};
}
integers!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

macro_rules! floats {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn checked_sum(self, other: Self) -> Option<Self> {
                Some(self + other)
            }
            fn zero() -> Self {
                0.0
            }
        }
    )*};
}
floats!(f32, f64);

/// Count, mean, variance, maximum and minimum of numbers (Spark's `StatCounter`).
/// The empty counter has count 0, mean 0, max -∞ and min +∞; its variances are NaN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatCounter {
    count: u64,
    mean: f64,
    /// Sum of squared differences from the mean.
    m2: f64,
    max: f64,
    min: f64,
}

impl Default for StatCounter {
    fn default() -> Self {
        StatCounter { count: 0, mean: 0.0, m2: 0.0, max: f64::NEG_INFINITY, min: f64::INFINITY }
    }
}

impl StatCounter {
    /// The counter of `values`.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut s = StatCounter::default();
        for x in values {
            s.merge_value(x);
        }
        s
    }

    /// Adds one value (Welford's update).
    pub fn merge_value(&mut self, x: f64) {
        let delta = x - self.mean;
        self.count += 1;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.max = propagating_nan(self.max, x, f64::max);
        self.min = propagating_nan(self.min, x, f64::min);
    }

    /// Adds every value another counter saw (Chan et al.'s pairwise merge).
    pub fn merge(&mut self, other: &StatCounter) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / n;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.count += other.count;
        self.max = propagating_nan(self.max, other.max, f64::max);
        self.min = propagating_nan(self.min, other.min, f64::min);
    }

    /// How many values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their mean (0 when empty, as Spark's).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Their sum, `mean × count`.
    pub fn sum(&self) -> f64 {
        self.mean * self.count as f64
    }

    /// The largest value (-∞ when empty, NaN when a value was NaN).
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The smallest value (+∞ when empty, NaN when a value was NaN).
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Population variance, divided by n (NaN when empty).
    pub fn variance(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.m2 / self.count as f64 }
    }

    /// Sample variance, divided by n − 1 (NaN for fewer than two values).
    pub fn sample_variance(&self) -> f64 {
        if self.count <= 1 { f64::NAN } else { self.m2 / (self.count - 1) as f64 }
    }

    /// Population standard deviation.
    pub fn stdev(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Sample standard deviation.
    pub fn sample_stdev(&self) -> f64 {
        self.sample_variance().sqrt()
    }
}

/// `pick(a, b)`, or NaN when either is NaN (Scala's `math.max`, which Spark's
/// `StatCounter` uses; Rust's `f64::max` would skip the NaN).
fn propagating_nan(a: f64, b: f64, pick: fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { pick(a, b) }
}

impl std::fmt::Display for StatCounter {
    /// Spark's layout: `(count: 3, mean: 2.000000, stdev: 0.816497, max: 3.000000, min: 1.000000)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(count: {}, mean: {}, stdev: {}, max: {}, min: {})",
            self.count,
            jvm_fixed6(self.mean),
            jvm_fixed6(self.stdev()),
            jvm_fixed6(self.max),
            jvm_fixed6(self.min)
        )
    }
}

#[derive(Serialize, Deserialize)]
struct IsEmptyFn;
impl<T: Data> PartitionFn<T, bool> for IsEmptyFn {
    fn apply(&self, _ctx: &TaskContext, mut input: BoxIter<T>) -> Result<bool> {
        Ok(input.next().is_none())
    }
}

#[derive(Serialize, Deserialize)]
struct ExtremeFn {
    largest: bool,
}
impl<T: Ordered> PartitionFn<T, Option<T>> for ExtremeFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<Option<T>> {
        Ok(extreme(input, self.largest))
    }
}

/// The largest (or smallest) element by [`Ordered`]; of equal ones, the last
/// (or first), as `Iterator::max`/`min`.
fn extreme<T: Ordered>(input: impl Iterator<Item = T>, largest: bool) -> Option<T> {
    let ranked = input.map(OrderedBy);
    if largest { ranked.max() } else { ranked.min() }.map(|x| x.0)
}

#[derive(Serialize, Deserialize)]
struct SumFn;
impl<T: Numeric> PartitionFn<T, Option<T>> for SumFn {
    /// The partition's sum, `None` when it overflows.
    fn apply(&self, _ctx: &TaskContext, mut input: BoxIter<T>) -> Result<Option<T>> {
        Ok(input.try_fold(T::zero(), T::checked_sum))
    }
}

#[derive(Serialize, Deserialize)]
struct StatsFn;
impl<T: Numeric> PartitionFn<T, StatCounter> for StatsFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<StatCounter> {
        Ok(StatCounter::of(input.map(T::to_f64)))
    }
}

/// Counts per bucket of sorted boundaries `buckets` (n + 1 boundaries, n buckets:
/// `[b0, b1)`, …, `[b(n-1), bn]`, the last one closed, as Spark's `histogram`).
/// Values outside, and NaN, are not counted.
#[derive(Serialize, Deserialize)]
struct HistogramFn {
    buckets: Vec<f64>,
}

impl HistogramFn {
    fn bucket_of(&self, x: f64) -> Option<usize> {
        let b = &self.buckets;
        let (first, last) = (b[0], b[b.len() - 1]);
        if x.is_nan() || x < first || x > last {
            return None;
        }
        if x == last {
            return Some(b.len() - 2);
        }
        // The number of boundaries ≤ x, minus one.
        Some(b.partition_point(|&edge| edge <= x) - 1)
    }
}

impl<T: Numeric> PartitionFn<T, Vec<u64>> for HistogramFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<Vec<u64>> {
        let mut counts = vec![0u64; self.buckets.len() - 1];
        for x in input {
            if let Some(i) = self.bucket_of(x.to_f64()) {
                counts[i] += 1;
            }
        }
        Ok(counts)
    }
}

impl<T: Data> Rdd<T> {
    /// Whether the RDD has no elements (no partitions, or all of them empty).
    pub fn is_empty(&self) -> Result<bool> {
        if self.num_partitions() == 0 {
            return Ok(true);
        }
        Ok(self.ctx.run_job(&self.node, IsEmptyFn, None)?.into_iter().all(|empty| empty))
    }

    /// The largest element.
    ///
    /// # Errors
    /// [`EmberError::Invalid`] for an empty RDD (Spark throws
    /// `UnsupportedOperationException` there).
    pub fn max(&self) -> Result<T>
    where
        T: Ordered,
    {
        let parts = self.ctx.run_job(&self.node, ExtremeFn { largest: true }, None)?;
        extreme(parts.into_iter().flatten(), true).ok_or_else(|| EmberError::Invalid("max() of an empty RDD".into()))
    }

    /// The smallest element.
    ///
    /// # Errors
    /// [`EmberError::Invalid`] for an empty RDD.
    pub fn min(&self) -> Result<T>
    where
        T: Ordered,
    {
        let parts = self.ctx.run_job(&self.node, ExtremeFn { largest: false }, None)?;
        extreme(parts.into_iter().flatten(), false).ok_or_else(|| EmberError::Invalid("min() of an empty RDD".into()))
    }
}

impl<T: Numeric> Rdd<T> {
    /// The exact sum, in the element type (0 for an empty RDD). Spark sums as a
    /// double; here integers stay exact.
    ///
    /// # Errors
    /// [`EmberError::Invalid`] when an integer sum overflows the element type.
    pub fn sum(&self) -> Result<T> {
        let overflow = || EmberError::Invalid(format!("sum() overflows {}", std::any::type_name::<T>()));
        let parts = self.ctx.run_job(&self.node, SumFn, None)?;
        parts.into_iter().try_fold(T::zero(), |acc, p| p.and_then(|p| acc.checked_sum(p))).ok_or_else(overflow)
    }

    /// Count, mean, variance, maximum and minimum, in one job.
    pub fn stats(&self) -> Result<StatCounter> {
        let mut total = StatCounter::default();
        for part in self.ctx.run_job(&self.node, StatsFn, None)? {
            total.merge(&part);
        }
        Ok(total)
    }

    /// The mean: 0.0 for an empty RDD, as Spark's (`stats().mean`; checked
    /// against Spark 4.3 by the conformance suite, case `mean_of_empty`).
    pub fn mean(&self) -> Result<f64> {
        Ok(self.stats()?.mean())
    }

    /// Population variance (NaN for an empty RDD).
    pub fn variance(&self) -> Result<f64> {
        Ok(self.stats()?.variance())
    }

    /// Population standard deviation (NaN for an empty RDD).
    pub fn stdev(&self) -> Result<f64> {
        Ok(self.stats()?.stdev())
    }

    /// Sample variance, divided by n − 1 (NaN for fewer than two elements).
    pub fn sample_variance(&self) -> Result<f64> {
        Ok(self.stats()?.sample_variance())
    }

    /// Sample standard deviation (NaN for fewer than two elements).
    pub fn sample_stdev(&self) -> Result<f64> {
        Ok(self.stats()?.sample_stdev())
    }

    /// `bucket_count` evenly spaced buckets from the minimum to the maximum, and
    /// how many elements fall in each (Spark's `histogram(bucketCount)`): returns
    /// (`bucket_count + 1` boundaries, `bucket_count` counts); every bucket is
    /// half-open except the last, which holds the maximum. When all elements are
    /// equal there is one bucket `[x, x]`. Runs two jobs.
    ///
    /// # Errors
    /// [`EmberError::Invalid`] for `bucket_count` 0, an empty RDD, or one holding
    /// NaN or ±∞.
    pub fn histogram(&self, bucket_count: usize) -> Result<(Vec<f64>, Vec<u64>)> {
        if bucket_count == 0 {
            return Err(EmberError::Invalid("histogram() needs at least one bucket".into()));
        }
        let s = self.stats()?;
        if s.count() == 0 || !s.min().is_finite() || !s.max().is_finite() {
            return Err(EmberError::Invalid(
                "histogram() of an empty RDD, or of one holding NaN or an infinity".into(),
            ));
        }
        let buckets = if s.min() == s.max() {
            vec![s.min(), s.max()]
        } else {
            let width = (s.max() - s.min()) / bucket_count as f64;
            let mut b: Vec<f64> = (0..bucket_count).map(|i| s.min() + i as f64 * width).collect();
            b.push(s.max());
            b
        };
        let counts = self.histogram_with_buckets(&buckets)?;
        Ok((buckets, counts))
    }

    /// How many elements fall in each bucket of the sorted boundaries `buckets`
    /// (`[b0, b1)`, …, the last bucket `[b(n-1), bn]` closed); elements outside
    /// every bucket, and NaN, are not counted (Spark's `histogram(buckets)`).
    ///
    /// # Errors
    /// [`EmberError::Invalid`] for fewer than two boundaries, or boundaries that
    /// are not strictly increasing or hold NaN.
    pub fn histogram_with_buckets(&self, buckets: &[f64]) -> Result<Vec<u64>> {
        // One bucket [x, x] is what `histogram` makes of an RDD of equal elements.
        let single = buckets.len() == 2 && buckets[0] == buckets[1] && buckets[0].is_finite();
        let increasing = buckets.len() >= 2 && buckets.windows(2).all(|w| w[0] < w[1]);
        if !(single || increasing) {
            return Err(EmberError::Invalid(format!(
                "histogram buckets must be at least two strictly increasing numbers, got {buckets:?}"
            )));
        }
        let mut total = vec![0u64; buckets.len() - 1];
        for part in self.ctx.run_job(&self.node, HistogramFn { buckets: buckets.to_vec() }, None)? {
            for (t, c) in total.iter_mut().zip(part) {
                *t += c;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_counters_equal_one_counter_of_everything() {
        let values: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1013) as f64 * 0.5 - 100.0).collect();
        let whole = StatCounter::of(values.iter().copied());
        let mut merged = StatCounter::default();
        for chunk in values.chunks(37) {
            merged.merge(&StatCounter::of(chunk.iter().copied()));
        }
        merged.merge(&StatCounter::default());
        assert_eq!(merged.count(), 1000);
        assert!((merged.mean() - whole.mean()).abs() < 1e-9);
        assert!((merged.variance() - whole.variance()).abs() < 1e-6);
        assert_eq!((merged.max(), merged.min()), (whole.max(), whole.min()));
        let s = StatCounter::of([1.0, 2.0, 3.0]);
        assert_eq!(s.to_string(), "(count: 3, mean: 2.000000, stdev: 0.816497, max: 3.000000, min: 1.000000)");
        assert_eq!(s.sample_variance(), 1.0);
        assert!(StatCounter::default().variance().is_nan());
        assert!(StatCounter::of([4.0]).sample_stdev().is_nan());
    }

    #[test]
    fn histogram_buckets_are_half_open_but_the_last() {
        let h = HistogramFn { buckets: vec![0.0, 10.0, 20.0, 30.0] };
        let got: Vec<Option<usize>> =
            [-1.0, 0.0, 9.99, 10.0, 29.0, 30.0, 30.5, f64::NAN].into_iter().map(|x| h.bucket_of(x)).collect();
        assert_eq!(got, vec![None, Some(0), Some(0), Some(1), Some(2), Some(2), None, None]);
        let one = HistogramFn { buckets: vec![5.0, 5.0] };
        assert_eq!((one.bucket_of(5.0), one.bucket_of(4.0)), (Some(0), None));
    }
}
