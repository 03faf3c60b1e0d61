//! IAM policies: the identity-based policies of access keys, when `riffle
//! serve` is given them, and the resource-based policies attached to
//! streams and consumers with PutResourcePolicy; which actions on which
//! resources a verified access key may call.
//!
//! A policy is an IAM JSON document:
//!
//! ```text
//! {"Version": "2012-10-17",
//!  "Statement": [{"Effect": "Allow" | "Deny",
//!                 "Principal" | "NotPrincipal": "*" | {"AWS": "<ARN or account id>" | [...]},
//!                 "Action" | "NotAction": "kinesis:Get*" | [...],
//!                 "Resource" | "NotResource": "arn:aws:kinesis:*:*:stream/orders-*" | [...]}]}
//! ```
//!
//! `Principal` belongs in resource-based policies only (each of their
//! statements names one), never in an identity's. `*` matches any run of
//! characters and `?` one; actions match ignoring case, resources exactly.
//! `Condition` is refused when a policy is read, not ignored, so a policy
//! never means less than it says.
//!
//! Evaluation is IAM's for a caller in the resource's own account: an
//! explicit `Deny` that matches, in either policy, wins; otherwise an
//! `Allow` that matches in either allows; otherwise the call is denied.
//! The caller is `arn:aws:iam::<account>:user/<access key id>`. A
//! resource policy's `Allow` grants only to a principal it names as that
//! user (or `*`); naming the account (`"<account id>"`, `…:root`) delegates
//! to the account's identity policies, as in IAM, while a `Deny` naming
//! the account applies to all its users. An access key without an
//! identity policy may call everything a resource policy does not deny,
//! as an account's root user may.
//!
//! The resource of a call is what IAM's service authorization reference
//! names for Kinesis: the stream's ARN for stream actions, the consumer's
//! for DescribeStreamConsumer, DeregisterStreamConsumer and
//! SubscribeToShard, `ResourceARN` for the tag and resource-policy actions,
//! and `*` for ListStreams, DescribeLimits and the account settings. The
//! resource policy evaluated is the one attached to that resource.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;
use tracing::warn;

/// The policy versions IAM accepts.
const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];
/// Actions whose resource is `*` in IAM's reference for Kinesis.
const ACCOUNT_ACTIONS: [&str; 6] = [
    "DescribeAccountSettings",
    "DescribeLimits",
    "ListChannels",
    "ListQueues",
    "ListStreams",
    "UpdateAccountSettings",
];
/// Actions on a consumer.
const CONSUMER_ACTIONS: [&str; 3] = [
    "DeregisterStreamConsumer",
    "DescribeStreamConsumer",
    "SubscribeToShard",
];
/// Actions on the resource their `ResourceARN` names.
const RESOURCE_ARN_ACTIONS: [&str; 6] = [
    "DeleteResourcePolicy",
    "GetResourcePolicy",
    "ListTagsForResource",
    "PutResourcePolicy",
    "TagResource",
    "UntagResource",
];

/// Parsed resource policies kept at most; past it the cache starts over
/// (a policy is parsed again on its next use, nothing else is lost).
const RESOURCE_POLICY_CACHE_MAX: usize = 1024;

/// Why a policy document cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("not a JSON policy document: {0}")]
    Json(String),
    #[error("{0}")]
    Grammar(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// Patterns an element must match (`Action`) or must not (`NotAction`).
#[derive(Debug)]
struct Patterns {
    negated: bool,
    patterns: Vec<String>,
}

impl Patterns {
    fn matches(&self, text: &str) -> bool {
        self.patterns.iter().any(|p| wildcard_match(p, text)) != self.negated
    }
}

/// The principals a resource-policy statement names (`Principal`) or
/// excludes (`NotPrincipal`).
#[derive(Debug)]
struct Principals {
    negated: bool,
    /// `"*"` or `{"AWS": "*"}`.
    anyone: bool,
    /// The `AWS` principals: ARNs, or account ids as given. Other kinds
    /// (`Service`, `Federated`, …) name no access key and are kept out.
    aws: Vec<String>,
}

impl Principals {
    /// Whether the statement applies to `user` of `account`. An account
    /// principal covers its users in a `Deny` only; in an `Allow` it
    /// delegates to their identity policies.
    fn cover(&self, user: &str, account: &str, effect: Effect) -> bool {
        let named = self.anyone
            || self.aws.iter().any(|p| {
                p == user
                    || (effect == Effect::Deny
                        && (p == account || *p == format!("arn:aws:iam::{account}:root")))
            });
        named != self.negated
    }
}

#[derive(Debug)]
struct Statement {
    effect: Effect,
    /// Only in resource-based policies.
    principals: Option<Principals>,
    /// Lower-cased, as actions match ignoring case.
    actions: Patterns,
    resources: Patterns,
}

/// A parsed policy: an identity's, or a resource's.
#[derive(Debug)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

/// Which kind of policy a document is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Identity,
    Resource,
}

