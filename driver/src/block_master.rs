//! The driver's block master for broadcast and file pieces: which processes hold
//! each piece (the driver always, until destroy, plus every executor that
//! registered it), and the driver's own copy of the pieces.
//!
//! To keep the driver's upload near one copy of a blob, executors are sent to
//! peers whenever a peer holds the piece; the driver is handed out for a piece
//! no peer holds to one executor at a time (a lease), and others asking for that
//! piece meanwhile are told to `Wait` (fetch other pieces first).

use ember_core::error::{EmberError, Result};
use ember_core::pieces::{BlobId, BlobMeta, PeerHolder, PieceSource};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one executor may fetch a piece from the driver before others may too.
pub const DRIVER_LEASE: Duration = Duration::from_secs(10);

/// Where the driver's copy of a blob's pieces is.
pub enum DriverPieces {
    Memory(Vec<Arc<Vec<u8>>>),
    /// An added file, read piece by piece on demand.
    File(PathBuf),
}

struct Blob {
    meta: BlobMeta,
    source: DriverPieces,
    /// Executors holding each piece.
    holders: Vec<BTreeSet<String>>,
    /// Who is fetching each piece from the driver, since when.
    leases: Vec<Option<(String, Instant)>>,
}

#[derive(Default)]
struct State {
    blobs: HashMap<BlobId, Blob>,
    /// Block-server address of every live executor.
    executors: HashMap<String, String>,
    destroyed: HashSet<BlobId>,
}

#[derive(Default)]
pub struct BlockMaster {
    state: Mutex<State>,
    changed: Condvar,
    /// Bytes of pieces the driver has served.
    bytes_uploaded: AtomicU64,
}

impl BlockMaster {
    pub fn bytes_uploaded(&self) -> u64 {
        self.bytes_uploaded.load(Ordering::Relaxed)
    }

    pub fn add_blob(&self, blob: BlobId, meta: BlobMeta, source: DriverPieces) {
        let n = meta.num_pieces();
        let mut state = self.state.lock();
        state.destroyed.remove(&blob);
        state.blobs.insert(blob, Blob { meta, source, holders: vec![BTreeSet::new(); n], leases: vec![None; n] });
    }

    fn missing(state: &State, blob: &BlobId) -> EmberError {
        if state.destroyed.contains(blob) {
            blob.error("it was destroyed")
        } else {
            blob.error("unknown to the driver")
        }
    }

    pub fn meta(&self, blob: &BlobId) -> Result<BlobMeta> {
        let state = self.state.lock();
        state.blobs.get(blob).map(|b| b.meta.clone()).ok_or_else(|| Self::missing(&state, blob))
    }

    pub fn add_executor(&self, executor_id: &str, address: &str) {
        self.state.lock().executors.insert(executor_id.to_string(), address.to_string());
    }

