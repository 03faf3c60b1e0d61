//! `DataFormatConversionConfiguration` as the catalog keeps it (the
//! request's JSON), read into typed settings, and AWS's rules for it at
//! CreateDeliveryStream and UpdateDestination.

use serde::Deserialize;
use serde_json::Value;

use crate::FirehoseError;

/// With conversion, BufferingHints.SizeInMBs is at least 64 ("Record
/// format conversion": "the minimum value for buffer size is 64 MiB").
pub const CONVERSION_SIZE_MB_MIN: i32 = 64;
/// …and 128 when not given (ibid.: "the default value is 128 MiB").
pub const CONVERSION_SIZE_MB_DEFAULT: i32 = 128;
/// ParquetSerDe's bounds (model: BlockSizeBytes ≥ 64 MiB, default 256 MiB;
/// PageSizeBytes ≥ 64 KiB, default 1 MiB).
pub const BLOCK_SIZE_MIN: i64 = 64 * 1024 * 1024;
pub const PAGE_SIZE_MIN: i64 = 64 * 1024;
pub const PAGE_SIZE_DEFAULT: usize = 1024 * 1024;
/// OrcSerDe's StripeSizeBytes: at least 8 MiB, 64 MiB by default (model).
pub const STRIPE_SIZE_MIN: i64 = 8 * 1024 * 1024;
pub const STRIPE_SIZE_DEFAULT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct ConversionInput {
    pub Enabled: Option<bool>,
    pub SchemaConfiguration: Option<SchemaConfiguration>,
    pub InputFormatConfiguration: Option<InputFormat>,
    pub OutputFormatConfiguration: Option<OutputFormat>,
}

/// Where the schema is: a Glue table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[allow(non_snake_case)]
pub struct SchemaConfiguration {
    pub RoleARN: Option<String>,
    pub CatalogId: Option<String>,
    pub DatabaseName: Option<String>,
    pub TableName: Option<String>,
    pub Region: Option<String>,
    pub VersionId: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct InputFormat {
    pub Deserializer: Option<DeserializerInput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct DeserializerInput {
    pub OpenXJsonSerDe: Option<OpenXInput>,
    pub HiveJsonSerDe: Option<HiveInput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct OpenXInput {
    pub ConvertDotsInJsonKeysToUnderscores: Option<bool>,
    pub CaseInsensitive: Option<bool>,
    pub ColumnToJsonKeyMappings: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct HiveInput {
    pub TimestampFormats: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct OutputFormat {
    pub Serializer: Option<SerializerInput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct SerializerInput {
    pub ParquetSerDe: Option<ParquetInput>,
    pub OrcSerDe: Option<OrcInput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct OrcInput {
    pub StripeSizeBytes: Option<i64>,
    pub BlockSizeBytes: Option<i64>,
    pub Compression: Option<String>,
    pub FormatVersion: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct ParquetInput {
    pub BlockSizeBytes: Option<i64>,
    pub PageSizeBytes: Option<i64>,
    pub Compression: Option<String>,
    pub EnableDictionaryCompression: Option<bool>,
    pub MaxPaddingBytes: Option<i64>,
    pub WriterVersion: Option<String>,
}

/// How records are read: the SerDe's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deserializer {
    /// OpenX JSON SerDe: keys matched case-insensitively unless told not
    /// to, dots in keys optionally read as underscores, columns mapped to
    /// other keys.
    OpenX {
        case_insensitive: bool,
        dots_to_underscores: bool,
        /// (column, JSON key), columns lowercased.
        mappings: Vec<(String, String)>,
    },
    /// Hive JSON SerDe: keys matched case-insensitively; timestamps in
    /// the given Joda patterns (or `millis`), else `yyyy-MM-dd HH:mm:ss[.f]`.
    Hive { timestamp_formats: Vec<String> },
}

/// Parquet's writer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetSettings {
    pub page_size: usize,
    /// UNCOMPRESSED, GZIP or SNAPPY (the default).
    pub compression: String,
    pub dictionary: bool,
    /// V1 (the default) or V2.
    pub writer_v2: bool,
}

/// ORC's writer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrcSettings {
    pub stripe_size: usize,
    /// NONE, ZLIB or SNAPPY (the default).
    pub compression: String,
}

/// The output SerDe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Parquet(ParquetSettings),
    Orc(OrcSettings),
}

impl Output {
    /// The objects' extension when FileExtension is not set.
    pub fn extension(&self) -> &'static str {
        match self {
            Output::Parquet(_) => ".parquet",
            Output::Orc(_) => ".orc",
        }
    }
}

/// A checked, enabled conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub schema: SchemaConfiguration,
    pub deserializer: Deserializer,
    pub output: Output,
}

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

impl ConversionInput {
    /// The configuration a destination keeps, if present.
    pub fn from_value(value: &Value) -> Result<ConversionInput, FirehoseError> {
        ConversionInput::deserialize(value).map_err(|e| {
            invalid(format!(
                "DataFormatConversionConfiguration is not valid: {e}"
            ))
        })
    }

    /// Enabled unless `Enabled` is false (AWS's default is true).
    pub fn enabled(&self) -> bool {
        self.Enabled != Some(false)
    }

    /// The settings of an enabled conversion, with AWS's defaults, or the
    /// reason AWS refuses them.
    pub fn conversion(&self) -> Result<Conversion, FirehoseError> {
        let schema = self
            .SchemaConfiguration
            .clone()
            .ok_or_else(|| invalid("SchemaConfiguration is required when DataFormatConversionConfiguration is enabled."))?;
        for (member, value) in [
            ("DatabaseName", &schema.DatabaseName),
            ("TableName", &schema.TableName),
            ("RoleARN", &schema.RoleARN),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(format!(
                    "SchemaConfiguration.{member} is required when DataFormatConversionConfiguration is enabled."
                )));
            }
        }
        Ok(Conversion {
            schema,
            deserializer: self.deserializer()?,
            output: self.output()?,
        })
    }

