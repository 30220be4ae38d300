//! Broadcast variables: a read-only value shipped once per executor, not once per
//! task. Closures capture the handle (its id); the value is fetched on first use.

use crate::data::Data;
use crate::error::{EmberError, Result, raise};
use crate::task::TaskContext;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

static NEXT_BROADCAST_ID: AtomicU64 = AtomicU64::new(1);

pub fn next_broadcast_id() -> u64 {
    NEXT_BROADCAST_ID.fetch_add(1, Ordering::Relaxed)
}

/// The driver's side of a broadcast: removes its blocks.
pub trait BroadcastOwner: Send + Sync {
    /// Executors drop their copies; a later read fetches again.
    fn unpersist(&self, id: u64);
    /// Removes the value everywhere.
    fn destroy(&self, id: u64);
}

struct DriverSide {
    owner: Arc<dyn BroadcastOwner>,
    destroyed: AtomicBool,
}

pub struct Broadcast<T> {
    id: u64,
    value: OnceLock<Arc<T>>,
    driver: Option<Arc<DriverSide>>,
}

impl<T: Data> Broadcast<T> {
    /// The driver's handle, holding the value it was created from.
    pub fn new_on_driver(id: u64, value: Arc<T>, owner: Arc<dyn BroadcastOwner>) -> Self {
        Self {
            id,
            value: OnceLock::from(value),
            driver: Some(Arc::new(DriverSide { owner, destroyed: AtomicBool::new(false) })),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The value. In a task it is fetched (once per executor) on first use; a
    /// destroyed broadcast fails the task with a clear error.
    pub fn value(&self) -> &T {
        if let Some(d) = &self.driver
            && d.destroyed.load(Ordering::Acquire)
        {
            raise(EmberError::Broadcast { id: self.id, reason: "used after destroy()".into() });
        }
        self.value.get_or_init(|| match self.fetch() {
            Ok(v) => v,
            Err(e) => raise(e),
        })
    }

    fn fetch(&self) -> Result<Arc<T>> {
        let id = self.id;
        TaskContext::with_current(|ctx| {
            let ctx = ctx.ok_or_else(|| EmberError::Broadcast {
                id,
                reason: "read outside a task on a process that does not hold it".into(),
            })?;
            let any = ctx
                .env()
                .broadcast_value(id, &|bytes| Ok(Arc::new(decode_value::<T>(bytes)?) as crate::task::AnyValue))?;
            any.downcast::<T>().map_err(|_| EmberError::Broadcast {
                id,
                reason: format!("value is not a {}", std::any::type_name::<T>()),
            })
        })
    }

    /// Drops executors' copies; the value is fetched again if used later.
    pub fn unpersist(&self) {
        if let Some(d) = &self.driver {
            d.owner.unpersist(self.id);
        }
    }

    /// Removes the value everywhere; any later use is an error.
    pub fn destroy(&self) {
        if let Some(d) = &self.driver
            && !d.destroyed.swap(true, Ordering::AcqRel)
        {
            d.owner.destroy(self.id);
        }
    }
}

impl<T> Clone for Broadcast<T> {
    fn clone(&self) -> Self {
        Self { id: self.id, value: self.value.clone(), driver: self.driver.clone() }
    }
}

impl<T> Serialize for Broadcast<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.id.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Broadcast<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Self { id: u64::deserialize(d)?, value: OnceLock::new(), driver: None })
    }
}

const RAW: u8 = 0;
const LZ4: u8 = 1;

/// Serialized (and optionally lz4-compressed) bytes of a broadcast value.
pub fn encode_value<T: Data>(value: &T, compress: bool) -> Result<Vec<u8>> {
    let raw = postcard::to_allocvec(value)?;
    let mut out = Vec::with_capacity(raw.len() / 2 + 1);
    if compress {
        out.push(LZ4);
        out.extend_from_slice(&lz4_flex::compress_prepend_size(&raw));
    } else {
        out.push(RAW);
        out.extend_from_slice(&raw);
    }
    Ok(out)
}

pub fn decode_value<T: Data>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&RAW, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&LZ4, rest)) => {
            let raw = crate::lz4::decompress_bounded(rest).map_err(|e| EmberError::Codec(format!("broadcast: {e}")))?;
            Ok(postcard::from_bytes(&raw)?)
        }
        _ => Err(EmberError::Codec("broadcast value has no codec byte".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // A broadcast value is assembled from pieces fetched from other
        // processes: whatever the bytes, decoding is a value or an error,
        // never a panic or an allocation sized by a corrupt length.
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = decode_value::<Vec<u64>>(&bytes);
            let _ = decode_value::<(String, Vec<(u32, String)>)>(&bytes);
        }

        #[test]
        fn truncated_and_flipped_values_are_errors_not_panics(
            compress in any::<bool>(), cut in 0usize..2048, flip in 0usize..2048, bit in 0u8..8,
        ) {
            let value: Vec<(u64, String)> = (0..100).map(|i| (i, format!("value {i}"))).collect();
            let encoded = encode_value(&value, compress).unwrap();
            prop_assert_eq!(&decode_value::<Vec<(u64, String)>>(&encoded).unwrap(), &value);
            let _ = decode_value::<Vec<(u64, String)>>(&encoded[..cut.min(encoded.len())]);
            let mut flipped = encoded.clone();
            let at = flip % flipped.len();
            flipped[at] ^= 1 << bit;
            let _ = decode_value::<Vec<(u64, String)>>(&flipped);
        }
    }

    #[test]
    fn a_compressed_value_claiming_gigabytes_is_refused() {
        let mut encoded = encode_value(&vec![1u64; 1000], true).unwrap();
        encoded[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode_value::<Vec<u64>>(&encoded).unwrap_err().to_string();
        assert!(err.contains("claims"), "{err}");
    }
}
