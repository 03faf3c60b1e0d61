//! The S3 destination: `S3DestinationConfiguration` and
//! `ExtendedS3DestinationConfiguration` as requests give them (checked
//! against the model), as the catalog keeps them (AWS's defaults filled
//! in), as DescribeDeliveryStream shows them, and as UpdateDestination
//! changes them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::FirehoseError;
use crate::compression::CompressionFormat;
use crate::convert;
use crate::json::{Int, Text};
use crate::prefix::{self, PrefixError, S3Prefixes};
use crate::processing;
use crate::validate::{Pattern, Violations};

/// AWS's buffering defaults and bounds (model `BufferingHints`; "Amazon S3
/// buffer size 1–128 MiB, default 5; interval 0–900 s, default 300").
pub const SIZE_MB_DEFAULT: i32 = 5;
pub const SIZE_MB_MIN: i64 = 1;
pub const SIZE_MB_MAX: i64 = 128;
pub const INTERVAL_S_DEFAULT: i32 = 300;
pub const INTERVAL_S_MIN: i64 = 0;
pub const INTERVAL_S_MAX: i64 = 900;
/// The model's `CompressionFormat` values.
pub const COMPRESSION_FORMATS: &[&str] =
    &["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"];
/// The model's `S3BackupMode` values.
const BACKUP_MODES: &[&str] = &["Disabled", "Enabled"];
/// Bounds of the model's string shapes used here.
const ROLE_ARN_MAX: usize = 512;
const BUCKET_ARN_MAX: usize = 2048;
const PREFIX_MAX: usize = 1024;
const FILE_EXTENSION_MAX: usize = 128;
const TIME_ZONE_MAX: usize = 50;
/// `RetryDurationInSeconds`: 0–7,200 (model).
const RETRY_DURATION_S_MAX: i64 = 7200;
/// "When dynamic partitioning is enabled, the minimum buffer size is 64
/// MiB" ("Dynamic partitioning in Amazon Data Firehose"; the default is
/// then 128 MiB).
pub const PARTITIONING_SIZE_MB_MIN: i32 = 64;
const PARTITIONING_SIZE_MB_DEFAULT: i32 = 128;

/// `BufferingHints` as a request gives it.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct HintsInput {
    SizeInMBs: Option<Int>,
    IntervalInSeconds: Option<Int>,
}

/// An S3 (or Extended S3) destination configuration or update as a request
/// gives it. One shape for the four model shapes: the plain ones are the
/// extended ones without the extended members.
#[derive(Debug, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct S3Input {
    RoleARN: Option<Text>,
    BucketARN: Option<Text>,
    Prefix: Option<Text>,
    ErrorOutputPrefix: Option<Text>,
    BufferingHints: Option<HintsInput>,
    CompressionFormat: Option<Text>,
    EncryptionConfiguration: Option<Value>,
    CloudWatchLoggingOptions: Option<Value>,
    ProcessingConfiguration: Option<Value>,
    S3BackupMode: Option<Text>,
    S3BackupConfiguration: Option<Box<S3Input>>,
    S3BackupUpdate: Option<Box<S3Input>>,
    DataFormatConversionConfiguration: Option<Value>,
    DynamicPartitioningConfiguration: Option<Value>,
    FileExtension: Option<Text>,
    CustomTimeZone: Option<Text>,
}

/// A destination as the catalog keeps it, AWS's defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Destination {
    /// Created as `ExtendedS3DestinationConfiguration`.
    pub extended: bool,
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub size_mb: i32,
    pub interval_s: i32,
    pub compression: String,
    pub encryption: Value,
    pub cloudwatch: Value,
    pub processing: Option<Value>,
    pub backup_mode: String,
    pub backup: Option<Box<S3Destination>>,
    pub data_format_conversion: Option<Value>,
    pub dynamic_partitioning: Option<Value>,
    pub file_extension: Option<String>,
    pub custom_time_zone: Option<String>,
}

