//! Where cached RDD partitions are. An executor tells the driver every change of
//! its cached blocks — stored, moved to disk, dropped — through the driver's
//! [`BLOCK_MANAGER_MASTER`] endpoint (Spark's `BlockManagerMaster.updateBlockInfo`);
//! the driver posts each as a `SparkListenerBlockUpdated` event, which the Storage
//! page, the REST API and the event log show.

use serde::{Deserialize, Serialize};

/// The driver endpoint taking postcard `Vec<BlockUpdate>` (answer: empty).
pub const BLOCK_MANAGER_MASTER: &str = "BlockManagerMaster";

/// The driver endpoint answering where a cached partition is (Spark's
/// `BlockManagerMaster.getLocations`): postcard [`BlockLocationsRequest`], answer
/// postcard `Vec<BlockHolder>` (live executors other than the asker).
pub const BLOCK_LOCATIONS: &str = "BlockLocations";

/// Which cached partition an executor looks for, and who asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockLocationsRequest {
    pub rdd_id: u64,
    pub partition: usize,
    /// Left out of the answer: it does not hold the partition, or it would not ask.
    pub requester: String,
}

/// An executor holding a cached partition and where its block server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHolder {
    pub executor_id: String,
    /// `host:port` of the executor's block server.
    pub block_address: String,
}

/// The status of one cached partition on one executor after a change (Spark's
/// `BlockStatus` with its block id `rdd_<rddId>_<partition>`). Both sizes 0: the
/// executor no longer holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUpdate {
    /// The executor holding (or no longer holding) the block.
    pub executor_id: String,
    /// The cached RDD.
    pub rdd_id: u64,
    /// The partition of the RDD the block holds.
    pub partition: usize,
    /// Bytes in memory (deserialized values: an estimate), 0 when not in memory.
    pub memory_size: u64,
    /// Bytes of its file on the executor's disk, 0 when not on disk.
    pub disk_size: u64,
    /// In memory as values rather than serialized bytes.
    pub deserialized: bool,
}

impl BlockUpdate {
    /// Spark's block id: `rdd_<rddId>_<partition>`.
    pub fn block_name(&self) -> String {
        format!("rdd_{}_{}", self.rdd_id, self.partition)
    }

    /// Spark's description of the level the block is actually stored at
    /// (`Memory Deserialized 1x Replicated`, `Disk Serialized 1x Replicated`, …;
    /// `None` once removed).
    pub fn level_description(&self) -> String {
        let (memory, disk) = (self.memory_size > 0, self.disk_size > 0);
        if !memory && !disk {
            return "None".into();
        }
        let mut s = String::new();
        if disk {
            s.push_str("Disk ");
        }
        if memory {
            s.push_str("Memory ");
        }
        s.push_str(if memory && self.deserialized { "Deserialized " } else { "Serialized " });
        s.push_str("1x Replicated");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_described_as_spark_does() {
        let b = |memory_size, disk_size, deserialized| BlockUpdate {
            executor_id: "1".into(),
            rdd_id: 3,
            partition: 1,
            memory_size,
            disk_size,
            deserialized,
        };
        assert_eq!(b(10, 0, true).block_name(), "rdd_3_1");
        assert_eq!(b(10, 0, true).level_description(), "Memory Deserialized 1x Replicated");
        assert_eq!(b(10, 0, false).level_description(), "Memory Serialized 1x Replicated");
        assert_eq!(b(0, 10, true).level_description(), "Disk Serialized 1x Replicated");
        assert_eq!(b(0, 0, true).level_description(), "None");
    }
}