    /// An executor is gone: it holds nothing any more, and its leases end.
    pub fn remove_executor(&self, executor_id: &str) {
        let mut state = self.state.lock();
        state.executors.remove(executor_id);
        for blob in state.blobs.values_mut() {
            for h in &mut blob.holders {
                h.remove(executor_id);
            }
            for l in &mut blob.leases {
                if l.as_ref().is_some_and(|(who, _)| who == executor_id) {
                    *l = None;
                }
            }
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Who holds piece `index` of `blob`, for executor `requester`. With `wait`,
    /// blocks (at most `DRIVER_LEASE`) rather than answering `Wait`.
    pub fn holders(&self, blob: &BlobId, index: u32, requester: &str, wait: bool) -> Result<PieceSource> {
        let deadline = Instant::now() + DRIVER_LEASE;
        let mut state = self.state.lock();
        loop {
            let State { blobs, executors, destroyed } = &mut *state;
            let Some(b) = blobs.get_mut(blob) else {
                return Err(if destroyed.contains(blob) {
                    blob.error("it was destroyed")
                } else {
                    blob.error("unknown to the driver")
                });
            };
            let i = index as usize;
            if i >= b.holders.len() {
                return Err(blob.error(format!("no piece {index} (it has {})", b.holders.len())));
            }
            let peers: Vec<PeerHolder> = b.holders[i]
                .iter()
                .filter(|id| id.as_str() != requester)
                .filter_map(|id| {
                    let address = executors.get(id)?;
                    (!address.is_empty()).then(|| PeerHolder { executor_id: id.clone(), address: address.clone() })
                })
                .collect();
            if !peers.is_empty() {
                return Ok(PieceSource::Holders { peers, driver: true });
            }
            let now = Instant::now();
            let leased_to_other = b.leases[i]
                .as_ref()
                .is_some_and(|(who, since)| who != requester && now.duration_since(*since) < DRIVER_LEASE);
            if !leased_to_other || now >= deadline {
                b.leases[i] = Some((requester.to_string(), now));
                return Ok(PieceSource::Holders { peers, driver: true });
            }
            if !wait {
                return Ok(PieceSource::Wait);
            }
            self.changed.wait_until(&mut state, deadline);
        }
    }

    /// `executor_id` stored piece `index` of `blob` and serves it from now on.
    pub fn register_piece(&self, blob: &BlobId, index: u32, executor_id: &str) {
        let mut state = self.state.lock();
        if !state.executors.contains_key(executor_id) {
            return;
        }
        if let Some(b) = state.blobs.get_mut(blob)
            && let Some(h) = b.holders.get_mut(index as usize)
        {
            h.insert(executor_id.to_string());
            if b.leases[index as usize].as_ref().is_some_and(|(who, _)| who == executor_id) {
                b.leases[index as usize] = None;
            }
            tracing::debug!(%blob, piece = index, executor_id, "piece registered");
        }
        drop(state);
        self.changed.notify_all();
    }

    /// `executor_id` served a corrupt copy of piece `index`: it is no longer a holder of it.
    pub fn drop_holder(&self, blob: &BlobId, index: u32, executor_id: &str) {
        if let Some(b) = self.state.lock().blobs.get_mut(blob)
            && let Some(h) = b.holders.get_mut(index as usize)
            && h.remove(executor_id)
        {
            tracing::warn!(%blob, piece = index, executor_id, "a holder served a corrupt piece; no longer handing it out");
        }
    }

    /// The driver's copy of a piece (counted as uploaded).
    pub fn read_piece(&self, blob: &BlobId, index: u32) -> Result<Arc<Vec<u8>>> {
        let (range, file) = {
            let state = self.state.lock();
            let b = state.blobs.get(blob).ok_or_else(|| Self::missing(&state, blob))?;
            if index as usize >= b.meta.num_pieces() {
                return Err(blob.error(format!("no piece {index}")));
            }
            match &b.source {
                DriverPieces::Memory(pieces) => {
                    let piece = pieces[index as usize].clone();
                    self.bytes_uploaded.fetch_add(piece.len() as u64, Ordering::Relaxed);
                    return Ok(piece);
                }
                DriverPieces::File(path) => (b.meta.piece_range(index as usize), path.clone()),
            }
        };
        let mut f = std::fs::File::open(&file).map_err(|e| EmberError::io(file.display(), e))?;
        let mut buf = vec![0u8; range.len()];
        f.seek(SeekFrom::Start(range.start as u64))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| EmberError::io(file.display(), e))?;
        self.bytes_uploaded.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(Arc::new(buf))
    }

    /// Executors dropped their copies (unpersist): only the driver holds the blob now.
    pub fn forget_executor_copies(&self, blob: &BlobId) {
        if let Some(b) = self.state.lock().blobs.get_mut(blob) {
            b.holders.iter_mut().for_each(BTreeSet::clear);
            b.leases.iter_mut().for_each(|l| *l = None);
        }
        self.changed.notify_all();
    }

    /// Removes a blob everywhere (destroy); later reads fail clearly.
    pub fn remove_blob(&self, blob: &BlobId) {
        let mut state = self.state.lock();
        state.blobs.remove(blob);
        state.destroyed.insert(blob.clone());
        drop(state);
        self.changed.notify_all();
    }

    /// Drops every blob (the application ended).
    pub fn clear(&self) {
        self.state.lock().blobs.clear();
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_core::pieces::cut;

    fn master_with_blob() -> (BlockMaster, BlobId) {
        let m = BlockMaster::default();
        let blob = BlobId::Broadcast(1);
        let (meta, pieces) = cut(&[7u8; 10], 4, true, false);
        m.add_blob(blob.clone(), meta, DriverPieces::Memory(pieces.into_iter().map(Arc::new).collect()));
        m.add_executor("a", "127.0.0.2:1");
        m.add_executor("b", "127.0.0.3:1");
        (m, blob)
    }

    #[test]
    fn the_driver_serves_a_piece_to_one_executor_at_a_time_then_peers_serve_it() {
        let (m, blob) = master_with_blob();
        assert_eq!(m.holders(&blob, 0, "a", false).unwrap(), PieceSource::Holders { peers: vec![], driver: true });
        assert_eq!(m.holders(&blob, 0, "b", false).unwrap(), PieceSource::Wait);
        assert_eq!(m.read_piece(&blob, 0).unwrap().len(), 4);
        m.register_piece(&blob, 0, "a");
        let peers = vec![PeerHolder { executor_id: "a".into(), address: "127.0.0.2:1".into() }];
        assert_eq!(m.holders(&blob, 0, "b", true).unwrap(), PieceSource::Holders { peers, driver: true });
        m.remove_executor("a");
        assert_eq!(m.holders(&blob, 0, "b", false).unwrap(), PieceSource::Holders { peers: vec![], driver: true });
        assert_eq!(m.bytes_uploaded(), 4);
    }

    #[test]
    fn a_waiting_executor_wakes_when_the_piece_is_registered() {
        let (m, blob) = master_with_blob();
        let m = Arc::new(m);
        assert!(matches!(m.holders(&blob, 1, "a", false).unwrap(), PieceSource::Holders { .. }));
        let waiter = {
            let (m, blob) = (m.clone(), blob.clone());
            std::thread::spawn(move || m.holders(&blob, 1, "b", true).unwrap())
        };
        m.register_piece(&blob, 1, "a");
        match waiter.join().unwrap() {
            PieceSource::Holders { peers, .. } => assert_eq!(peers[0].executor_id, "a"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn destroyed_blobs_fail_clearly() {
        let (m, blob) = master_with_blob();
        m.remove_blob(&blob);
        let err = m.meta(&blob).unwrap_err().to_string();
        assert!(err.contains("destroyed"), "{err}");
        assert!(m.holders(&blob, 0, "a", true).unwrap_err().to_string().contains("destroyed"));
    }
}