/// What a policy decides for one call.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

impl PolicyDocument {
    /// Reads an identity-based policy (an access key's).
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        PolicyDocument::parse_as(text, Kind::Identity)
    }

    /// Reads a resource-based policy (PutResourcePolicy's).
    pub fn parse_resource(text: &str) -> Result<PolicyDocument, PolicyError> {
        PolicyDocument::parse_as(text, Kind::Resource)
    }

    fn parse_as(text: &str, kind: Kind) -> Result<PolicyDocument, PolicyError> {
        let document: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        let Value::Object(members) = document else {
            return Err(grammar("the policy must be a JSON object"));
        };
        for name in members.keys() {
            if !matches!(name.as_str(), "Version" | "Id" | "Statement") {
                return Err(grammar(format!("unknown policy element \"{name}\"")));
            }
        }
        if let Some(version) = members.get("Version")
            && !version.as_str().is_some_and(|v| VERSIONS.contains(&v))
        {
            return Err(grammar(format!(
                "\"Version\" must be one of {VERSIONS:?}, got {version}"
            )));
        }
        let statements = match members.get("Statement") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| statement(item, kind))
                .collect::<Result<_, _>>()?,
            Some(one @ Value::Object(_)) => vec![statement(one, kind)?],
            _ => {
                return Err(grammar(
                    "\"Statement\" must be an object or an array of them",
                ));
            }
        };
        Ok(PolicyDocument { statements })
    }

    /// What the policy decides for `action` on `resource` by `caller`
    /// (`(user ARN, account id)`; only resource policies look at it).
    fn decide(&self, action: &str, resource: &str, caller: (&str, &str)) -> Decision {
        let action = action.to_ascii_lowercase();
        let mut allowed = false;
        for statement in &self.statements {
            let (user, account) = caller;
            let covered = statement
                .principals
                .as_ref()
                .is_none_or(|p| p.cover(user, account, statement.effect));
            if covered
                && statement.actions.matches(&action)
                && statement.resources.matches(resource)
            {
                match statement.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allowed
        } else {
            Decision::ImplicitDeny
        }
    }
}

fn grammar(message: impl Into<String>) -> PolicyError {
    PolicyError::Grammar(message.into())
}

fn statement(value: &Value, kind: Kind) -> Result<Statement, PolicyError> {
    let Value::Object(members) = value else {
        return Err(grammar("each statement must be a JSON object"));
    };
    for name in members.keys() {
        match name.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" => {}
            "Principal" | "NotPrincipal" if kind == Kind::Resource => {}
            "Principal" | "NotPrincipal" => {
                return Err(grammar(format!(
                    "\"{name}\" belongs in resource-based policies, not in an access key's policy"
                )));
            }
            "Condition" => return Err(grammar("\"Condition\" is not supported by Riffle yet")),
            other => return Err(grammar(format!("unknown statement element \"{other}\""))),
        }
    }
    let effect = match members.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(grammar("\"Effect\" must be \"Allow\" or \"Deny\"")),
    };
    let mut actions = patterns(members, "Action", "NotAction")?;
    for pattern in &mut actions.patterns {
        pattern.make_ascii_lowercase();
    }
    let resources = patterns(members, "Resource", "NotResource")?;
    let principals = match kind {
        Kind::Identity => None,
        Kind::Resource => Some(principals(members)?),
    };
    Ok(Statement {
        effect,
        principals,
        actions,
        resources,
    })
}