impl S3Input {
    /// Checks every member's model constraints; `path` is AWS's name of
    /// this structure in violation texts (`extendedS3DestinationConfiguration`).
    /// `create`: RoleARN and BucketARN are required.
    pub fn check(&self, v: &mut Violations, path: &str, create: bool) {
        let at = |member: &str| format!("{path}.{member}");
        let text = |t: &Option<Text>| t.as_ref().map(Text::as_str).map(str::to_owned);
        if create {
            v.required(&self.RoleARN, &at("roleARN"));
            v.required(&self.BucketARN, &at("bucketARN"));
        }
        let role = text(&self.RoleARN);
        v.length(role.as_deref(), &at("roleARN"), 1, ROLE_ARN_MAX);
        v.pattern(role.as_deref(), &at("roleARN"), Pattern::RoleArn);
        let bucket = text(&self.BucketARN);
        v.length(bucket.as_deref(), &at("bucketARN"), 1, BUCKET_ARN_MAX);
        v.pattern(bucket.as_deref(), &at("bucketARN"), Pattern::BucketArn);
        v.length(text(&self.Prefix).as_deref(), &at("prefix"), 0, PREFIX_MAX);
        let error_prefix = text(&self.ErrorOutputPrefix);
        v.length(
            error_prefix.as_deref(),
            &at("errorOutputPrefix"),
            0,
            PREFIX_MAX,
        );
        if let Some(hints) = &self.BufferingHints {
            let size = hints.SizeInMBs.map(|n| i64::from(n.0));
            v.range(
                size,
                &at("bufferingHints.sizeInMBs"),
                Some(SIZE_MB_MIN),
                Some(SIZE_MB_MAX),
            );
            let interval = hints.IntervalInSeconds.map(|n| i64::from(n.0));
            let interval_at = at("bufferingHints.intervalInSeconds");
            v.range(
                interval,
                &interval_at,
                Some(INTERVAL_S_MIN),
                Some(INTERVAL_S_MAX),
            );
        }
        let compression = text(&self.CompressionFormat);
        v.one_of(
            compression.as_deref(),
            &at("compressionFormat"),
            COMPRESSION_FORMATS,
        );
        v.one_of(
            text(&self.S3BackupMode).as_deref(),
            &at("s3BackupMode"),
            BACKUP_MODES,
        );
        let extension = text(&self.FileExtension);
        v.length(
            extension.as_deref(),
            &at("fileExtension"),
            0,
            FILE_EXTENSION_MAX,
        );
        v.pattern(
            extension.as_deref(),
            &at("fileExtension"),
            Pattern::FileExtension,
        );
        let zone = text(&self.CustomTimeZone);
        v.length(zone.as_deref(), &at("customTimeZone"), 0, TIME_ZONE_MAX);
        v.pattern(
            zone.as_deref(),
            &at("customTimeZone"),
            Pattern::CustomTimeZone,
        );
        if let Some(processing) = &self.ProcessingConfiguration {
            processing::check_model(processing, v, &at("processingConfiguration"));
        }
        let retry = self
            .DynamicPartitioningConfiguration
            .as_ref()
            .and_then(|d| d.pointer("/RetryOptions/DurationInSeconds"))
            .and_then(Value::as_i64);
        v.range(
            retry,
            &at("dynamicPartitioningConfiguration.retryOptions.durationInSeconds"),
            Some(0),
            Some(RETRY_DURATION_S_MAX),
        );
        if let Some(backup) = &self.S3BackupConfiguration {
            backup.check(v, &at("s3BackupConfiguration"), true);
        }
        if let Some(backup) = &self.S3BackupUpdate {
            backup.check(v, &at("s3BackupUpdate"), false);
        }
    }

