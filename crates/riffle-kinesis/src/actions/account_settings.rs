//! DescribeAccountSettings and UpdateAccountSettings:
//! <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateAccountSettings.html>
//!
//! The one account setting of the model is the minimum throughput billing
//! commitment. Its rules, from the model's documentation: a commitment
//! lasts at least 24 hours; disabling it earlier schedules the disable for
//! the earliest allowed end (status `ENABLED_UNTIL_EARLIEST_ALLOWED_END`),
//! and enabling it again before then cancels the pending disable. Riffle
//! bills nothing; it keeps and reports the setting as AWS does, so code
//! that manages it can be tested.
//!
//! # Format
//!
//! Key `kinesis/account-settings`, value a UTF-8 JSON object:
//!
//! ```text
//! {"v":1,                                  format version; any other is refused
//!  "commitment":{"started_ms":1795000000000,      when it was enabled
//!                "earliest_end_ms":1795086400000, started + 24 hours
//!                "disable_requested":false,       a disable waits for earliest_end_ms
//!                "ended_ms":null}}                set once a disable took effect
//! ```
//!
//! `commitment` is absent until the first UpdateAccountSettings. The status
//! is computed from the clock (a requested disable takes effect at
//! `earliest_end_ms` without anything running then).

use bytes::Bytes;
use riffle_log::MetaOp;
use serde::{Deserialize, Serialize};

use super::epoch_seconds;
use crate::catalog::CatalogError;
use crate::json::{self, Str};
use crate::time::now_ms;
use crate::validate::Violations;
use crate::{Kinesis, KinesisError, errors};

/// How long a commitment lasts at least (model: "Commitments have a
/// minimum duration of 24 hours that must be honored before they can be
/// disabled").
pub const COMMITMENT_MIN_MS: i64 = 24 * 60 * 60 * 1000;
const SETTINGS_KEY: &str = "kinesis/account-settings";
const SETTINGS_VERSION: u32 = 1;
const STATUSES: &[&str] = &["ENABLED", "DISABLED"];

/// The stored settings (see the module's format).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct AccountSettings {
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commitment: Option<Commitment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Commitment {
    started_ms: i64,
    earliest_end_ms: i64,
    disable_requested: bool,
    ended_ms: Option<i64>,
}

/// A commitment's status as the model names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Enabled,
    Disabled,
    EnabledUntilEarliestAllowedEnd,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Enabled => "ENABLED",
            Status::Disabled => "DISABLED",
            Status::EnabledUntilEarliestAllowedEnd => "ENABLED_UNTIL_EARLIEST_ALLOWED_END",
        }
    }
}

impl Commitment {
    /// The commitment as of `now`: a requested disable that is due has
    /// taken effect.
    fn at(mut self, now: i64) -> Commitment {
        if self.disable_requested && self.ended_ms.is_none() && now >= self.earliest_end_ms {
            self.ended_ms = Some(self.earliest_end_ms);
        }
        self
    }

    fn status(&self) -> Status {
        match (self.ended_ms, self.disable_requested) {
            (Some(_), _) => Status::Disabled,
            (None, true) => Status::EnabledUntilEarliestAllowedEnd,
            (None, false) => Status::Enabled,
        }
    }

    /// The commitment after an UpdateAccountSettings at `now` (`self` is
    /// already as of `now`).
    fn update(self, enable: bool, now: i64) -> Commitment {
        match (self.status(), enable) {
            (Status::Disabled, true) => Commitment::started(now),
            (Status::EnabledUntilEarliestAllowedEnd, true) => Commitment {
                disable_requested: false,
                ..self
            },
            (Status::Enabled, false) if now >= self.earliest_end_ms => Commitment {
                disable_requested: true,
                ended_ms: Some(now),
                ..self
            },
            (Status::Enabled, false) => Commitment {
                disable_requested: true,
                ..self
            },
            _ => self,
        }
    }

    fn started(now: i64) -> Commitment {
        Commitment {
            started_ms: now,
            earliest_end_ms: now.saturating_add(COMMITMENT_MIN_MS),
            disable_requested: false,
            ended_ms: None,
        }
    }
}

impl AccountSettings {
    fn encode(&self) -> Vec<u8> {
        // Numbers and booleans always serialize.
        serde_json::to_vec(self).expect("account settings always serialize")
    }

    fn decode(bytes: &[u8]) -> Result<AccountSettings, KinesisError> {
        let settings: AccountSettings = serde_json::from_slice(bytes).map_err(|e| {
            errors::catalog(CatalogError::Corrupt {
                key: SETTINGS_KEY.to_owned(),
                reason: e.to_string(),
            })
        })?;
        if settings.v != SETTINGS_VERSION {
            return Err(errors::catalog(CatalogError::UnsupportedVersion {
                key: SETTINGS_KEY.to_owned(),
                found: settings.v,
            }));
        }
        Ok(settings)
    }
}