/// Exactly one of `Principal` and `NotPrincipal`: `"*"`, or a map of
/// principal kinds to a string or strings.
fn principals(members: &serde_json::Map<String, Value>) -> Result<Principals, PolicyError> {
    let (negated, value) = match (members.get("Principal"), members.get("NotPrincipal")) {
        (Some(value), None) => (false, value),
        (None, Some(value)) => (true, value),
        _ => {
            return Err(grammar(
                "each statement of a resource-based policy needs exactly one of \"Principal\" and \"NotPrincipal\"",
            ));
        }
    };
    let mut out = Principals {
        negated,
        anyone: false,
        aws: Vec::new(),
    };
    let by_kind = match value {
        Value::String(star) if star == "*" => {
            out.anyone = true;
            return Ok(out);
        }
        Value::Object(by_kind) => by_kind,
        _ => return Err(grammar("\"Principal\" must be \"*\" or an object")),
    };
    for (kind, names) in by_kind {
        let names = match names {
            Value::String(one) => vec![one.clone()],
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| grammar(format!("\"Principal\" {kind} must hold strings")))?,
            _ => {
                return Err(grammar(format!(
                    "\"Principal\" {kind} must be a string or strings"
                )));
            }
        };
        match kind.as_str() {
            "AWS" => {
                for name in names {
                    if name == "*" {
                        out.anyone = true;
                    } else if is_account_id(&name) || name.starts_with("arn:aws") {
                        out.aws.push(name);
                    } else {
                        return Err(grammar(format!(
                            "invalid principal in policy: \"AWS\":\"{name}\""
                        )));
                    }
                }
            }
            "Service" | "Federated" | "CanonicalUser" => {}
            other => return Err(grammar(format!("unknown principal kind \"{other}\""))),
        }
    }
    Ok(out)
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a PutResourcePolicy document before it is stored (the service's
/// `KinesisConfig::resource_policy_check`): `Err` says why it cannot be used.
pub fn check_resource_policy(text: &str) -> Result<(), String> {
    PolicyDocument::parse_resource(text)
        .map(drop)
        .map_err(|err| err.to_string())
}

/// Exactly one of `positive` and `negative`, a string or strings.
fn patterns(
    members: &serde_json::Map<String, Value>,
    positive: &str,
    negative: &str,
) -> Result<Patterns, PolicyError> {
    let (negated, value) = match (members.get(positive), members.get(negative)) {
        (Some(value), None) => (false, value),
        (None, Some(value)) => (true, value),
        _ => {
            return Err(grammar(format!(
                "each statement needs exactly one of \"{positive}\" and \"{negative}\""
            )));
        }
    };
    let patterns = match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| grammar(format!("\"{positive}\" must hold strings")))?,
        _ => {
            return Err(grammar(format!(
                "\"{positive}\" must be a string or strings"
            )));
        }
    };
    Ok(Patterns { negated, patterns })
}

/// The policies of the server's access keys, and the resource policies
/// met so far, parsed.
pub struct Policies {
    region: String,
    account_id: String,
    by_key: HashMap<String, PolicyDocument>,
    /// Resource policies by their text. Held only to look up or insert.
    parsed: Mutex<HashMap<String, Option<Arc<PolicyDocument>>>>,
}