    /// The destination a CreateDeliveryStream asks for (already checked),
    /// with AWS's defaults for what it leaves out.
    pub fn into_destination(self, extended: bool) -> S3Destination {
        let partitioning = self
            .DynamicPartitioningConfiguration
            .as_ref()
            .and_then(|d| d.get("Enabled"))
            .is_some_and(|e| e == &Value::Bool(true));
        let size_mb = if partitioning {
            PARTITIONING_SIZE_MB_DEFAULT
        } else {
            SIZE_MB_DEFAULT
        };
        let base = S3Destination {
            extended,
            role_arn: String::new(),
            bucket_arn: String::new(),
            prefix: None,
            error_output_prefix: None,
            size_mb,
            interval_s: INTERVAL_S_DEFAULT,
            compression: "UNCOMPRESSED".to_owned(),
            encryption: json!({"NoEncryptionConfig": "NoEncryption"}),
            cloudwatch: json!({"Enabled": false}),
            processing: None,
            backup_mode: "Disabled".to_owned(),
            backup: None,
            data_format_conversion: None,
            dynamic_partitioning: None,
            file_extension: None,
            custom_time_zone: None,
        };
        let size_given = self
            .BufferingHints
            .as_ref()
            .is_some_and(|h| h.SizeInMBs.is_some());
        let mut destination = base.updated(self);
        if !size_given && destination.conversion_enabled() {
            destination.size_mb = convert::config::CONVERSION_SIZE_MB_DEFAULT;
        }
        destination
    }
}

impl S3Destination {
    /// The bucket's name, from `arn:…:s3:::<bucket>`.
    pub fn bucket(&self) -> &str {
        self.bucket_arn
            .rsplit_once(":::")
            .map_or(self.bucket_arn.as_str(), |(_, bucket)| bucket)
    }

    /// This destination with the members an update gives replaced (an
    /// UpdateDestination keeps what it leaves out).
    pub fn updated(mut self, update: S3Input) -> S3Destination {
        let set = |slot: &mut String, t: Option<Text>| {
            if let Some(t) = t {
                *slot = t.0;
            }
        };
        set(&mut self.role_arn, update.RoleARN);
        set(&mut self.bucket_arn, update.BucketARN);
        set(&mut self.compression, update.CompressionFormat);
        set(&mut self.backup_mode, update.S3BackupMode);
        let set_opt = |slot: &mut Option<String>, t: Option<Text>| {
            if let Some(t) = t {
                *slot = Some(t.0);
            }
        };
        set_opt(&mut self.prefix, update.Prefix);
        set_opt(&mut self.error_output_prefix, update.ErrorOutputPrefix);
        set_opt(&mut self.file_extension, update.FileExtension);
        set_opt(&mut self.custom_time_zone, update.CustomTimeZone);
        if let Some(hints) = update.BufferingHints {
            self.size_mb = hints.SizeInMBs.map_or(self.size_mb, |n| n.0);
            self.interval_s = hints.IntervalInSeconds.map_or(self.interval_s, |n| n.0);
        }
        if let Some(v) = update.EncryptionConfiguration {
            self.encryption = v;
        }
        if let Some(v) = update.CloudWatchLoggingOptions {
            self.cloudwatch = v;
        }
        let keep = |slot: &mut Option<Value>, v: Option<Value>| {
            if v.is_some() {
                *slot = v;
            }
        };
        keep(&mut self.processing, update.ProcessingConfiguration);
        keep(
            &mut self.data_format_conversion,
            update.DataFormatConversionConfiguration,
        );
        keep(
            &mut self.dynamic_partitioning,
            update.DynamicPartitioningConfiguration,
        );
        if let Some(backup) = update.S3BackupConfiguration {
            self.backup = Some(Box::new(backup.into_destination(false)));
        }
        if let Some(backup) = update.S3BackupUpdate {
            self.backup = Some(Box::new(match self.backup.take() {
                Some(current) => current.updated(*backup),
                None => backup.into_destination(false),
            }));
        }
        self
    }

