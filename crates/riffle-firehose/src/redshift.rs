//! The Redshift destination: `RedshiftDestinationConfiguration` and
//! `RedshiftDestinationUpdate` as requests give them (checked against the
//! model, and the CopyOptions against what [`crate::redshift_delivery`]
//! can run on PostgreSQL), as the catalog keeps them and as
//! DescribeDeliveryStream shows them (AWS's
//! `RedshiftDestinationDescription` never returns the password).
//!
//! The intermediate `S3Configuration` is the stream's S3 destination: it
//! gives the staging objects' bucket, prefix, buffering hints and
//! compression; `S3BackupMode` and `S3BackupConfiguration` are kept as
//! that destination's backup, which the backup lane delivers.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::FirehoseError;
use crate::destination::{S3Destination, S3Input};
use crate::json::{Int, Text};
use crate::redshift_delivery::CopyPlan;
use crate::validate::{Pattern, Violations};

/// `RedshiftRetryDurationInSeconds`: 0–7,200, default 3,600 (model, API
/// reference `RedshiftRetryOptions`).
const RETRY_S_MAX: i64 = 7200;
const RETRY_S_DEFAULT: i32 = 3600;
/// The model's string lengths: `ClusterJDBCURL`, `RoleARN`, `Username`,
/// `Password` (at least 6), `DataTableName`, `DataTableColumns` and
/// `CopyOptions`.
const URL_MAX: usize = 512;
const ROLE_ARN_MAX: usize = 512;
const USERNAME_MAX: usize = 512;
const PASSWORD_MIN: usize = 6;
const PASSWORD_MAX: usize = 512;
const TABLE_MAX: usize = 512;
const COLUMNS_MAX: usize = 10_240;
const COPY_OPTIONS_MAX: usize = 10_240;
const BACKUP_MODES: &[&str] = &["Disabled", "Enabled"];
/// The intermediate bucket's formats the COPY reads: AWS refuses Snappy,
/// Zip and Hadoop-compatible Snappy for a Redshift destination.
const STAGING_FORMATS: &[&str] = &["UNCOMPRESSED", "GZIP"];

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct CopyCommandInput {
    DataTableName: Option<Text>,
    DataTableColumns: Option<Text>,
    CopyOptions: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct RetryInput {
    DurationInSeconds: Option<Int>,
}

/// A configuration or update as a request gives it.
#[derive(Debug, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct RedshiftInput {
    RoleARN: Option<Text>,
    ClusterJDBCURL: Option<Text>,
    CopyCommand: Option<CopyCommandInput>,
    Username: Option<Text>,
    Password: Option<Text>,
    RetryOptions: Option<RetryInput>,
    S3Configuration: Option<S3Input>,
    S3Update: Option<S3Input>,
    ProcessingConfiguration: Option<Value>,
    S3BackupMode: Option<Text>,
    S3BackupConfiguration: Option<S3Input>,
    S3BackupUpdate: Option<S3Input>,
    CloudWatchLoggingOptions: Option<Value>,
    SecretsManagerConfiguration: Option<Value>,
}

/// `CopyCommand` as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyCommand {
    pub table: String,
    pub columns: Option<String>,
    pub options: Option<String>,
}

/// The Redshift destination as the catalog keeps it, inside the stream's
/// `endpoint` member:
///
/// ```text
/// {"type":"Redshift","role_arn":"arn:…","jdbc_url":"jdbc:redshift://…:5439/dev",
///  "copy":{"table":"events","columns":null,"options":"JSON 'auto'"},
///  "username":"u","password":"p","retry_s":3600,"cloudwatch":{"Enabled":false},
///  "processing":null,"secrets_manager":null}
/// ```
///
/// (S3BackupMode and the backup bucket are the stream's `destination`'s
/// `backup_mode` and `backup`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedshiftDestination {
    pub role_arn: String,
    pub jdbc_url: String,
    pub copy: CopyCommand,
    pub username: Option<String>,
    pub password: Option<String>,
    pub retry_s: i32,
    pub cloudwatch: Value,
    pub processing: Option<Value>,
    pub secrets_manager: Option<Value>,
}