impl Policies {
    pub fn new(
        region: &str,
        account_id: &str,
        documents: impl IntoIterator<Item = (String, PolicyDocument)>,
    ) -> Policies {
        Policies {
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            by_key: documents.into_iter().collect(),
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has an identity policy to check (others may call
    /// everything no resource policy denies them).
    pub(crate) fn governs(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// Checks a call of `qualified` (`<iam prefix>:<Action>`) on
    /// `resource` by `key`; `Err` holds AWS's AccessDeniedException
    /// message. `resource_policy` is the policy attached to the resource.
    pub(crate) fn authorize(
        &self,
        key: &str,
        qualified: &str,
        resource: &str,
        resource_policy: Option<String>,
    ) -> Result<(), String> {
        let identity = self.by_key.get(key);
        let attached = resource_policy.and_then(|text| self.parsed_resource(text));
        if identity.is_none() && attached.is_none() {
            return Ok(());
        }
        let user = format!("arn:aws:iam::{}:user/{key}", self.account_id);
        let caller = (user.as_str(), self.account_id.as_str());
        let by_identity = identity.map(|p| p.decide(qualified, resource, caller));
        let by_resource = attached.map(|p| p.decide(qualified, resource, caller));
        let because = match (by_identity, by_resource) {
            (Some(Decision::ExplicitDeny), _) => {
                "with an explicit deny in an identity-based policy".to_owned()
            }
            (_, Some(Decision::ExplicitDeny)) => {
                "with an explicit deny in a resource-based policy".to_owned()
            }
            (None | Some(Decision::Allowed), _) | (_, Some(Decision::Allowed)) => return Ok(()),
            (Some(Decision::ImplicitDeny), _) => {
                format!("because no identity-based policy allows the {qualified} action")
            }
        };
        Err(format!(
            "User: {user} is not authorized to perform: {qualified} on resource: {resource} {because}"
        ))
    }

    /// A resource policy, parsed once per text. One that cannot be read
    /// (stored before its grammar was checked) is left out, with a warning:
    /// it neither grants nor denies.
    fn parsed_resource(&self, text: String) -> Option<Arc<PolicyDocument>> {
        if let Some(known) = self.parsed.lock().get(&text) {
            return known.clone();
        }
        let parsed = match PolicyDocument::parse_resource(&text) {
            Ok(document) => Some(Arc::new(document)),
            Err(err) => {
                warn!(error = %err, "a stored resource policy cannot be read; it is not applied");
                None
            }
        };
        let mut cache = self.parsed.lock();
        if cache.len() >= RESOURCE_POLICY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(text, parsed.clone());
        parsed
    }

    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    pub(crate) fn account_id(&self) -> &str {
        &self.account_id
    }
}

/// The ARN a Kinesis call acts on: its stream, consumer or resource ARN,
/// or `*` for account-wide actions. `iterator_stream` names the stream of
/// a shard iterator (GetRecords names no other).
pub(crate) fn kinesis_resource(
    region: &str,
    account_id: &str,
    action: &str,
    request: &[u8],
    iterator_stream: impl Fn(&str) -> Option<String>,
) -> String {
    if ACCOUNT_ACTIONS.contains(&action) {
        return "*".to_owned();
    }
    // Only the names are read; the rest (record data included) is
    // skipped without being copied.
    let names: Names<'_> = serde_json::from_slice(request).unwrap_or_default();
    if RESOURCE_ARN_ACTIONS.contains(&action) {
        return names.resource_arn.as_deref().unwrap_or("*").to_owned();
    }
    let name = match &names.shard_iterator {
        Some(token) if action == "GetRecords" => iterator_stream(token),
        _ => names.stream_name.as_deref().map(str::to_owned),
    };
    let stream = match (names.stream_arn.as_deref(), name) {
        (Some(arn), _) => Some(arn.to_owned()),
        (None, Some(name)) => Some(format!(
            "arn:aws:kinesis:{}:{}:stream/{name}",
            region, account_id
        )),
        (None, None) => None,
    };
    if CONSUMER_ACTIONS.contains(&action) {
        if let Some(arn) = names.consumer_arn.as_deref() {
            return arn.to_owned();
        }
        // By stream and name, the creation time of the ARN is unknown.
        if let (Some(stream), Some(name)) = (&stream, names.consumer_name.as_deref()) {
            return format!("{stream}/consumer/{name}:*");
        }
        return "*".to_owned();
    }
    stream.unwrap_or_else(|| "*".to_owned())
}
/// The members of a request that name its resource.
#[derive(Default, Deserialize)]
struct Names<'a> {
    #[serde(rename = "StreamARN", borrow)]
    stream_arn: Option<Cow<'a, str>>,
    #[serde(rename = "StreamName", borrow)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "ConsumerARN", borrow)]
    consumer_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ConsumerName", borrow)]
    consumer_name: Option<Cow<'a, str>>,
    #[serde(rename = "ResourceARN", borrow)]
    resource_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ShardIterator", borrow)]
    shard_iterator: Option<Cow<'a, str>>,
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it is matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            // Let the `*` take one more character and try again.
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";

    impl Policies {
        /// A Kinesis call as the edge checks it: `kinesis:<action>` on the
        /// resource its request names.
        fn authorize_kinesis(
            &self,
            key: &str,
            action: &str,
            request: &[u8],
            iterator_stream: impl Fn(&str) -> Option<String>,
            resource_policy: impl Fn(&str) -> Option<String>,
        ) -> Result<(), String> {
            let resource = kinesis_resource(
                &self.region,
                &self.account_id,
                action,
                request,
                iterator_stream,
            );
            let attached = resource_policy(&resource);
            self.authorize(key, &format!("kinesis:{action}"), &resource, attached)
        }

        /// For calls without a shard iterator.
        fn authorize_plain(&self, key: &str, action: &str, request: &[u8]) -> Result<(), String> {
            self.authorize_kinesis(key, action, request, |_| None, |_| None)
        }
    }

    #[test]
    fn get_records_is_authorized_on_the_stream_of_its_iterator() {
        let p = policies(
            r#"{"Statement":{"Effect":"Allow","Action":"kinesis:GetRecords","Resource":"arn:aws:kinesis:*:*:stream/orders"}}"#,
        );
        let body = br#"{"ShardIterator":"token"}"#;
        let of =
            |stream: &'static str| move |token: &str| (token == "token").then(|| stream.to_owned());
        assert_eq!(
            p.authorize_kinesis("AKIDBOB", "GetRecords", body, of("orders"), |_| None),
            Ok(())
        );
        let denied = p
            .authorize_kinesis("AKIDBOB", "GetRecords", body, of("payments"), |_| None)
            .unwrap_err();
        assert!(
            denied.contains("on resource: arn:aws:kinesis:us-east-1:000000000000:stream/payments "),
            "{denied}"
        );
        // A token the server did not issue names no stream.
        assert!(
            p.authorize_kinesis("AKIDBOB", "GetRecords", body, |_| None, |_| None)
                .is_err()
        );
    }

    fn policies(text: &str) -> Policies {
        Policies::new(
            "us-east-1",
            "000000000000",
            [("AKIDBOB".to_owned(), PolicyDocument::parse(text).unwrap())],
        )
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("kinesis:get*", "kinesis:getrecords"));
        assert!(wildcard_match("kinesis:?etRecords", "kinesis:GetRecords"));
        assert!(wildcard_match("arn:*:stream/o*s", STREAM));
        assert!(wildcard_match("a*b*c", "aXbYbZc"));
        assert!(!wildcard_match("a*b*c", "aXbYbZ"));
        assert!(!wildcard_match("kinesis:Get", "kinesis:GetRecords"));
        assert!(!wildcard_match("", "x"));
    }

    #[test]
    fn an_allow_lets_through_only_what_it_names() {
        let p = policies(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
                "Action":["kinesis:Get*","kinesis:DescribeStreamSummary"],
                "Resource":"arn:aws:kinesis:*:*:stream/orders"}]}"#,
        );
        // No stream named: the resource is `*`, which the policy does not grant.
        assert_eq!(
            p.authorize_plain("AKIDBOB", "GetRecords", b"{}")
                .unwrap_err(),
            "User: arn:aws:iam::000000000000:user/AKIDBOB is not authorized to perform: kinesis:GetRecords on resource: * because no identity-based policy allows the kinesis:GetRecords action"
        );
        assert_eq!(
            p.authorize_plain(
                "AKIDBOB",
                "DescribeStreamSummary",
                br#"{"StreamName":"orders"}"#
            ),
            Ok(())
        );
        assert_eq!(
            p.authorize_plain(
                "AKIDBOB",
                "GetShardIterator",
                format!(r#"{{"StreamARN":"{STREAM}"}}"#).as_bytes()
            ),
            Ok(())
        );
        let denied = p
            .authorize_plain("AKIDBOB", "PutRecord", br#"{"StreamName":"orders"}"#)
            .unwrap_err();
        assert_eq!(
            denied,
            format!(
                "User: arn:aws:iam::000000000000:user/AKIDBOB is not authorized to perform: kinesis:PutRecord on resource: {STREAM} because no identity-based policy allows the kinesis:PutRecord action"
            )
        );
        assert!(
            p.authorize_plain(
                "AKIDBOB",
                "DescribeStreamSummary",
                br#"{"StreamName":"other"}"#
            )
            .is_err()
        );
        // A key without a policy is not governed.
        assert_eq!(
            p.authorize_plain("AKIDALICE", "DeleteStream", b"{}"),
            Ok(())
        );
        assert!(!p.governs("AKIDALICE"));
    }

    #[test]
    fn an_explicit_deny_wins_over_any_allow() {
        let p = policies(
            r#"{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"},
                {"Effect":"Deny","Action":"kinesis:Delete*","NotResource":"arn:aws:kinesis:*:*:stream/scratch-*"}]}"#,
        );
        let denied = p
            .authorize_plain("AKIDBOB", "DeleteStream", br#"{"StreamName":"orders"}"#)
            .unwrap_err();
        assert!(
            denied.ends_with("with an explicit deny in an identity-based policy"),
            "{denied}"
        );
        assert_eq!(
            p.authorize_plain("AKIDBOB", "DeleteStream", br#"{"StreamName":"scratch-1"}"#),
            Ok(())
        );
        assert_eq!(p.authorize_plain("AKIDBOB", "ListStreams", b"{}"), Ok(()));
    }

    #[test]
    fn consumers_and_tagged_resources_are_their_own_resources() {
        let p = policies(
            r#"{"Statement":{"Effect":"Allow","Action":["kinesis:SubscribeToShard","kinesis:DescribeStreamConsumer","kinesis:TagResource"],
                "Resource":"arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/*"}}"#,
        );
        let consumer = format!("{STREAM}/consumer/app:1796400000");
        let by_arn = format!(r#"{{"ConsumerARN":"{consumer}","ShardId":"shardId-000000000000"}}"#);
        assert_eq!(
            p.authorize_plain("AKIDBOB", "SubscribeToShard", by_arn.as_bytes()),
            Ok(())
        );
        let by_name = format!(r#"{{"StreamARN":"{STREAM}","ConsumerName":"app"}}"#);
        assert_eq!(
            p.authorize_plain("AKIDBOB", "DescribeStreamConsumer", by_name.as_bytes()),
            Ok(())
        );
        let tag = format!(r#"{{"ResourceARN":"{consumer}","Tags":{{"a":"b"}}}}"#);
        assert_eq!(
            p.authorize_plain("AKIDBOB", "TagResource", tag.as_bytes()),
            Ok(())
        );
        // The stream itself is not a consumer.
        let tag_stream = format!(r#"{{"ResourceARN":"{STREAM}","Tags":{{"a":"b"}}}}"#);
        assert!(
            p.authorize_plain("AKIDBOB", "TagResource", tag_stream.as_bytes())
                .is_err()
        );
    }

    #[test]
    fn resource_policies_grant_to_the_users_they_name_and_deny_whole_accounts() {
        let bob = "arn:aws:iam::000000000000:user/AKIDBOB";
        // The policy `text` is attached to STREAM only.
        let attached = |text: &str| {
            let text = text.to_owned();
            move |arn: &str| (arn == STREAM).then(|| text.clone())
        };
        let p =
            policies(r#"{"Statement":{"Effect":"Allow","Action":"kinesis:Get*","Resource":"*"}}"#);
        let body = format!(r#"{{"StreamARN":"{STREAM}"}}"#);
        let call = |key: &str, action: &str, policy: &str| {
            p.authorize_kinesis(key, action, body.as_bytes(), |_| None, attached(policy))
        };
        let grant = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":["{bob}"]}},"Action":"kinesis:PutRecord","Resource":"{STREAM}"}}]}}"#
        );
        assert_eq!(call("AKIDBOB", "PutRecord", &grant), Ok(()));
        assert!(call("AKIDBOB", "PutRecords", &grant).is_err());
        // Naming the account delegates an Allow to the identity policies.
        let account = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"kinesis:*","Resource":"*"}]}"#;
        assert!(call("AKIDBOB", "PutRecord", account).is_err());
        assert_eq!(call("AKIDBOB", "GetRecords", account), Ok(()));
        // A Deny naming the account binds every key, with a policy or not.
        let deny = r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kinesis:Get*","Resource":"*"}]}"#;
        let refused = call("AKIDALICE", "GetShardIterator", deny).unwrap_err();
        assert!(
            refused.ends_with("with an explicit deny in a resource-based policy"),
            "{refused}"
        );
        assert!(call("AKIDBOB", "GetShardIterator", deny).is_err());
        assert_eq!(call("AKIDALICE", "PutRecord", deny), Ok(()));
        // NotPrincipal: everyone but the named user.
        let not_bob = format!(
            r#"{{"Statement":[{{"Effect":"Deny","NotPrincipal":{{"AWS":"{bob}"}},"Action":"kinesis:*","Resource":"*"}}]}}"#
        );
        assert!(call("AKIDALICE", "ListShards", &not_bob).is_err());
        assert_eq!(call("AKIDBOB", "GetRecords", &not_bob), Ok(()));
        // A policy attached elsewhere does not apply.
        let other = format!(r#"{{"StreamARN":"{STREAM}-2"}}"#);
        assert_eq!(
            p.authorize_kinesis(
                "AKIDALICE",
                "GetRecords",
                other.as_bytes(),
                |_| None,
                attached(deny)
            ),
            Ok(())
        );
    }

    #[test]
    fn resource_policies_must_name_principals_identity_policies_must_not() {
        let refused = |text: &str| check_resource_policy(text).unwrap_err();
        assert!(
            refused(r#"{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}"#)
                .contains("Principal")
        );
        assert!(refused(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kinesis:*","Resource":"*"}]}"#)
            .contains("invalid principal"));
        assert!(refused(r#"{"Statement":[{"Effect":"Allow","Principal":"bob","Action":"kinesis:*","Resource":"*"}]}"#)
            .contains("Principal"));
        assert!(refused("[]").contains("JSON object"));
        for good in [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}]}"#,
            r#"{"Statement":{"Sid":"x","Effect":"Deny","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:role/r"],"Service":"lambda.amazonaws.com"},"NotAction":"kinesis:Get*","Resource":"*"}}"#,
        ] {
            assert_eq!(check_resource_policy(good), Ok(()), "{good}");
            assert!(PolicyDocument::parse(good).is_err(), "{good}");
        }
    }

    #[test]
    fn documents_that_would_mean_less_than_they_say_are_refused() {
        let refused = |text: &str| PolicyDocument::parse(text).unwrap_err().to_string();
        assert!(refused("not json").starts_with("not a JSON policy document"));
        assert!(refused(r#"{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{}}]}"#)
            .contains("Condition"));
        assert!(refused(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}]}"#)
            .contains("Principal"));
        assert!(
            refused(r#"{"Statement":[{"Effect":"allow","Action":"kinesis:*","Resource":"*"}]}"#)
                .contains("Effect")
        );
        assert!(refused(r#"{"Statement":[{"Effect":"Allow","Action":"kinesis:*","NotAction":"x","Resource":"*"}]}"#)
            .contains("exactly one of"));
        assert!(
            refused(r#"{"Statement":[{"Effect":"Allow","Action":"kinesis:*"}]}"#)
                .contains("Resource")
        );
        assert!(refused(r#"{"Version":"2020-01-01","Statement":[]}"#).contains("Version"));
        assert!(refused(r#"{"Statment":[]}"#).contains("Statment"));
        assert!(
            refused(r#"{"Statement":[{"Effect":"Allow","Action":[1],"Resource":"*"}]}"#)
                .contains("strings")
        );
    }
}
