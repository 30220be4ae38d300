//! Accumulators: values tasks add to and only the driver reads. Each task attempt
//! collects its own updates; the driver merges them once per successful partition,
//! so a retried or speculative attempt never counts twice.

use crate::data::Data;
use crate::error::Result;
use crate::task::TaskContext;
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A value that can be accumulated: a zero and an associative, commutative merge.
pub trait AccumulatorValue: Data {
    fn zero() -> Self;
    fn merge(&mut self, other: Self);
}

macro_rules! numeric_accumulators {
    ($($t:ty),*) => {$(
        impl AccumulatorValue for $t {
            fn zero() -> Self { 0 as $t }
            fn merge(&mut self, other: Self) { *self += other; }
        }
    )*};
}
numeric_accumulators!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

impl<T: Data> AccumulatorValue for Vec<T> {
    fn zero() -> Self {
        Vec::new()
    }
    fn merge(&mut self, other: Self) {
        self.extend(other);
    }
}

/// A task's pending updates to one accumulator.
pub trait AccumulatorSlot {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn to_bytes(&self) -> Result<Vec<u8>>;
}

struct Slot<T>(T);

impl<T: AccumulatorValue> AccumulatorSlot for Slot<T> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(postcard::to_allocvec(&self.0)?)
    }
}

static NEXT_ACCUMULATOR_ID: AtomicU64 = AtomicU64::new(1);

/// Merges serialized task updates into the driver's value.
pub type MergeUpdate = Arc<dyn Fn(&[u8]) -> Result<()> + Send + Sync>;

pub struct Accumulator<T> {
    id: u64,
    /// The value, on the driver that created the accumulator only.
    driver: Option<Arc<Mutex<T>>>,
}

impl<T: AccumulatorValue> Accumulator<T> {
    /// A new accumulator and the function the driver uses to merge task updates.
    pub fn create(initial: T) -> (Self, MergeUpdate) {
        let id = NEXT_ACCUMULATOR_ID.fetch_add(1, Ordering::Relaxed);
        let value = Arc::new(Mutex::new(initial));
        let target = value.clone();
        let merge: MergeUpdate = Arc::new(move |bytes: &[u8]| {
            let update: T = postcard::from_bytes(bytes)?;
            target.lock().merge(update);
            Ok(())
        });
        (Self { id, driver: Some(value) }, merge)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Adds `v`: inside a task, to that attempt's updates; on the driver, directly.
    pub fn add(&self, v: T) {
        TaskContext::with_current(|ctx| match (ctx, &self.driver) {
            (Some(ctx), _) => ctx.add_to_accumulator(
                self.id,
                || Box::new(Slot(T::zero())),
                |slot| slot.as_any_mut().downcast_mut::<Slot<T>>().expect("one type per accumulator id").0.merge(v),
            ),
            (None, Some(value)) => value.lock().merge(v),
            (None, None) => panic!("accumulator {} was added to outside a task, away from its driver", self.id),
        })
    }

    /// The merged value. Only the driver can read it (as in Spark).
    pub fn value(&self) -> T {
        match &self.driver {
            Some(v) => v.lock().clone(),
            None => panic!("accumulator {} can only be read on the driver", self.id),
        }
    }
}

impl<T> Clone for Accumulator<T> {
    fn clone(&self) -> Self {
        Self { id: self.id, driver: self.driver.clone() }
    }
}

impl<T> Serialize for Accumulator<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.id.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Accumulator<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Self { id: u64::deserialize(d)?, driver: None })
    }
}