impl RedshiftInput {
    /// Checks the model's constraints; `create`: RoleARN, ClusterJDBCURL,
    /// CopyCommand and S3Configuration are required.
    pub fn check(&self, v: &mut Violations, path: &str, create: bool) {
        let at = |member: &str| format!("{path}.{member}");
        let text = |t: &Option<Text>| t.as_ref().map(Text::as_str).map(str::to_owned);
        if create {
            v.required(&self.RoleARN, &at("roleARN"));
            v.required(&self.ClusterJDBCURL, &at("clusterJDBCURL"));
            v.required(&self.CopyCommand, &at("copyCommand"));
            v.required(&self.S3Configuration, &at("s3Configuration"));
        }
        let role = text(&self.RoleARN);
        v.length(role.as_deref(), &at("roleARN"), 1, ROLE_ARN_MAX);
        v.pattern(role.as_deref(), &at("roleARN"), Pattern::RoleArn);
        let url = text(&self.ClusterJDBCURL);
        v.length(url.as_deref(), &at("clusterJDBCURL"), 1, URL_MAX);
        v.pattern(
            url.as_deref(),
            &at("clusterJDBCURL"),
            Pattern::ClusterJdbcUrl,
        );
        if let Some(copy) = &self.CopyCommand {
            let table_at = at("copyCommand.dataTableName");
            v.required(&copy.DataTableName, &table_at);
            v.length(
                text(&copy.DataTableName).as_deref(),
                &table_at,
                1,
                TABLE_MAX,
            );
            let columns = text(&copy.DataTableColumns);
            v.length(
                columns.as_deref(),
                &at("copyCommand.dataTableColumns"),
                0,
                COLUMNS_MAX,
            );
            let options = text(&copy.CopyOptions);
            v.length(
                options.as_deref(),
                &at("copyCommand.copyOptions"),
                0,
                COPY_OPTIONS_MAX,
            );
        }
        let user = text(&self.Username);
        v.length(user.as_deref(), &at("username"), 1, USERNAME_MAX);
        let password = text(&self.Password);
        v.length(
            password.as_deref(),
            &at("password"),
            PASSWORD_MIN,
            PASSWORD_MAX,
        );
        if let Some(r) = &self.RetryOptions {
            let retry = r.DurationInSeconds.map(|n| i64::from(n.0));
            let retry_at = at("retryOptions.durationInSeconds");
            v.range(retry, &retry_at, Some(0), Some(RETRY_S_MAX));
        }
        let mode = text(&self.S3BackupMode);
        v.one_of(mode.as_deref(), &at("s3BackupMode"), BACKUP_MODES);
        if let Some(backup) = &self.S3BackupConfiguration {
            backup.check(v, &at("s3BackupConfiguration"), true);
        }
        if let Some(backup) = &self.S3BackupUpdate {
            backup.check(v, &at("s3BackupUpdate"), false);
        }
        crate::endpoint::check_shared_members(
            v,
            path,
            self.ProcessingConfiguration.as_ref(),
            self.S3Configuration.as_ref(),
            self.S3Update.as_ref(),
        );
    }

    /// The destination a CreateDeliveryStream asks for, with AWS's
    /// defaults, and its intermediate S3 configuration (with the backup).
    pub fn into_destination(mut self) -> (RedshiftDestination, S3Destination) {
        let s3 = self
            .S3Configuration
            .take()
            .unwrap_or_default()
            .into_destination(false);
        RedshiftDestination::empty().updated(self, s3)
    }
}

impl RedshiftDestination {
    /// AWS's defaults, no cluster yet.
    pub fn empty() -> RedshiftDestination {
        RedshiftDestination {
            role_arn: String::new(),
            jdbc_url: String::new(),
            copy: CopyCommand {
                table: String::new(),
                columns: None,
                options: None,
            },
            username: None,
            password: None,
            retry_s: RETRY_S_DEFAULT,
            cloudwatch: json!({"Enabled": false}),
            processing: None,
            secrets_manager: None,
        }
    }

