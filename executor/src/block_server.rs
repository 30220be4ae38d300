//! The executor's block server: other executors fetch shuffle blocks from it,
//! broadcast and file pieces, and the driver fetches large task results.

use crate::env::ExecutorServices;
use ember_core::error::EmberError;
use ember_core::pieces::BlobId;
use ember_core::wire::v1::block_server_server::BlockServer;
use ember_core::wire::v1::{
    CachedBlockRequest, Chunk, Payload, PieceRequest, ResultRequest, ShuffleBlockRequest, StatsRequest,
    StreamBlockRequest, StreamBlockUpload, UploadStatsReply,
};
use ember_core::wire::{chunks, to_status};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

type ChunkStream = Pin<Box<dyn futures::Stream<Item = Result<Chunk, Status>> + Send>>;

/// Large task results waiting for the driver to fetch them.
#[derive(Default)]
pub struct StoredResults {
    results: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
}

impl StoredResults {
    pub fn put(&self, task_id: u64, bytes: Vec<u8>) {
        self.results.lock().insert(task_id, Arc::new(bytes));
    }
    fn take(&self, task_id: u64) -> Option<Arc<Vec<u8>>> {
        self.results.lock().remove(&task_id)
    }
}

pub struct BlockService {
    pub services: Arc<ExecutorServices>,
    pub results: Arc<StoredResults>,
}

fn stream(data: Arc<Vec<u8>>) -> ChunkStream {
    Box::pin(futures::stream::iter(chunks(data).map(Ok)))
}

#[tonic::async_trait]
impl BlockServer for BlockService {
    type FetchShuffleBlockStream = ChunkStream;
    type FetchResultStream = ChunkStream;
    type FetchPieceStream = ChunkStream;
    type FetchStreamBlockStream = ChunkStream;
    type FetchCachedBlockStream = ChunkStream;

    async fn fetch_cached_block(
        &self,
        request: Request<CachedBlockRequest>,
    ) -> Result<Response<Self::FetchCachedBlockStream>, Status> {
        let r = request.into_inner();
        let services = self.services.clone();
        let partition = r.partition as usize;
        let found = tokio::task::spawn_blocking(move || services.blocks.serialized(r.rdd_id, partition))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        match found {
            Some(bytes) => Ok(Response::new(stream(bytes.map_err(to_status)?))),
            None => Err(to_status(EmberError::Internal(format!(
                "rdd_{}_{partition} is not held by this executor",
                r.rdd_id
            )))),
        }
    }

    async fn fetch_shuffle_block(
        &self,
        request: Request<ShuffleBlockRequest>,
    ) -> Result<Response<Self::FetchShuffleBlockStream>, Status> {
        let r = request.into_inner();
        let services = self.services.clone();
        let bytes =
            tokio::task::spawn_blocking(move || services.shuffle.read_block(r.shuffle_id, r.map_index, r.reduce_index))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(to_status)?;
        Ok(Response::new(stream(Arc::new(bytes))))
    }

    async fn fetch_result(&self, request: Request<ResultRequest>) -> Result<Response<Self::FetchResultStream>, Status> {
        let task_id = request.into_inner().task_id;
        let bytes = self
            .results
            .take(task_id)
            .ok_or_else(|| to_status(EmberError::Internal(format!("no stored result for task {task_id}"))))?;
        Ok(Response::new(stream(bytes)))
    }

    async fn fetch_piece(&self, request: Request<PieceRequest>) -> Result<Response<Self::FetchPieceStream>, Status> {
        let r = request.into_inner();
        let blob: BlobId = postcard::from_bytes(&r.blob).map_err(|e| to_status(e.into()))?;
        let services = self.services.clone();
        let bytes = tokio::task::spawn_blocking(move || services.pieces.serve(&blob, r.index))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        Ok(Response::new(stream(Arc::new(bytes))))
    }

    async fn upload_stats(&self, _request: Request<StatsRequest>) -> Result<Response<UploadStatsReply>, Status> {
        Ok(Response::new(UploadStatsReply { broadcast_bytes_uploaded: self.services.pieces.bytes_uploaded() }))
    }

    async fn fetch_stream_block(
        &self,
        request: Request<StreamBlockRequest>,
    ) -> Result<Response<Self::FetchStreamBlockStream>, Status> {
        let id = request.into_inner().block_id;
        let services = self.services.clone();
        let found = tokio::task::spawn_blocking(move || services.stream_blocks.get(&id).map(|b| (id, b)))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        match found {
            (_, Some(bytes)) => Ok(Response::new(stream(bytes))),
            (id, None) => Err(to_status(EmberError::StreamBlock { id, reason: "not held by this executor".into() })),
        }
    }

    async fn replicate_stream_block(
        &self,
        request: Request<tonic::Streaming<StreamBlockUpload>>,
    ) -> Result<Response<Payload>, Status> {
        let mut uploads = request.into_inner();
        let mut id = String::new();
        let mut bytes = Vec::new();
        while let Some(upload) = uploads.message().await? {
            if id.is_empty() {
                id = upload.block_id;
            }
            bytes.extend_from_slice(&upload.data);
        }
        let services = self.services.clone();
        tokio::task::spawn_blocking(move || services.stream_blocks.put(&id, Arc::new(bytes)))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        Ok(Response::new(Payload { data: Vec::new() }))
    }
}
