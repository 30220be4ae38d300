//! The gRPC protocol (generated from proto/ember.proto) and the one place engine
//! errors become `tonic::Status` and back.

use crate::error::EmberError;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("ember.v1");
}

/// Size of the chunks bulk data is streamed in.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Largest single message either side accepts (commands, statuses, chunks).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub fn to_status(err: EmberError) -> tonic::Status {
    use tonic::Code;
    let code = match &err {
        EmberError::Config(_) | EmberError::Invalid(_) | EmberError::Master { .. } => Code::InvalidArgument,
        EmberError::InputPath { .. }
        | EmberError::File { .. }
        | EmberError::Broadcast { .. }
        | EmberError::StreamBlock { .. } => Code::NotFound,
        EmberError::OutputPath { .. } => Code::FailedPrecondition,
        EmberError::Stopped => Code::Unavailable,
        EmberError::Unauthenticated(_) => Code::Unauthenticated,
        EmberError::FetchFailed(_) | EmberError::ExecutorLost { .. } => Code::Unavailable,
        _ => Code::Internal,
    };
    // The full error travels too, so the receiving side keeps its type.
    let details = postcard::to_allocvec(&err).unwrap_or_default();
    tonic::Status::with_details(code, err.to_string(), details.into())
}

pub fn from_status(status: tonic::Status) -> EmberError {
    if let Ok(err) = postcard::from_bytes::<EmberError>(status.details()) {
        return err;
    }
    EmberError::Internal(format!("rpc failed ({:?}): {}", status.code(), status.message()))
}

/// Splits bytes into stream chunks.
pub fn chunks(data: std::sync::Arc<Vec<u8>>) -> impl Iterator<Item = v1::Chunk> {
    let n = data.len().div_ceil(CHUNK_BYTES).max(1);
    (0..n).map(move |i| {
        let start = i * CHUNK_BYTES;
        let end = (start + CHUNK_BYTES).min(data.len());
        v1::Chunk { data: data[start..end].to_vec() }
    })
}