    /// This destination with an update's members replaced; the S3
    /// configuration updated too, with S3BackupMode and the backup bucket.
    pub fn updated(
        mut self,
        mut u: RedshiftInput,
        s3: S3Destination,
    ) -> (RedshiftDestination, S3Destination) {
        let set = |slot: &mut String, t: Option<Text>| {
            if let Some(t) = t {
                *slot = t.0;
            }
        };
        set(&mut self.role_arn, u.RoleARN.take());
        set(&mut self.jdbc_url, u.ClusterJDBCURL.take());
        if let Some(copy) = u.CopyCommand.take() {
            // CopyCommand is replaced whole, as its members are not
            // optional separately in AWS's update.
            self.copy = CopyCommand {
                table: copy.DataTableName.map(|t| t.0).unwrap_or_default(),
                columns: copy.DataTableColumns.map(|t| t.0),
                options: copy.CopyOptions.map(|t| t.0),
            };
        }
        if let Some(user) = u.Username.take() {
            self.username = Some(user.0);
        }
        if let Some(password) = u.Password.take() {
            self.password = Some(password.0);
        }
        if let Some(r) = u.RetryOptions.take().and_then(|r| r.DurationInSeconds) {
            self.retry_s = r.0;
        }
        if let Some(c) = u.CloudWatchLoggingOptions.take() {
            self.cloudwatch = c;
        }
        if u.ProcessingConfiguration.is_some() {
            self.processing = u.ProcessingConfiguration.take();
        }
        if u.SecretsManagerConfiguration.is_some() {
            self.secrets_manager = u.SecretsManagerConfiguration.take();
        }
        let mut s3 = s3.backup_updated(u.S3Configuration.take(), u.S3Update.take());
        if let Some(mode) = u.S3BackupMode.take() {
            s3.backup_mode = mode.0;
        }
        s3.backup = match (s3.backup.take(), u.S3BackupConfiguration, u.S3BackupUpdate) {
            (Some(current), _, Some(update)) => Some(Box::new(current.updated(update))),
            (_, Some(config), _) => Some(Box::new(config.into_destination(false))),
            (None, None, Some(update)) => Some(Box::new(update.into_destination(false))),
            (current, None, None) => current,
        };
        (self, s3)
    }

    /// AWS's rules beyond the model's: a copy Riffle can run on
    /// PostgreSQL, staging objects the COPY reads, a backup bucket when
    /// the backup is enabled, and a user to connect as.
    pub fn check_rules(&self, s3: &S3Destination) -> Result<(), FirehoseError> {
        if self.jdbc_url.is_empty() || self.copy.table.is_empty() {
            return Err(FirehoseError::InvalidArgument(
                "ClusterJDBCURL and CopyCommand are required to change the destination to Redshift."
                    .to_owned(),
            ));
        }
        CopyPlan::parse(self.copy.options.as_deref().unwrap_or(""))
            .map_err(|e| FirehoseError::InvalidArgument(e.to_string()))?;
        if !STAGING_FORMATS.contains(&s3.compression.as_str()) {
            return Err(FirehoseError::InvalidArgument(format!(
                "Compression format {} is not supported for the Redshift destination: the COPY reads UNCOMPRESSED or GZIP objects.",
                s3.compression
            )));
        }
        if s3.backup_mode == "Enabled" && s3.backup.is_none() {
            return Err(FirehoseError::InvalidArgument(
                "S3BackupConfiguration is required when S3BackupMode is Enabled.".to_owned(),
            ));
        }
        if self.username.is_none() || self.password.is_none() {
            return Err(FirehoseError::InvalidArgument(
                "Username and Password are required for the Redshift destination (Riffle does not read SecretsManager secrets).".to_owned(),
            ));
        }
        Ok(())
    }

