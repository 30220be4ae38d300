//! Fetching a broadcast value or added file piece by piece, peer to peer:
//! pieces in random order, each from a random holder (peers before the driver),
//! checked against its crc32, stored and registered at once so other executors
//! can fetch it from here.

use crate::links::{BlockFetcher, DriverLink};
use crate::piece_store::PieceStore;
use ember_core::error::{EmberError, Result};
use ember_core::pieces::{BlobId, BlobMeta, PeerHolder, PieceSource};
use rand::seq::SliceRandom;
use std::collections::VecDeque;
use std::time::Instant;

pub struct Torrent<'a> {
    pub driver: &'a dyn DriverLink,
    pub fetcher: &'a dyn BlockFetcher,
    pub store: &'a PieceStore,
    pub executor_id: &'a str,
}

impl Torrent<'_> {
    /// Fetches every piece of `blob`, handing each verified piece to `place`
    /// (with its byte offset); returns the blob's metadata.
    pub fn fetch(&self, blob: &BlobId, place: &mut dyn FnMut(usize, &[u8]) -> Result<()>) -> Result<BlobMeta> {
        let started = Instant::now();
        let meta = self.driver.blob_meta(blob)?;
        let n = meta.num_pieces();
        tracing::info!(%blob, pieces = n, bytes = meta.total_bytes, "started reading");
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut rand::rng());
        let mut queue: VecDeque<u32> = order.into();
        // Pieces put back since the last one fetched: when every remaining piece is
        // waiting for another executor, ask the block master to block instead.
        let mut deferred = 0usize;
        while let Some(index) = queue.pop_front() {
            let wait = deferred > queue.len();
            match self.driver.piece_holders(blob, index, self.executor_id, wait)? {
                PieceSource::Wait => {
                    queue.push_back(index);
                    deferred += 1;
                }
                PieceSource::Holders { peers, driver } => {
                    let bytes = self.fetch_piece(blob, &meta, index, peers, driver)?;
                    self.store.put(blob, index, &bytes)?;
                    self.driver.register_piece(blob, index, self.executor_id)?;
                    place(meta.piece_range(index as usize).start, &bytes)?;
                    deferred = 0;
                }
            }
        }
        tracing::info!(%blob, ms = started.elapsed().as_millis() as u64, "finished reading");
        Ok(meta)
    }

    /// One piece from the first holder that answers with the right bytes: peers in
    /// random order, then the driver, then (once) whatever holders are new by then.
    fn fetch_piece(
        &self,
        blob: &BlobId,
        meta: &BlobMeta,
        index: u32,
        mut peers: Vec<PeerHolder>,
        mut driver: bool,
    ) -> Result<Vec<u8>> {
        let mut failed: Vec<String> = Vec::new();
        for round in 0..2 {
            peers.shuffle(&mut rand::rng());
            for peer in peers.iter().filter(|p| p.executor_id != self.executor_id) {
                if failed.contains(&peer.executor_id) {
                    continue;
                }
                match self.fetcher.fetch_piece(&peer.address, blob, index) {
                    Ok(bytes) => match meta.verify(index as usize, &bytes) {
                        Ok(()) => return Ok(bytes),
                        Err(reason) => {
                            tracing::warn!(
                                %blob, piece = index, executor_id = %peer.executor_id, %reason,
                                "corrupt piece from a peer; refetching from another holder"
                            );
                            if let Err(error) = self.driver.report_bad_piece(blob, index, &peer.executor_id) {
                                tracing::warn!(%blob, piece = index, %error, "could not report a corrupt piece");
                            }
                        }
                    },
                    Err(error) => tracing::warn!(
                        %blob, piece = index, executor_id = %peer.executor_id, %error,
                        "piece holder unreachable; trying another holder"
                    ),
                }
                failed.push(peer.executor_id.clone());
            }
            if driver && !failed.iter().any(|f| f == "driver") {
                match self.driver.fetch_piece(blob, index) {
                    Ok(bytes) => match meta.verify(index as usize, &bytes) {
                        Ok(()) => return Ok(bytes),
                        Err(reason) => {
                            tracing::warn!(%blob, piece = index, %reason, "corrupt piece from the driver")
                        }
                    },
                    // The blob is gone (destroyed): no other holder will do.
                    Err(e @ (EmberError::Broadcast { .. } | EmberError::File { .. })) => return Err(e),
                    Err(error) => tracing::warn!(%blob, piece = index, %error, "the driver did not serve a piece"),
                }
                failed.push("driver".into());
            }
            if round == 0 {
                match self.driver.piece_holders(blob, index, self.executor_id, true)? {
                    PieceSource::Holders { peers: p, driver: d } => (peers, driver) = (p, d),
                    PieceSource::Wait => break,
                }
            }
        }
        Err(blob.error(format!(
            "piece {index} of {}: no holder left (tried {})",
            meta.num_pieces(),
            if failed.is_empty() { "none".to_string() } else { failed.join(", ") }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_core::pieces::cut;
    use ember_core::shuffle::MapStatus;
    use parking_lot::Mutex;

    /// A driver whose block master names the same peers for every piece.
    struct FakeDriver {
        meta: BlobMeta,
        pieces: Vec<Vec<u8>>,
        peers: Vec<&'static str>,
        driver_serves: bool,
        registered: Mutex<Vec<u32>>,
        reported: Mutex<Vec<String>>,
    }

    impl DriverLink for FakeDriver {
        fn map_outputs(&self, _: u32) -> Result<Vec<Option<MapStatus>>> {
            unreachable!()
        }
        fn blob_meta(&self, _: &BlobId) -> Result<BlobMeta> {
            Ok(self.meta.clone())
        }
        fn piece_holders(&self, _: &BlobId, _: u32, _: &str, _: bool) -> Result<PieceSource> {
            let peers =
                self.peers.iter().map(|p| PeerHolder { executor_id: p.to_string(), address: p.to_string() }).collect();
            Ok(PieceSource::Holders { peers, driver: true })
        }
        fn register_piece(&self, _: &BlobId, index: u32, _: &str) -> Result<()> {
            self.registered.lock().push(index);
            Ok(())
        }
        fn report_bad_piece(&self, _: &BlobId, _: u32, holder: &str) -> Result<()> {
            self.reported.lock().push(holder.to_string());
            Ok(())
        }
        fn fetch_piece(&self, _: &BlobId, index: u32) -> Result<Vec<u8>> {
            if self.driver_serves {
                Ok(self.pieces[index as usize].clone())
            } else {
                Err(EmberError::Internal("driver unreachable".into()))
            }
        }
        fn ask(&self, _: &str, _: Vec<u8>) -> Result<Vec<u8>> {
            unreachable!()
        }
    }

    /// Peers: "dead" is unreachable, "bad" serves corrupt bytes, "good" serves the piece.
    struct FakePeers(Vec<Vec<u8>>);

    impl BlockFetcher for FakePeers {
        fn fetch_block(&self, _: &MapStatus, _: u32, _: u32, _: u32) -> Result<Vec<u8>> {
            unreachable!()
        }
        fn fetch_piece(&self, address: &str, _: &BlobId, index: u32) -> Result<Vec<u8>> {
            let mut piece = self.0[index as usize].clone();
            match address {
                "dead" => Err(EmberError::Internal("connection refused".into())),
                "bad" => {
                    piece[0] ^= 1;
                    Ok(piece)
                }
                _ => Ok(piece),
            }
        }
    }

    fn fetch(peers: Vec<&'static str>, driver_serves: bool) -> (Result<Vec<u8>>, FakeDriver, Vec<u8>) {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let (meta, pieces) = cut(&data, 1024, true, false);
        let driver = FakeDriver {
            meta,
            pieces: pieces.clone(),
            peers,
            driver_serves,
            registered: Mutex::new(Vec::new()),
            reported: Mutex::new(Vec::new()),
        };
        let dir = tempfile::tempdir().unwrap();
        let store = PieceStore::new(dir.path().join("pieces")).unwrap();
        let fetcher = FakePeers(pieces);
        let torrent = Torrent { driver: &driver, fetcher: &fetcher, store: &store, executor_id: "me" };
        let mut out = vec![0u8; data.len()];
        let result = torrent
            .fetch(&BlobId::Broadcast(1), &mut |offset, piece| {
                out[offset..offset + piece.len()].copy_from_slice(piece);
                Ok(())
            })
            .map(|_| out);
        (result, driver, data)
    }

    #[test]
    fn unreachable_holders_are_skipped_and_every_piece_is_stored_and_registered() {
        let (out, driver, data) = fetch(vec!["dead", "good"], false);
        assert_eq!(out.unwrap(), data);
        let mut registered = driver.registered.lock().clone();
        registered.sort();
        assert_eq!(registered, (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn a_corrupt_piece_is_reported_and_refetched_from_another_holder() {
        let (out, driver, data) = fetch(vec!["bad"], true);
        assert_eq!(out.unwrap(), data);
        assert_eq!(driver.reported.lock().len(), 10);
    }

    #[test]
    fn the_fetch_fails_clearly_when_no_holder_is_left() {
        let (out, _, _) = fetch(vec!["dead", "bad"], false);
        let err = out.unwrap_err().to_string();
        assert!(err.starts_with("broadcast 1: piece") && err.contains("no holder left"), "{err}");
        assert!(err.contains("dead") && err.contains("bad") && err.contains("driver"), "{err}");
    }
}
