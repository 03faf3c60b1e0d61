//! StartStreamEncryption: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_StartStreamEncryption.html>
//! and StopStreamEncryption: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_StopStreamEncryption.html>
//!
//! Server-side encryption is real: while a stream has a KMS `KeyId`, every
//! batch appended to its shards is stored encrypted (AES-256-GCM) under the
//! storage engine's data key named after that `KeyId` (see
//! `riffle_log::LogStore::data_key`; there is no KMS, the engine's local key
//! ring stands in for it). Records keep the encryption they were written
//! with: after StopStreamEncryption older records still read back decrypted
//! and report `EncryptionType` `KMS`, as on AWS.

use bytes::Bytes;
use riffle_log::{Appended, DataKey, LogError, RecordIn, ShardLog};
use serde::Deserialize;

use super::settings::{self, Needs};
use crate::catalog::{Status, StreamRecord};
use crate::json::{self, Str};
use crate::stream::Stream;
use crate::validate::Violations;
use crate::{Kinesis, KinesisError, errors};

/// The model's `KeyId` length bounds.
pub const KEY_ID_CHARS_MIN: usize = 1;
pub const KEY_ID_CHARS_MAX: usize = 2048;
/// The model's `EncryptionType` values; "The only valid value is KMS" for
/// these two actions.
const ENCRYPTION_TYPES: &[&str] = &["NONE", "KMS"];

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    EncryptionType: Option<Str<'a>>,
    #[serde(borrow)]
    KeyId: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

/// Validates the input; returns the stream name and the KeyId.
fn parse(kinesis: &Kinesis, input: &Input<'_>) -> Result<(String, String), KinesisError> {
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    v.required(&input.EncryptionType, "encryptionType");
    v.one_of(
        input.EncryptionType.as_ref().map(Str::as_str),
        "encryptionType",
        ENCRYPTION_TYPES,
    );
    v.required(&input.KeyId, "keyId");
    v.length(
        input.KeyId.as_ref().map(Str::as_str),
        "keyId",
        KEY_ID_CHARS_MIN,
        KEY_ID_CHARS_MAX,
    );
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    if input.EncryptionType.as_ref().map(Str::as_str) != Some("KMS") {
        return Err(KinesisError::InvalidArgument(
            "EncryptionType must be KMS.".to_owned(),
        ));
    }
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    // Validated: present.
    let key_id = input.KeyId.as_ref().map_or("", Str::as_str).to_owned();
    Ok((name, key_id))
}

/// The catalog record `stream` gets when its KeyId becomes `key_id`: the
/// change is applied at once, the stream shows UPDATING for the configured
/// status delay as on AWS.
fn with_key(kinesis: &Kinesis, stream: &Stream, now: i64, key_id: Option<String>) -> StreamRecord {
    let delay_ms = settings::status_delay_ms(kinesis);
    let mut record = StreamRecord {
        status: if delay_ms == 0 {
            Status::Active
        } else {
            Status::Updating
        },
        status_until_ms: now.saturating_add(delay_ms),
        ..stream.record.clone()
    };
    record.settings.encryption_key_id = key_id;
    record
}

pub async fn run_start(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let (name, key_id) = parse(kinesis, &input)?;
    // The data key exists (durably) before any record can be written with it.
    let store = kinesis.store().clone();
    let name_of_key = key_id.clone();
    tokio::task::spawn_blocking(move || store.data_key(&name_of_key))
        .await
        .map_err(errors::task)??;
    settings::update(kinesis, &name, Needs::Active, |stream, now| {
        Ok((with_key(kinesis, stream, now, Some(key_id)), ()))
    })
    .await?;
    Ok(Bytes::new())
}

pub async fn run_stop(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let (name, key_id) = parse(kinesis, &input)?;
    settings::update(kinesis, &name, Needs::Active, |stream, now| {
        match stream.record.settings.encryption_key_id.as_deref() {
            Some(current) if current == key_id => {}
            Some(_) => {
                return Err(KinesisError::InvalidArgument(format!(
                    "The KeyId {key_id} does not match the key stream {name} is encrypted with."
                )));
            }
            None => {
                return Err(KinesisError::InvalidArgument(format!(
                    "Stream {name} under account {} is not encrypted.",
                    kinesis.account()
                )));
            }
        }
        Ok((with_key(kinesis, stream, now, None), ()))
    })
    .await?;
    Ok(Bytes::new())
}

/// `EncryptionType` of a stream (and of records PutRecord(s) write to it).
pub(crate) fn encryption_type(stream: &Stream) -> &'static str {
    if stream.record.settings.encryption_key_id.is_some() {
        "KMS"
    } else {
        "NONE"
    }
}

/// The data key new records of `stream` are encrypted with, if any. Cached
/// by the engine after the first use, so this is a map lookup per call.
pub(crate) fn data_key(kinesis: &Kinesis, stream: &Stream) -> Result<Option<DataKey>, LogError> {
    stream
        .record
        .settings
        .encryption_key_id
        .as_deref()
        .map(|key_id| kinesis.store().data_key(key_id))
        .transpose()
}

/// Appends to one shard's log, encrypted under `key` when there is one.
pub(crate) async fn append(
    log: &ShardLog,
    records: &[RecordIn<'_>],
    now: i64,
    key: Option<&DataKey>,
) -> Result<Appended, LogError> {
    match key {
        Some(key) => log.append_encrypted(records, now, key).await,
        None => log.append(records, now).await,
    }
}
