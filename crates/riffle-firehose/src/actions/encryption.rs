//! StartDeliveryStreamEncryption: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_StartDeliveryStreamEncryption.html>
//! and StopDeliveryStreamEncryption: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_StopDeliveryStreamEncryption.html>
//!
//! Server-side encryption is real: while it is on, every batch appended to
//! the stream's log is sealed (AES-256-GCM) under the storage engine's data
//! key named after the `KeyARN` (or one key standing in for AWS's own key),
//! as Kinesis streams do; there is no KMS. Records keep the encryption they
//! were written with. The status shows ENABLING/DISABLING for the status
//! delay, then ENABLED/DISABLED.

use std::sync::Arc;

use bytes::Bytes;
use riffle_log::DataKey;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::{Encryption, Kind};
use crate::json::{self, Text};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Firehose, FirehoseError, errors};

/// The model's `KeyType` values.
const KEY_TYPES: &[&str] = &["AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"];
const KEY_ARN_CHARS_MAX: usize = 512;

/// `DeliveryStreamEncryptionConfigurationInput`.
#[derive(Deserialize)]
#[allow(non_snake_case)]
pub struct EncryptionInput {
    KeyARN: Option<Text>,
    KeyType: Option<Text>,
}

impl EncryptionInput {
    pub fn check(&self, v: &mut Violations, path: &str) {
        let arn_path = format!("{path}.keyARN");
        let arn = self.KeyARN.as_ref().map(Text::as_str);
        v.length(arn, &arn_path, 1, KEY_ARN_CHARS_MAX);
        v.pattern(arn, &arn_path, Pattern::KmsKeyArn);
        let type_path = format!("{path}.keyType");
        v.required(&self.KeyType, &type_path);
        v.one_of(
            self.KeyType.as_ref().map(Text::as_str),
            &type_path,
            KEY_TYPES,
        );
    }

    /// The encryption it asks for, ENABLING until `until_ms`; AWS's rules
    /// on which key types take a KeyARN.
    pub fn to_encryption(&self, until_ms: i64) -> Result<Encryption, FirehoseError> {
        let key_type = self.KeyType.as_ref().map_or("", Text::as_str);
        let key_arn = self.KeyARN.as_ref().map(|t| t.0.clone());
        match (key_type, &key_arn) {
            ("CUSTOMER_MANAGED_CMK", None) => Err(FirehoseError::InvalidArgument(
                "KeyARN must be provided when KeyType is CUSTOMER_MANAGED_CMK.".to_owned(),
            )),
            ("AWS_OWNED_CMK", Some(_)) => Err(FirehoseError::InvalidArgument(
                "KeyARN must not be provided when KeyType is AWS_OWNED_CMK.".to_owned(),
            )),
            _ => Ok(Encryption {
                key_type: key_type.to_owned(),
                key_arn,
                enabled: true,
                until_ms,
            }),
        }
    }
}

pub fn not_for_kinesis_source() -> FirehoseError {
    FirehoseError::InvalidArgument(
        "Server-side encryption is not supported for delivery streams with KinesisStreamAsSource type."
            .to_owned(),
    )
}

/// The storage engine's data key for `encryption` when it is on (created
/// on first use: blocking, so off the async threads).
pub async fn data_key(
    firehose: &Firehose,
    encryption: Option<&Encryption>,
) -> Result<Option<DataKey>, FirehoseError> {
    let Some(enc) = encryption.filter(|e| e.enabled) else {
        return Ok(None);
    };
    let store = Arc::clone(firehose.store());
    let name = enc.data_key_name().to_owned();
    let key = tokio::task::spawn_blocking(move || store.data_key(&name))
        .await
        .map_err(errors::task)??;
    Ok(Some(key))
}

/// `DeliveryStreamEncryptionConfiguration` as DescribeDeliveryStream shows it.
pub fn describe(encryption: Option<&Encryption>, now: i64) -> Value {
    let Some(enc) = encryption else {
        return json!({"Status": "DISABLED"});
    };
    let status = match (enc.enabled, now < enc.until_ms) {
        (true, true) => "ENABLING",
        (true, false) => "ENABLED",
        (false, true) => "DISABLING",
        (false, false) => "DISABLED",
    };
    let mut d = json!({"KeyType": enc.key_type, "Status": status});
    if let Some(arn) = &enc.key_arn {
        d["KeyARN"] = Value::from(arn.as_str());
    }
    d
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct StartInput {
    DeliveryStreamName: Option<Text>,
    DeliveryStreamEncryptionConfigurationInput: Option<EncryptionInput>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct StopInput {
    DeliveryStreamName: Option<Text>,
}

pub async fn run_start(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: StartInput = json::parse(body)?;
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    if let Some(enc) = &input.DeliveryStreamEncryptionConfigurationInput {
        enc.check(&mut v, "deliveryStreamEncryptionConfigurationInput");
    }
    v.into_result::<crate::validate::ValidationError>()?;
    let name = name.unwrap_or_default();
    let until = now_ms().saturating_add(delay_ms(firehose));
    let encryption = match &input.DeliveryStreamEncryptionConfigurationInput {
        Some(enc) => enc.to_encryption(until)?,
        None => Encryption {
            key_type: "AWS_OWNED_CMK".to_owned(),
            key_arn: None,
            enabled: true,
            until_ms: until,
        },
    };
    change(firehose, name, Some(encryption)).await
}

pub async fn run_stop(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: StopInput = json::parse(body)?;
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    v.into_result::<crate::validate::ValidationError>()?;
    change(firehose, name.unwrap_or_default(), None).await
}

fn delay_ms(firehose: &Firehose) -> i64 {
    i64::try_from(firehose.config().status_delay.as_millis()).unwrap_or(i64::MAX)
}

/// Applies a start (`Some`) or a stop (`None`). Records appended from now
/// on are sealed, or not, accordingly.
async fn change(
    firehose: &Firehose,
    name: &str,
    start: Option<Encryption>,
) -> Result<Bytes, FirehoseError> {
    let _guard = firehose.lock_catalog().await;
    let stream = firehose.lookup(name)?;
    let mut record = stream.record();
    let now = now_ms();
    if record.kind == Kind::KinesisStreamAsSource {
        return Err(not_for_kinesis_source());
    }
    let status = record.status_at(now);
    if status != "ACTIVE" {
        return Err(FirehoseError::ResourceInUse(format!(
            "Firehose {name} under account {} is not ACTIVE, instead in state {status}.",
            firehose.account()
        )));
    }
    record.encryption = match start {
        Some(enc) => Some(enc),
        None => record.encryption.take().map(|enc| Encryption {
            enabled: false,
            until_ms: now.saturating_add(delay_ms(firehose)),
            ..enc
        }),
    };
    let key = data_key(firehose, record.encryption.as_ref()).await?;
    firehose.save(&stream, record).await?;
    stream.set_data_key(key);
    Ok(super::json_body(&json!({})))
}
