//! `spark.authenticate` seen from both sides: a job whose shuffle blocks and
//! broadcast pieces stay served while it pauses, and a probe that calls a
//! running application as an executor would (register, shuffle block, broadcast
//! piece), with whatever secret its environment gives it (`EMBER_AUTH_SECRET`).

use ember::prelude::*;
use ember_core::pieces::BlobId;
use ember_core::security::{ClientAuth, SignedChannel, secret_from_env};
use ember_core::wire::v1::{
    self, MapOutputsRequest, PieceRequest, Register, ShuffleBlockRequest, block_server_client::BlockServerClient,
    driver_client::DriverClient, driver_command, executor_message,
};
use serde_json::{Value, json};
use std::time::Duration;

/// A lookup table of `table` entries broadcast in pieces, read by the map side
/// of a `reduce_by_key` over `records` numbers in 4 partitions; after the first
/// action the job waits for `pause_file` (its blocks and pieces stay served),
/// then counts again.
///
/// Prints `ember: broadcast B, shuffle S` to stderr before pausing.
/// Output: `{"keys", "total"}`: 100 keys and `records` in all.
pub fn lookup_table(sc: &EmberContext, records: u64, table: u64, pause_file: &str) -> ember::Result<Value> {
    let values: Vec<u64> = (0..table).map(|i| crate::mix(i) % 100).collect();
    let lookup = sc.broadcast(values)?;
    let id = lookup.id();
    let counts = sc
        .range(0, records as i64, 1, 4)?
        .map(Fn!(move |i: i64| {
            let table = lookup.value();
            (table[i as usize % table.len()], 1u64)
        }))
        .reduce_by_key_with(Fn!(|a: u64, b: u64| a + b), 4);
    counts.count()?;
    eprintln!("ember: broadcast {id}, shuffle 0");
    crate::wait_for_file(pause_file, Duration::from_secs(300))?;
    let counted = counts.collect()?;
    Ok(json!({ "keys": counted.len(), "total": counted.iter().map(|(_, n)| n).sum::<u64>() }))
}

/// What a probe call came to: `ok …`, `refused: …` (gRPC `UNAUTHENTICATED`),
/// or `error CODE: …`.
fn outcome<T>(result: Result<T, tonic::Status>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(v) => format!("ok {}", ok(v)),
        Err(s) if s.code() == tonic::Code::Unauthenticated => format!("refused: {}", s.message()),
        Err(s) => format!("error {:?}: {}", s.code(), s.message()),
    }
}

async fn chunks(
    response: Result<tonic::Response<tonic::Streaming<v1::Chunk>>, tonic::Status>,
) -> Result<usize, tonic::Status> {
    let mut stream = response?.into_inner();
    let mut bytes = 0;
    while let Some(chunk) = stream.message().await? {
        bytes += chunk.data.len();
    }
    Ok(bytes)
}

async fn channel(url: String) -> anyhow::Result<tonic::transport::Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(url)?.connect_timeout(Duration::from_secs(5));
    Ok(endpoint.connect().await?)
}

/// Calls the application whose driver listens at `driver` (`host:port`) as an
/// executor would, signing calls with `EMBER_AUTH_SECRET` if set: asks where
/// map output 0 of `shuffle` is (unless `block_server` says), fetches its block
/// 0, fetches piece 0 of broadcast `broadcast` from that block server and from
/// the driver, and registers as an executor of this very build.
///
/// Output: one field a call, each `ok …`, `refused: …` or `error …` (a
/// registration answered says whether the settings the driver sent hold the
/// secret):
/// `{"map_outputs", "block_server", "shuffle_block", "piece_from_executor",
/// "piece_from_driver", "register"}`.
pub fn auth_probe(driver: &str, block_server: Option<&str>, shuffle: u32, broadcast: u64) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let auth = ClientAuth::new(secret_from_env()?);
        let mut driver_client: DriverClient<SignedChannel> =
            DriverClient::with_interceptor(channel(format!("http://{driver}")).await?, auth.clone());
        let outputs = driver_client.map_outputs(MapOutputsRequest { shuffle_id: shuffle }).await;
        let learned = outputs.as_ref().ok().and_then(|r| {
            let statuses: Vec<Option<ember_core::shuffle::MapStatus>> = postcard::from_bytes(&r.get_ref().data).ok()?;
            statuses.into_iter().flatten().next().map(|s| s.address)
        });
        let map_outputs = outcome(outputs, |r| format!("{} bytes", r.into_inner().data.len()));
        let Some(address) = block_server.map(str::to_string).or(learned) else {
            return Ok(json!({ "map_outputs": map_outputs }));
        };
        let mut block_client =
            BlockServerClient::with_interceptor(channel(format!("http://{address}")).await?, auth.clone());
        let request = ShuffleBlockRequest { shuffle_id: shuffle, map_index: 0, reduce_index: 0 };
        let shuffle_block =
            outcome(chunks(block_client.fetch_shuffle_block(request).await).await, |n| format!("{n} bytes"));
        let piece =
            || PieceRequest { blob: postcard::to_allocvec(&BlobId::Broadcast(broadcast)).expect("encodes"), index: 0 };
        let piece_from_executor =
            outcome(chunks(block_client.fetch_piece(piece()).await).await, |n| format!("{n} bytes"));
        let piece_from_driver =
            outcome(chunks(driver_client.fetch_piece(piece()).await).await, |n| format!("{n} bytes"));
        // Registering opens a session: the first message is the registration.
        let register = v1::ExecutorMessage {
            kind: Some(executor_message::Kind::Register(Register {
                executor_id: "auth-probe".into(),
                build_id: ember_core::closure::build_id().to_string(),
                cores: 1,
                memory_bytes: 256 << 20,
                block_address: address.clone(),
                pid: std::process::id(),
            })),
        };
        let session = driver_client.session(tokio_stream::iter(vec![register])).await;
        let register = match session {
            Ok(response) => {
                let mut inbound = response.into_inner();
                outcome(inbound.message().await, |first| match first.and_then(|c| c.kind) {
                    Some(driver_command::Kind::Registered(r)) => {
                        let conf: ember_core::config::Conf = postcard::from_bytes(&r.conf).unwrap_or_default();
                        let leaked = conf.get(ember_core::security::SECRET_CONF).is_some();
                        format!("registered; secret in the conf sent: {leaked}")
                    }
                    other => format!("unexpected first reply {other:?}"),
                })
            }
            Err(status) => outcome::<()>(Err(status), |_| String::new()),
        };
        Ok(json!({
            "map_outputs": map_outputs,
            "block_server": address,
            "shuffle_block": shuffle_block,
            "piece_from_executor": piece_from_executor,
            "piece_from_driver": piece_from_driver,
            "register": register,
        }))
    })
}