    /// AWS's rules across members that the model's constraints do not
    /// express, checked on the destination a create or an update results in
    /// (so an update that adds expressions to the Prefix of a destination
    /// without an ErrorOutputPrefix is refused): the custom-prefix rules,
    /// the time zone, the file extension, and partition-key expressions
    /// only with dynamic partitioning. The backup destination's prefixes
    /// follow the same rules (in UTC: its shape has no CustomTimeZone).
    pub fn check_rules(&self, now_ms: i64) -> Result<(), PrefixError> {
        let prefixes = self.prefixes(now_ms)?;
        if let Some(extension) = &self.file_extension {
            prefix::check_file_extension(extension)?;
        }
        prefixes.check_dynamic_partitioning(self.dynamic_partitioning_enabled())?;
        if let Some(backup) = &self.backup {
            backup.check_rules(now_ms)?;
        }
        Ok(())
    }

    /// The parsed Prefix, ErrorOutputPrefix and CustomTimeZone; `now_ms` is
    /// the instant AWS's 512-character limit is checked at. Delivery passes
    /// the time the destination was last set, at which it was accepted, so
    /// that the limit cannot refuse it later.
    pub fn prefixes(&self, now_ms: i64) -> Result<S3Prefixes, PrefixError> {
        S3Prefixes::new(
            self.prefix.as_deref(),
            self.error_output_prefix.as_deref(),
            self.custom_time_zone.as_deref(),
            timestamp(now_ms),
        )
    }

    /// The CompressionFormat (checked against the model's values when set;
    /// an unknown stored value, which no request can set, is UNCOMPRESSED).
    pub fn compression_format(&self) -> CompressionFormat {
        CompressionFormat::from_wire(&self.compression).unwrap_or_default()
    }