    /// `RedshiftDestinationDescription` (no password, as AWS).
    pub fn describe(&self, s3: &S3Destination) -> Value {
        let mut copy = json!({"DataTableName": self.copy.table});
        if let Some(c) = &self.copy.columns {
            copy["DataTableColumns"] = Value::from(c.as_str());
        }
        if let Some(o) = &self.copy.options {
            copy["CopyOptions"] = Value::from(o.as_str());
        }
        let mut d = json!({
            "RoleARN": self.role_arn,
            "ClusterJDBCURL": self.jdbc_url,
            "CopyCommand": copy,
            "RetryOptions": {"DurationInSeconds": self.retry_s},
            "S3DestinationDescription": s3.describe_s3(),
            "S3BackupMode": s3.backup_mode,
            "CloudWatchLoggingOptions": self.cloudwatch,
        });
        if let Some(u) = &self.username {
            d["Username"] = Value::from(u.as_str());
        }
        if let Some(backup) = &s3.backup {
            d["S3BackupDescription"] = backup.describe_s3();
        }
        if let Some(p) = &self.processing {
            d["ProcessingConfiguration"] = p.clone();
        }
        if let Some(s) = &self.secrets_manager {
            d["SecretsManagerConfiguration"] = s.clone();
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"RoleARN":"arn:aws:iam::000000000000:role/r",
        "ClusterJDBCURL":"jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com:5439/dev",
        "CopyCommand":{"DataTableName":"events","CopyOptions":"JSON 'auto' GZIP"},
        "Username":"firehose","Password":"secret-1",
        "S3Configuration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b","CompressionFormat":"GZIP"}}"#;

    #[test]
    fn defaults_are_awss_the_password_is_never_described_and_an_update_keeps_the_rest() {
        let input: RedshiftInput = serde_json::from_str(CONFIG).unwrap();
        let (d, s3) = input.into_destination();
        d.check_rules(&s3).unwrap();
        let described = d.describe(&s3);
        assert_eq!(
            described["RetryOptions"],
            json!({"DurationInSeconds": 3600})
        );
        assert_eq!(described["S3BackupMode"], "Disabled");
        assert_eq!(described["Username"], "firehose");
        assert!(described.get("Password").is_none());
        assert!(!described.to_string().contains("secret-1"));
        let update: RedshiftInput = serde_json::from_str(
            r#"{"S3BackupMode":"Enabled","S3BackupUpdate":{"BucketARN":"arn:aws:s3:::backup","RoleARN":"arn:aws:iam::000000000000:role/r"}}"#,
        )
        .unwrap();
        let (d, s3) = d.updated(update, s3);
        assert_eq!(d.copy.table, "events");
        assert_eq!(
            s3.backup_enabled().map(S3Destination::bucket),
            Some("backup")
        );
        assert_eq!(
            d.describe(&s3)["S3BackupDescription"]["BucketARN"],
            "arn:aws:s3:::backup"
        );
    }

    #[test]
    fn the_catalog_form_round_trips_as_an_endpoint() {
        let input: RedshiftInput = serde_json::from_str(CONFIG).unwrap();
        let (d, _) = input.into_destination();
        let endpoint = crate::endpoint::Endpoint::Redshift(d);
        let encoded = serde_json::to_value(&endpoint).unwrap();
        assert_eq!(encoded["type"], "Redshift");
        assert_eq!(encoded["copy"]["options"], "JSON 'auto' GZIP");
        let decoded: crate::endpoint::Endpoint = serde_json::from_value(encoded).unwrap();
        assert_eq!(decoded, endpoint);
    }

    #[test]
    fn an_untranslatable_copy_option_or_a_snappy_staging_bucket_is_refused() {
        let mut input: Value = serde_json::from_str(CONFIG).unwrap();
        input["CopyCommand"]["CopyOptions"] = Value::from("LZOP");
        let (d, s3) = serde_json::from_value::<RedshiftInput>(input.clone())
            .unwrap()
            .into_destination();
        let err = d.check_rules(&s3).unwrap_err().to_string();
        assert!(err.contains("LZOP"), "{err}");
        input["CopyCommand"]["CopyOptions"] = Value::from("CSV");
        input["S3Configuration"]["CompressionFormat"] = Value::from("Snappy");
        let (d, s3) = serde_json::from_value::<RedshiftInput>(input)
            .unwrap()
            .into_destination();
        assert!(
            d.check_rules(&s3)
                .unwrap_err()
                .to_string()
                .contains("Snappy")
        );
    }
}