    fn deserializer(&self) -> Result<Deserializer, FirehoseError> {
        let given = self
            .InputFormatConfiguration
            .as_ref()
            .and_then(|i| i.Deserializer.as_ref());
        match given.map(|d| (&d.OpenXJsonSerDe, &d.HiveJsonSerDe)) {
            Some((Some(openx), None)) => Ok(Deserializer::OpenX {
                case_insensitive: openx.CaseInsensitive.unwrap_or(true),
                dots_to_underscores: openx.ConvertDotsInJsonKeysToUnderscores.unwrap_or(false),
                mappings: openx
                    .ColumnToJsonKeyMappings
                    .iter()
                    .flatten()
                    .map(|(c, k)| (c.to_lowercase(), k.clone()))
                    .collect(),
            }),
            Some((None, Some(hive))) => Ok(Deserializer::Hive {
                timestamp_formats: hive.TimestampFormats.clone().unwrap_or_default(),
            }),
            _ => Err(invalid(
                "Exactly one of OpenXJsonSerDe and HiveJsonSerDe must be specified in InputFormatConfiguration.Deserializer.",
            )),
        }
    }

    fn output(&self) -> Result<Output, FirehoseError> {
        let given = self
            .OutputFormatConfiguration
            .as_ref()
            .and_then(|o| o.Serializer.as_ref());
        match given.map(|s| (&s.ParquetSerDe, &s.OrcSerDe)) {
            Some((Some(parquet), None)) => Ok(Output::Parquet(parquet_settings(parquet)?)),
            Some((None, Some(orc))) => Ok(Output::Orc(orc_settings(orc)?)),
            _ => Err(invalid(
                "Exactly one of ParquetSerDe and OrcSerDe must be specified in OutputFormatConfiguration.Serializer.",
            )),
        }
    }
}

fn orc_settings(orc: &OrcInput) -> Result<OrcSettings, FirehoseError> {
    if orc.StripeSizeBytes.is_some_and(|b| b < STRIPE_SIZE_MIN) {
        return Err(invalid(format!(
            "OrcSerDe.StripeSizeBytes must be at least {STRIPE_SIZE_MIN}."
        )));
    }
    if orc.BlockSizeBytes.is_some_and(|b| b < BLOCK_SIZE_MIN) {
        return Err(invalid(format!(
            "OrcSerDe.BlockSizeBytes must be at least {BLOCK_SIZE_MIN}."
        )));
    }
    let compression = orc.Compression.as_deref().unwrap_or("SNAPPY");
    if !["NONE", "ZLIB", "SNAPPY"].contains(&compression) {
        return Err(invalid(format!(
            "OrcSerDe.Compression must be one of NONE, ZLIB, SNAPPY, not {compression}."
        )));
    }
    Ok(OrcSettings {
        stripe_size: orc
            .StripeSizeBytes
            .and_then(|b| usize::try_from(b).ok())
            .unwrap_or(STRIPE_SIZE_DEFAULT),
        compression: compression.to_owned(),
    })
}

fn parquet_settings(parquet: &ParquetInput) -> Result<ParquetSettings, FirehoseError> {
    if parquet.BlockSizeBytes.is_some_and(|b| b < BLOCK_SIZE_MIN) {
        return Err(invalid(format!(
            "ParquetSerDe.BlockSizeBytes must be at least {BLOCK_SIZE_MIN}."
        )));
    }
    if parquet.PageSizeBytes.is_some_and(|p| p < PAGE_SIZE_MIN) {
        return Err(invalid(format!(
            "ParquetSerDe.PageSizeBytes must be at least {PAGE_SIZE_MIN}."
        )));
    }
    let compression = parquet.Compression.as_deref().unwrap_or("SNAPPY");
    if !["UNCOMPRESSED", "GZIP", "SNAPPY"].contains(&compression) {
        return Err(invalid(format!(
            "ParquetSerDe.Compression must be one of UNCOMPRESSED, GZIP, SNAPPY, not {compression}."
        )));
    }
    let version = parquet.WriterVersion.as_deref().unwrap_or("V1");
    if !["V1", "V2"].contains(&version) {
        return Err(invalid(format!(
            "ParquetSerDe.WriterVersion must be V1 or V2, not {version}."
        )));
    }
    Ok(ParquetSettings {
        page_size: parquet
            .PageSizeBytes
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(PAGE_SIZE_DEFAULT),
        compression: compression.to_owned(),
        dictionary: parquet.EnableDictionaryCompression.unwrap_or(false),
        writer_v2: version == "V2",
    })
}

/// AWS's rules across a destination's members with conversion enabled:
/// the settings themselves, at least 64 MiB buffers, and no compression of
/// the object (Parquet compresses inside the file). The table is not
/// looked up: AWS reads it at delivery, where a missing one fails records.
pub fn check_destination(
    conversion: Option<&Value>,
    size_mb: i32,
    compression: &str,
) -> Result<(), FirehoseError> {
    let Some(value) = conversion else {
        return Ok(());
    };
    let input = ConversionInput::from_value(value)?;
    if !input.enabled() {
        return Ok(());
    }
    input.conversion()?;
    if size_mb < CONVERSION_SIZE_MB_MIN {
        return Err(invalid(format!(
            "BufferingHints.SizeInMBs must be at least {CONVERSION_SIZE_MB_MIN} when data format conversion is enabled."
        )));
    }
    if compression != "UNCOMPRESSED" {
        return Err(invalid(
            "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled.",
        ));
    }
    Ok(())
}