fn load(kinesis: &Kinesis) -> Result<AccountSettings, KinesisError> {
    match kinesis.store().meta().get(SETTINGS_KEY)? {
        Some(bytes) => AccountSettings::decode(&bytes),
        None => Ok(AccountSettings {
            v: SETTINGS_VERSION,
            commitment: None,
        }),
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output {
    MinimumThroughputBillingCommitment: CommitmentOutput,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct CommitmentOutput {
    Status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    StartedAt: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    EndedAt: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    EarliestAllowedEndAt: Option<f64>,
}

fn output(commitment: Option<Commitment>) -> Output {
    let shown = match commitment {
        None => CommitmentOutput {
            Status: Status::Disabled.as_str(),
            StartedAt: None,
            EndedAt: None,
            EarliestAllowedEndAt: None,
        },
        Some(c) => CommitmentOutput {
            Status: c.status().as_str(),
            StartedAt: Some(epoch_seconds(c.started_ms)),
            EndedAt: c.ended_ms.map(epoch_seconds),
            EarliestAllowedEndAt: Some(epoch_seconds(c.earliest_end_ms)),
        },
    };
    Output {
        MinimumThroughputBillingCommitment: shown,
    }
}

pub fn run_describe(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    // No members (any are ignored); the body must still be a JSON object.
    let _: serde_json::Map<String, serde_json::Value> = json::parse(body)?;
    let now = now_ms();
    let settings = load(kinesis)?;
    super::respond(&output(settings.commitment.map(|c| c.at(now))))
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct UpdateInput<'a> {
    #[serde(borrow)]
    MinimumThroughputBillingCommitment: Option<CommitmentInput<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct CommitmentInput<'a> {
    #[serde(borrow)]
    Status: Option<Str<'a>>,
}

pub async fn run_update(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: UpdateInput = json::parse(body)?;
    let mut v = Violations::new();
    v.required(
        &input.MinimumThroughputBillingCommitment,
        "minimumThroughputBillingCommitment",
    );
    if let Some(commitment) = &input.MinimumThroughputBillingCommitment {
        let status = commitment.Status.as_ref().map(Str::as_str);
        v.required(
            &commitment.Status,
            "minimumThroughputBillingCommitment.status",
        );
        v.one_of(
            status,
            "minimumThroughputBillingCommitment.status",
            STATUSES,
        );
    }
    v.into_result::<crate::validate::ValidationError>()?;
    // Validated: present and one of the two.
    let enable = input
        .MinimumThroughputBillingCommitment
        .as_ref()
        .and_then(|c| c.Status.as_ref())
        .is_some_and(|s| s.as_str() == "ENABLED");

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let mut settings = load(kinesis)?;
    let current = settings.commitment.map(|c| c.at(now));
    let updated = match current {
        Some(c) => Some(c.update(enable, now)),
        None if enable => Some(Commitment::started(now)),
        None => None,
    };
    if updated != settings.commitment {
        settings.commitment = updated;
        kinesis
            .commit(vec![MetaOp::Put {
                key: SETTINGS_KEY.to_owned(),
                value: settings.encode(),
            }])
            .await?;
    }
    super::respond(&output(updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_000_000_000;

    #[test]
    fn account_settings_round_trip_in_the_documented_json() {
        let settings = AccountSettings {
            v: 1,
            commitment: Some(Commitment {
                started_ms: T,
                earliest_end_ms: T + COMMITMENT_MIN_MS,
                disable_requested: false,
                ended_ms: None,
            }),
        };
        let bytes = settings.encode();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"v":1,"commitment":{"started_ms":1795000000000,"earliest_end_ms":1795086400000,"disable_requested":false,"ended_ms":null}}"#
        );
        assert_eq!(AccountSettings::decode(&bytes).unwrap(), settings);
        assert!(AccountSettings::decode(br#"{"v":2}"#).is_err());
        assert!(AccountSettings::decode(b"{").is_err());
        let empty = AccountSettings {
            v: 1,
            commitment: None,
        };
        assert_eq!(AccountSettings::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn a_commitment_lasts_at_least_a_day_and_a_disable_waits_for_its_end() {
        let on = Commitment::started(T);
        assert_eq!(on.status(), Status::Enabled);
        // Disabled early: pending until the earliest end, then disabled.
        let pending = on.update(false, T + 1_000);
        assert_eq!(pending.status(), Status::EnabledUntilEarliestAllowedEnd);
        assert_eq!(
            pending.at(T + COMMITMENT_MIN_MS - 1).status(),
            pending.status()
        );
        let ended = pending.at(T + COMMITMENT_MIN_MS);
        assert_eq!(ended.status(), Status::Disabled);
        assert_eq!(ended.ended_ms, Some(T + COMMITMENT_MIN_MS));
        // Enabling again before the end cancels the pending disable.
        let kept = pending.update(true, T + 2_000);
        assert_eq!(kept, on);
        // Disabled after the earliest end: at once.
        let late = on.update(false, T + COMMITMENT_MIN_MS + 5);
        assert_eq!(late.status(), Status::Disabled);
        assert_eq!(late.ended_ms, Some(T + COMMITMENT_MIN_MS + 5));
        // Enabled after it ended: a new commitment.
        let again = late.update(true, T + 2 * COMMITMENT_MIN_MS);
        assert_eq!(again, Commitment::started(T + 2 * COMMITMENT_MIN_MS));
        // Repeating the current state changes nothing.
        assert_eq!(on.update(true, T + 3), on);
        assert_eq!(late.update(false, T + 2 * COMMITMENT_MIN_MS), late);
    }
}