    /// The extension of objects when FileExtension is not set: `.parquet`
    /// or `.orc` with format conversion (the format compresses inside the
    /// file), else the CompressionFormat's.
    pub fn default_extension(&self) -> &'static str {
        match convert::deliver::enabled(self) {
            Some(conversion) => conversion.output.extension(),
            None => self.compression_format().extension(),
        }
    }

    /// Whether DataFormatConversionConfiguration is present and not
    /// `Enabled: false` (AWS's default is enabled).
    pub fn conversion_enabled(&self) -> bool {
        self.data_format_conversion
            .as_ref()
            .is_some_and(|v| v.get("Enabled") != Some(&Value::Bool(false)))
    }

    /// AWS's rules for format conversion on the destination a create or
    /// an update results in (see `convert::check_destination`).
    pub fn check_conversion(&self) -> Result<(), FirehoseError> {
        convert::check_destination(
            self.data_format_conversion.as_ref(),
            self.size_mb,
            &self.compression,
        )
    }

    /// Whether S3BackupMode is `Enabled` with a backup destination.
    pub fn backup_enabled(&self) -> Option<&S3Destination> {
        self.backup
            .as_deref()
            .filter(|_| self.backup_mode == "Enabled")
    }

    /// AWS's rules on the processors and dynamic partitioning, on the
    /// destination a create (`previous` none) or an update results in:
    /// partitioning is enabled only at creation and never turned off, and
    /// needs a buffer of at least 64 MiB.
    pub fn check_processing(&self, previous: Option<&S3Destination>) -> Result<(), FirehoseError> {
        let partitioning = self.dynamic_partitioning_enabled();
        if let Some(previous) = previous {
            match (previous.dynamic_partitioning_enabled(), partitioning) {
                (false, true) => {
                    return Err(FirehoseError::InvalidArgument(
                        "Dynamic Partitioning can only be enabled when the Firehose stream is created.".to_owned(),
                    ));
                }
                (true, false) => {
                    return Err(FirehoseError::InvalidArgument(
                        "Dynamic Partitioning cannot be disabled once it is enabled.".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        if partitioning && self.size_mb < PARTITIONING_SIZE_MB_MIN {
            return Err(FirehoseError::InvalidArgument(format!(
                "BufferingHints.SizeInMBs must be at least {PARTITIONING_SIZE_MB_MIN} when Dynamic Partitioning is enabled."
            )));
        }
        if let Some(processing) = &self.processing {
            processing::check_rules(processing, partitioning)?;
        }
        Ok(())
    }

    pub fn dynamic_partitioning_enabled(&self) -> bool {
        self.dynamic_partitioning
            .as_ref()
            .and_then(|v| v.get("Enabled"))
            .is_some_and(|e| e == &Value::Bool(true))
    }

    /// `S3DestinationDescription`.
    pub fn describe_s3(&self) -> Value {
        let mut d = json!({
            "RoleARN": self.role_arn,
            "BucketARN": self.bucket_arn,
            "BufferingHints": {"SizeInMBs": self.size_mb, "IntervalInSeconds": self.interval_s},
            "CompressionFormat": self.compression,
            "EncryptionConfiguration": self.encryption,
            "CloudWatchLoggingOptions": self.cloudwatch,
        });
        put_opt(&mut d, "Prefix", self.prefix.as_deref().map(Value::from));
        let error_prefix = self.error_output_prefix.as_deref().map(Value::from);
        put_opt(&mut d, "ErrorOutputPrefix", error_prefix);
        d
    }

    /// `ExtendedS3DestinationDescription`.
    pub fn describe_extended(&self) -> Value {
        let mut d = self.describe_s3();
        d["S3BackupMode"] = Value::from(self.backup_mode.as_str());
        put_opt(&mut d, "ProcessingConfiguration", self.processing.clone());
        let backup = self.backup.as_ref().map(|b| b.describe_s3());
        put_opt(&mut d, "S3BackupDescription", backup);
        let conversion = self.data_format_conversion.clone();
        put_opt(&mut d, "DataFormatConversionConfiguration", conversion);
        let partitioning = self.dynamic_partitioning.clone();
        put_opt(&mut d, "DynamicPartitioningConfiguration", partitioning);
        put_opt(
            &mut d,
            "FileExtension",
            self.file_extension.as_deref().map(Value::from),
        );
        let zone = self.custom_time_zone.as_deref().map(Value::from);
        put_opt(&mut d, "CustomTimeZone", zone);
        d
    }
}

/// Milliseconds since the epoch as a `jiff` timestamp, clamped to its range.
pub fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

fn put_opt(object: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(value), Some(map)) = (value, object.as_object_mut()) {
        map.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> S3Input {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_awss() {
        let d =
            input(r#"{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}"#)
                .into_destination(true);
        assert_eq!(d.bucket(), "b");
        assert_eq!(
            d.describe_extended(),
            json!({
                "RoleARN": "arn:aws:iam::000000000000:role/r",
                "BucketARN": "arn:aws:s3:::b",
                "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
                "CompressionFormat": "UNCOMPRESSED",
                "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
                "CloudWatchLoggingOptions": {"Enabled": false},
                "S3BackupMode": "Disabled",
            })
        );
    }

    #[test]
    fn an_update_keeps_what_it_leaves_out() {
        let d = input(
            r#"{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b",
                "Prefix":"raw/","BufferingHints":{"SizeInMBs":64}}"#,
        )
        .into_destination(true);
        let d = d.updated(input(
            r#"{"BufferingHints":{"IntervalInSeconds":60},"CompressionFormat":"GZIP"}"#,
        ));
        assert_eq!((d.size_mb, d.interval_s), (64, 60));
        assert_eq!(d.prefix.as_deref(), Some("raw/"));
        assert_eq!(d.compression, "GZIP");
    }

    #[test]
    fn the_catalog_form_round_trips() {
        let d = input(r#"{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b","FileExtension":".log"}"#)
            .into_destination(false);
        let back: S3Destination = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
