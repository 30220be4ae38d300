//! Equality, hashing and ordering of RDD keys and elements, as Spark has them.
//!
//! Spark compares keys with the JVM's `equals`/`hashCode` and sorts with an
//! `Ordering[K]`; Rust's `Eq`/`Hash`/`Ord` are close but leave out the floating
//! point types, which Spark users key and sort by every day (`distinct` of
//! doubles, `reduceByKey` on a price, `sortByKey` on a score, `top` of a
//! metric). So Ember has its own two traits:
//!
//! - [`Key`]: what hash partitioning, aggregation, grouping, joins and
//!   `distinct` need. Implemented for the standard types through their
//!   `Hash`/`Eq`, for tuples, `Option`, `Vec`, `Box` and arrays of keys
//!   element by element, and for `f64`/`f32` as `java.lang.Double.equals` and
//!   `hashCode` do: every NaN equals every NaN, and `-0.0` differs from `0.0`.
//! - [`Ordered`]: what sorting, `top`, `take_ordered`, `max` and `min` need
//!   (Scala's `scala.math.Ordered`). Implemented through `Ord` for the
//!   standard types, lexicographically for tuples, `Vec` and arrays, and for
//!   `f64`/`f32` as `java.lang.Double.compare`: `-0.0 < 0.0`, and NaN is
//!   greater than every other value, `+∞` included.
//!
//! A type of the job's own gets them with `#[derive(Key)]` and
//! `#[derive(Ordered)]` (from `ember::prelude`), field by field as Spark
//! compares a case class. A type of another crate, for which the orphan rule
//! forbids an impl, is wrapped in [`StdKey`], which uses its `Hash + Eq` and `Ord`.
//!
//! Inside the engine, [`HashedKey`] and [`OrderedBy`] wrap a key so that the
//! standard collections (`HashMap`, `BinaryHeap`, `sort`) use these traits.

use crate::data::Data;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::{
    NonZeroI8, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI128, NonZeroIsize, NonZeroU8, NonZeroU16, NonZeroU32,
    NonZeroU64, NonZeroU128, NonZeroUsize,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Key type of a pair RDD (and element type of `distinct`, `count_by_value`,
/// `subtract`, ...): equality and a hash consistent with it, the same in every
/// process (hash partitioning relies on it).
///
/// Laws: `a.key_eq(b)` implies equal `key_hash` output; `key_eq` is an
/// equivalence relation (reflexive even for NaN).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a key: it does not implement `ember::Key`",
    label = "keys need Spark-style equality and hashing",
    note = "derive it for a type of your own, `#[derive(ember::Key)]`; wrap another crate's type, `ember::StdKey(x)`"
)]
pub trait Key: Data {
    /// Feeds the key to `state`; keys that are [`key_eq`](Key::key_eq) feed the same bytes.
    fn key_hash<H: Hasher>(&self, state: &mut H);
    /// Spark's `equals`.
    fn key_eq(&self, other: &Self) -> bool;

    /// Feeds a sequence of keys (a `Vec<K>` or array key): its length, then
    /// each key. The standard types override it with their `Hash` of a slice
    /// (one write for a byte string, the same bytes as `Hash` of a `Vec`).
    #[inline]
    fn key_hash_slice<H: Hasher>(items: &[Self], state: &mut H)
    where
        Self: Sized,
    {
        state.write_usize(items.len());
        for k in items {
            k.key_hash(state);
        }
    }

    /// Whether two sequences of keys are equal, element by element.
    #[inline]
    fn key_eq_slice(a: &[Self], b: &[Self]) -> bool
    where
        Self: Sized,
    {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.key_eq(y))
    }
}

/// Element or key type that can be sorted: a total order, Spark's implicit
/// `Ordering[T]` (`scala.math.Ordered`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sorted: it does not implement `ember::Ordered`",
    label = "sorting, `top`, `take_ordered`, `max` and `min` need a total order",
    note = "derive it for a type of your own, `#[derive(ember::Ordered)]`; wrap another crate's type, `ember::StdKey(x)`"
)]
pub trait Ordered: Data {
    /// The total order (`compare` of Scala's `Ordering`).
    fn compare(&self, other: &Self) -> Ordering;
}

