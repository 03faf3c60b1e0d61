//! The listing algorithm of ListObjectsV2 and ListObjects over a bucket's sorted keys:
//! prefix, delimiter (CommonPrefixes), start-after, continuation and max-keys.

/// ListObjectsV2 returns "up to 1,000" keys per page (S3 API Reference).
pub const MAX_KEYS: usize = 1000;

/// One entry of a page, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Object(String),
    CommonPrefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Self::Object(k) | Self::CommonPrefix(k) => k,
        }
    }
}

/// Where a page ends, so that the next one starts after it. A common
/// prefix as the last entry means every key under it was covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker(pub Entry);

impl Marker {
    const OBJECT: char = 'o';
    const PREFIX: char = 'p';

    /// An opaque continuation token: a kind letter and the name, in hex, so
    /// that it survives any query-string handling.
    pub fn to_token(&self) -> String {
        let (kind, name) = match &self.0 {
            Entry::Object(k) => (Self::OBJECT, k),
            Entry::CommonPrefix(p) => (Self::PREFIX, p),
        };
        format!("{kind}{}", crate::names::hex(name.as_bytes()))
    }

    /// Reads a token of [`Marker::to_token`]; `None` if it is not one.
    pub fn from_token(token: &str) -> Option<Self> {
        let mut chars = token.chars();
        let kind = chars.next()?;
        let hex = chars.as_str();
        if !hex.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let name = String::from_utf8(bytes).ok()?;
        match kind {
            Self::OBJECT => Some(Self(Entry::Object(name))),
            Self::PREFIX => Some(Self(Entry::CommonPrefix(name))),
            _ => None,
        }
    }
}

/// What a listing asks for.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub prefix: String,
    /// `None` (or empty) lists every key under the prefix.
    pub delimiter: Option<String>,
    pub max_keys: usize,
    pub start_after: Option<String>,
    pub after: Option<Marker>,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Set when more entries follow; the next page starts after it.
    pub next: Option<Marker>,
}

/// Lists `sorted_keys` (in byte order, as S3 orders keys).
pub fn list(sorted_keys: &[String], query: &ListQuery) -> Page {
    let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut entries: Vec<Entry> = Vec::new();
    let mut next = None;
    for key in sorted_keys {
        if !key.starts_with(&query.prefix) || skipped(key, query) {
            continue;
        }
        let entry = match delimiter.and_then(|d| common_prefix(key, &query.prefix, d)) {
            Some(cp) => Entry::CommonPrefix(cp),
            None => Entry::Object(key.clone()),
        };
        if let Some(Entry::CommonPrefix(last)) = entries.last()
            && entry.name() == last
        {
            continue;
        }
        if entries.len() == query.max_keys {
            next = entries.last().cloned().map(Marker);
            break;
        }
        entries.push(entry);
    }
    Page { entries, next }
}

fn skipped(key: &str, query: &ListQuery) -> bool {
    if query.start_after.as_deref().is_some_and(|s| key <= s) {
        return true;
    }
    match &query.after {
        Some(Marker(Entry::Object(last))) => key <= last.as_str(),
        Some(Marker(Entry::CommonPrefix(cp))) => key <= cp.as_str() || key.starts_with(cp),
        None => false,
    }
}

/// The common prefix `key` rolls up into: the prefix and everything up to
/// and including the first delimiter after it.
fn common_prefix(key: &str, prefix: &str, delimiter: &str) -> Option<String> {
    let rest = &key[prefix.len()..];
    rest.find(delimiter)
        .map(|at| format!("{prefix}{}", &rest[..at + delimiter.len()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    fn q(prefix: &str, delimiter: Option<&str>, max_keys: usize) -> ListQuery {
        ListQuery {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            max_keys,
            ..ListQuery::default()
        }
    }

    #[test]
    fn delimiter_rolls_keys_up_into_common_prefixes() {
        let all = keys(&["a/1", "a/2", "b", "c/d/e", "c/x", "d/"]);
        let page = list(&all, &q("", Some("/"), 1000));
        assert_eq!(
            page.entries,
            vec![
                Entry::CommonPrefix("a/".into()),
                Entry::Object("b".into()),
                Entry::CommonPrefix("c/".into()),
                Entry::CommonPrefix("d/".into()),
            ]
        );
        assert_eq!(page.next, None);
        let page = list(&all, &q("c/", Some("/"), 1000));
        assert_eq!(
            page.entries,
            vec![
                Entry::CommonPrefix("c/d/".into()),
                Entry::Object("c/x".into())
            ]
        );
    }

    #[test]
    fn pages_resume_after_a_common_prefix_without_repeating_it() {
        let all = keys(&["a/1", "a/2", "a/3", "b/1", "c"]);
        let mut query = q("", Some("/"), 1);
        let mut seen = Vec::new();
        loop {
            let page = list(&all, &query);
            seen.extend(page.entries);
            match page.next {
                Some(m) => query.after = Some(Marker::from_token(&m.to_token()).unwrap()),
                None => break,
            }
        }
        assert_eq!(
            seen,
            vec![
                Entry::CommonPrefix("a/".into()),
                Entry::CommonPrefix("b/".into()),
                Entry::Object("c".into()),
            ]
        );
    }

    #[test]
    fn start_after_and_max_keys_bound_the_page() {
        let all = keys(&["a", "b", "c", "d"]);
        let mut query = q("", None, 2);
        query.start_after = Some("a".into());
        let page = list(&all, &query);
        assert_eq!(
            page.entries,
            vec![Entry::Object("b".into()), Entry::Object("c".into())]
        );
        assert_eq!(page.next, Some(Marker(Entry::Object("c".into()))));
        // A page that ends exactly at the last key is not truncated.
        let page = list(&all, &q("", None, 4));
        assert_eq!(page.entries.len(), 4);
        assert_eq!(page.next, None);
    }

    #[test]
    fn tokens_refuse_what_they_did_not_make() {
        assert_eq!(Marker::from_token("zz"), None);
        assert_eq!(Marker::from_token("o6"), None);
        assert_eq!(Marker::from_token(""), None);
        let m = Marker(Entry::Object("ünï/ code".into()));
        assert_eq!(Marker::from_token(&m.to_token()), Some(m));
    }
}
