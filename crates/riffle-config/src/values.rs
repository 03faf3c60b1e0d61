//! Value types of options that read the same text from a flag, a variable
//! or the file (where TOML may also give a number or a boolean), with one
//! parser each, so a value is checked the same way wherever it is given.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Implements `Serialize` (as its `Display` text) and `Deserialize` (from a
/// string, through its `FromStr`) for an option's value type, so that the
/// file's text goes through the parser the flag's does.
#[macro_export]
macro_rules! text_option {
    ($type:ty) => {
        impl ::serde::Serialize for $type {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $type {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// `on` or `off`; in the file also `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnOff(pub bool);

impl FromStr for OnOff {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "on" | "true" => Ok(OnOff(true)),
            "off" | "false" => Ok(OnOff(false)),
            _ => Err(format!("expected on or off, got {text:?}")),
        }
    }
}

impl fmt::Display for OnOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "on" } else { "off" })
    }
}

impl Serialize for OnOff {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OnOff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OnOffVisitor;
        impl Visitor<'_> for OnOffVisitor {
            type Value = OnOff;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("on or off")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OnOff, E> {
                Ok(OnOff(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OnOff, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(OnOffVisitor)
    }
}

/// A whole number in `MIN..=MAX`; in the file a number or its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    /// The value read as milliseconds.
    pub fn millis(self) -> Duration {
        Duration::from_millis(self.0)
    }

    fn check(n: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&n) {
            Ok(Bounded(n))
        } else {
            Err(format!("expected a whole number in {MIN}..={MAX}, got {n}"))
        }
    }
}

impl<const MIN: u64, const MAX: u64> FromStr for Bounded<MIN, MAX> {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let n: u64 = text
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number in {MIN}..={MAX}, got {text:?}"))?;
        Self::check(n)
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Display for Bounded<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Bounded<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> Visitor<'_> for BoundedVisitor<MIN, MAX> {
            type Value = Bounded<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number in {MIN}..={MAX}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Bounded::check(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                let n = u64::try_from(v).map_err(|_| {
                    E::custom(format!("expected a whole number in {MIN}..={MAX}, got {v}"))
                })?;
                Bounded::check(n).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(BoundedVisitor::<MIN, MAX>)
    }
}

/// A listening address: `IP:PORT`, or `HOST:PORT` resolved once at start-up
/// (e.g. `localhost:4567`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub SocketAddr);

impl FromStr for Listen {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        text.parse()
            .ok()
            .or_else(|| text.to_socket_addrs().ok()?.next())
            .map(Listen)
            .ok_or_else(|| format!("expected HOST:PORT such as 127.0.0.1:4567, got {text:?}"))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

text_option!(Listen);

/// A listening address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOrOff(pub Option<SocketAddr>);

impl FromStr for ListenOrOff {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(ListenOrOff(None));
        }
        let Listen(addr) = text.parse().map_err(|_| {
            format!("expected HOST:PORT such as 127.0.0.1:9464, or off, got {text:?}")
        })?;
        Ok(ListenOrOff(Some(addr)))
    }
}

impl fmt::Display for ListenOrOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("off"),
        }
    }
}

text_option!(ListenOrOff);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct File {
        switch: OnOff,
        ms: Bounded<1, 100>,
    }

    #[test]
    fn on_off_reads_words_and_booleans_and_round_trips() {
        for (text, want) in [
            ("on", true),
            ("off", false),
            ("true", true),
            ("false", false),
        ] {
            assert_eq!(text.parse::<OnOff>(), Ok(OnOff(want)));
        }
        assert!(
            "yes"
                .parse::<OnOff>()
                .unwrap_err()
                .contains("expected on or off")
        );
        let file: File = toml::from_str("switch = false\nms = 5").unwrap();
        assert_eq!(file.switch, OnOff(false));
        let file: File = toml::from_str("switch = \"on\"\nms = \"7\"").unwrap();
        assert_eq!(
            file,
            File {
                switch: OnOff(true),
                ms: Bounded(7)
            }
        );
        let again: File = toml::from_str(&toml::to_string(&file).unwrap()).unwrap();
        assert_eq!(again, file);
    }

    #[test]
    fn bounded_numbers_refuse_values_outside_their_range_from_any_source() {
        assert_eq!("100".parse::<Bounded<1, 100>>(), Ok(Bounded(100)));
        let err = "0".parse::<Bounded<1, 100>>().unwrap_err();
        assert_eq!(err, "expected a whole number in 1..=100, got 0");
        assert!("ten".parse::<Bounded<1, 100>>().is_err());
        let err = toml::from_str::<File>("switch = true\nms = 101").unwrap_err();
        assert!(err.to_string().contains("1..=100"), "{err}");
        let err = toml::from_str::<File>("switch = true\nms = -1").unwrap_err();
        assert!(err.to_string().contains("1..=100"), "{err}");
    }
}