/// A key with `Hash` and `Eq` taken from [`Key`], for the standard collections.
/// Transparent in memory and on the wire.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[repr(transparent)]
#[serde(transparent)]
pub struct HashedKey<K>(pub K);

impl<K: Key> Hash for HashedKey<K> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key_hash(state)
    }
}
impl<K: Key> PartialEq for HashedKey<K> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0.key_eq(&other.0)
    }
}
impl<K: Key> Eq for HashedKey<K> {}

/// A value with `Ord` taken from [`Ordered`], for `sort`, `BinaryHeap` and the like.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[repr(transparent)]
#[serde(transparent)]
pub struct OrderedBy<T>(pub T);

impl<T: Ordered> PartialEq for OrderedBy<T> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0.compare(&other.0) == Ordering::Equal
    }
}
impl<T: Ordered> Eq for OrderedBy<T> {}
impl<T: Ordered> PartialOrd for OrderedBy<T> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: Ordered> Ord for OrderedBy<T> {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.compare(&other.0)
    }
}

/// Implements [`Key`] through `Hash` + `Eq` and [`Ordered`] through `Ord`.
macro_rules! through_std {
    ($([$($generics:tt)*] $t:ty;)*) => {$(
        impl<$($generics)*> Key for $t
        where
            Self: Data + Hash + Eq,
        {
            #[inline]
            fn key_hash<H: Hasher>(&self, state: &mut H) {
                Hash::hash(self, state)
            }
            #[inline]
            fn key_eq(&self, other: &Self) -> bool {
                self == other
            }
            #[inline]
            fn key_hash_slice<H: Hasher>(items: &[Self], state: &mut H) {
                Hash::hash(items, state)
            }
            #[inline]
            fn key_eq_slice(a: &[Self], b: &[Self]) -> bool {
                a == b
            }
        }
        impl<$($generics)*> Ordered for $t
        where
            Self: Data + Ord,
        {
            #[inline]
            fn compare(&self, other: &Self) -> Ordering {
                Ord::cmp(self, other)
            }
        }
    )*};
}

through_std! {
    [] i8; [] i16; [] i32; [] i64; [] i128; [] isize;
    [] u8; [] u16; [] u32; [] u64; [] u128; [] usize;
    [] bool; [] char; [] String; [] Box<str>; [] Cow<'static, str>; [] Arc<str>; [] ();
    [] NonZeroI8; [] NonZeroI16; [] NonZeroI32; [] NonZeroI64; [] NonZeroI128; [] NonZeroIsize;
    [] NonZeroU8; [] NonZeroU16; [] NonZeroU32; [] NonZeroU64; [] NonZeroU128; [] NonZeroUsize;
    [] Duration; [] SystemTime; [] PathBuf; [] OsString;
    [] IpAddr; [] Ipv4Addr; [] Ipv6Addr; [] SocketAddr; [] SocketAddrV4; [] SocketAddrV6;
    // Sets and maps compare as wholes, their (sorted) elements in order.
    [T] BTreeSet<T>; [K, V] BTreeMap<K, V>;
}

/// Floating point as the JVM's boxes have it. The bits compared and hashed are
/// those of `java.lang.Double.doubleToLongBits` (`Float.floatToIntBits`): every
/// NaN is the one canonical NaN, so NaN equals NaN and `-0.0` differs from `0.0`
/// (`Double.equals`/`hashCode`). The order is `Double.compare`: `-0.0 < 0.0`, NaN
/// above `+∞` and equal to itself.
macro_rules! java_float {
    ($($t:ident: $bits:ident, $canonical_nan:literal, $write:ident, $java_bits:ident;)*) => {$(
        #[inline]
        fn $java_bits(x: $t) -> $bits {
            if x.is_nan() { $canonical_nan } else { x.to_bits() }
        }
        impl Key for $t {
            #[inline]
            fn key_hash<H: Hasher>(&self, state: &mut H) {
                state.$write($java_bits(*self))
            }
            #[inline]
            fn key_eq(&self, other: &Self) -> bool {
                $java_bits(*self) == $java_bits(*other)
            }
        }
        impl Ordered for $t {
            #[inline]
            fn compare(&self, other: &Self) -> Ordering {
                $t::from_bits($java_bits(*self)).total_cmp(&$t::from_bits($java_bits(*other)))
            }
        }
    )*};
}

java_float! {
    f64: u64, 0x7ff8_0000_0000_0000, write_u64, java_bits_f64;
    f32: u32, 0x7fc0_0000, write_u32, java_bits_f32;
}

impl<K: Key> Key for Box<K> {
    #[inline]
    fn key_hash<H: Hasher>(&self, state: &mut H) {
        (**self).key_hash(state)
    }
    #[inline]
    fn key_eq(&self, other: &Self) -> bool {
        (**self).key_eq(other)
    }
}
impl<T: Ordered> Ordered for Box<T> {
    #[inline]
    fn compare(&self, other: &Self) -> Ordering {
        (**self).compare(other)
    }
}

/// `None` equals only `None`; `None` sorts first (Scala's `Ordering.Option`).
impl<K: Key> Key for Option<K> {
    #[inline]
    fn key_hash<H: Hasher>(&self, state: &mut H) {
        match self {
            None => state.write_u8(0),
            Some(k) => {
                state.write_u8(1);
                k.key_hash(state)
            }
        }
    }
    #[inline]
    fn key_eq(&self, other: &Self) -> bool {
        match (self, other) {
            (None, None) => true,
            (Some(a), Some(b)) => a.key_eq(b),
            _ => false,
        }
    }
}
impl<T: Ordered> Ordered for Option<T> {
    #[inline]
    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => a.compare(b),
        }
    }
}

/// Lexicographic, a shorter prefix first (Scala's `Ordering.Iterable`).
fn slice_compare<T: Ordered>(a: &[T], b: &[T]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.compare(y) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
    }
    a.len().cmp(&b.len())
}

/// Sequences: the length, then element by element; ordered lexicographically.
macro_rules! sequences {
    ($([$($generics:tt)*] $t:ty;)*) => {$(
        impl<E: Key $($generics)*> Key for $t
        where
            Self: Data,
        {
            #[inline]
            fn key_hash<H: Hasher>(&self, state: &mut H) {
                E::key_hash_slice(self, state)
            }
            #[inline]
            fn key_eq(&self, other: &Self) -> bool {
                E::key_eq_slice(self, other)
            }
        }
        impl<E: Ordered $($generics)*> Ordered for $t
        where
            Self: Data,
        {
            #[inline]
            fn compare(&self, other: &Self) -> Ordering {
                slice_compare(self, other)
            }
        }
    )*};
}

sequences! {
    [] Vec<E>;
    [] Box<[E]>;
    [, const N: usize] [E; N];
}

/// The reverse order of `T` (a descending sort key); equal as `T` is.
impl<K: Key> Key for Reverse<K> {
    #[inline]
    fn key_hash<H: Hasher>(&self, state: &mut H) {
        self.0.key_hash(state)
    }
    #[inline]
    fn key_eq(&self, other: &Self) -> bool {
        self.0.key_eq(&other.0)
    }
}
impl<T: Ordered> Ordered for Reverse<T> {
    #[inline]
    fn compare(&self, other: &Self) -> Ordering {
        other.0.compare(&self.0)
    }
}

/// A type from another crate (`Uuid`, `Decimal`, `OrderedFloat`, ...) as a
/// key or sort key through its own `Hash + Eq` and `Ord`: the orphan rule
/// keeps a job from implementing [`Key`] for it, so wrap it,
/// `StdKey(uuid)`. Transparent on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StdKey<T>(pub T);

impl<T: Data + Hash + Eq> Key for StdKey<T> {
    #[inline]
    fn key_hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
    #[inline]
    fn key_eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<T: Data + Ord> Ordered for StdKey<T> {
    #[inline]
    fn compare(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

/// Tuples: element by element, in order (Scala's `Ordering.Tuple2`, ...).
macro_rules! tuples {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: Key),+> Key for ($($t,)+) {
            #[inline]
            fn key_hash<HS: Hasher>(&self, state: &mut HS) {
                $(self.$i.key_hash(state);)+
            }
            #[inline]
            fn key_eq(&self, other: &Self) -> bool {
                $(self.$i.key_eq(&other.$i))&&+
            }
        }
        impl<$($t: Ordered),+> Ordered for ($($t,)+) {
            #[inline]
            fn compare(&self, other: &Self) -> Ordering {
                $(
                    match self.$i.compare(&other.$i) {
                        Ordering::Equal => {}
                        unequal => return unequal,
                    }
                )+
                Ordering::Equal
            }
        }
    )*};
}

tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, I 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, I 7, J 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, I 7, J 8, L 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, I 7, J 8, L 9, M 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, I 7, J 8, L 9, M 10, N 11)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash_of<K: Key>(k: &K) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        k.key_hash(&mut h);
        h.finish()
    }

    #[test]
    fn doubles_are_equal_as_java_double_equals_says() {
        let nan_a = f64::NAN;
        let nan_b = -f64::NAN;
        let nan_c = f64::from_bits(0x7ff0_0000_0000_0001);
        assert!(nan_a.key_eq(&nan_b) && nan_b.key_eq(&nan_c));
        assert_eq!(hash_of(&nan_a), hash_of(&nan_c));
        assert!(!0.0f64.key_eq(&-0.0));
        assert!(1.5f64.key_eq(&1.5));
        let set: HashSet<HashedKey<f64>> =
            [0.0, -0.0, f64::NAN, -f64::NAN, 1.0, 1.0].into_iter().map(HashedKey).collect();
        assert_eq!(set.len(), 4);
        assert!(f32::NAN.key_eq(&-f32::NAN) && !0.0f32.key_eq(&-0.0));
    }

    #[test]
    fn doubles_sort_as_java_double_compare_says() {
        let mut v = [f64::NAN, 1.0, -0.0, f64::INFINITY, 0.0, -f64::NAN, f64::NEG_INFINITY, -1.0];
        v.sort_by(Ordered::compare);
        let bits: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        assert_eq!(bits, ["-inf", "-1.0", "-0.0", "0.0", "1.0", "inf", "NaN", "NaN"]);
        assert_eq!(f64::NAN.compare(&-f64::NAN), Ordering::Equal);
        assert_eq!(f32::NAN.compare(&f32::INFINITY), Ordering::Greater);
    }

    #[test]
    fn composite_keys_go_element_by_element() {
        assert!((1.0f64, "a".to_string()).key_eq(&(1.0, "a".to_string())));
        assert!(!(0.0f64, 1u8).key_eq(&(-0.0, 1)));
        assert_eq!((f64::NAN, 2i32).compare(&(f64::NAN, 1)), Ordering::Greater);
        assert_eq!(vec![1.0f64].compare(&vec![1.0, 0.0]), Ordering::Less);
        assert_eq!(None::<f64>.compare(&Some(f64::NEG_INFINITY)), Ordering::Less);
        assert!(Some(f64::NAN).key_eq(&Some(f64::NAN)) && !Some(1.0f64).key_eq(&None));
        assert!([0.5f64, 2.0].key_eq(&[0.5, 2.0]));
        assert_eq!(hash_of(&vec![f64::NAN]), hash_of(&vec![-f64::NAN]));
        assert_eq!(Reverse(1.0f64).compare(&Reverse(f64::NAN)), Ordering::Greater);
        assert!(Box::<[f64]>::from([f64::NAN]).key_eq(&Box::from([f64::NAN])));
        assert_eq!(StdKey(3u8).compare(&StdKey(4)), Ordering::Less);
    }

    #[test]
    fn standard_keys_hash_as_their_hash_does() {
        // Placement of keys by hash must not change for existing jobs' types.
        let std_hash = |s: &(String, i64)| {
            let mut h = std::hash::DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        let k = ("word".to_string(), 7i64);
        assert_eq!(hash_of(&k), std_hash(&k));
        let bytes = vec![1u8, 2, 3];
        let mut h = std::hash::DefaultHasher::new();
        bytes.hash(&mut h);
        assert_eq!(hash_of(&bytes), h.finish());
        assert!(vec![1u8, 2].key_eq(&vec![1, 2]) && !vec![1u8].key_eq(&vec![1, 2]));
    }
}
