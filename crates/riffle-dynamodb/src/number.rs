//! DynamoDB's Number: a decimal of up to 38 significant digits and a
//! magnitude between 1E-130 and 9.99…E+125, normalised (`1.50` is `1.5`,
//! `01` is `1`, `1e2` is `100`, `-0` is `0`), compared numerically, and
//! added or subtracted exactly (ADD and `+`/`-` in update expressions).

use std::cmp::Ordering;
use std::fmt;

use crate::errors::DynamoError;

/// Significant digits a Number holds (DynamoDB Developer Guide, "Data
/// types": "Numbers can have up to 38 digits of precision").
pub const DIGITS_MAX: usize = 38;
/// The largest magnitude is 9.9999999999999999999999999999999999999E+125
/// (the Developer Guide's range): as `0.d… × 10^exp`, `exp` at most 126.
const EXP_MAX: i32 = 126;
/// The smallest positive magnitude is 1E-130: `0.1 × 10^-129`.
const EXP_MIN: i32 = -129;

/// `(-1)^neg × 0.d₁d₂… × 10^exp`, with `digits` free of leading and
/// trailing zeros; zero has no digits (and is never negative).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    neg: bool,
    digits: Vec<u8>,
    exp: i32,
}

fn not_a_number() -> DynamoError {
    DynamoError::validation("A value provided cannot be converted into a number")
}

impl Number {
    pub fn zero() -> Number {
        Number {
            neg: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// Parses a Number as DynamoDB reads one: `[+-]digits[.digits][e[+-]digits]`.
    pub fn parse(text: &str) -> Result<Number, DynamoError> {
        let bytes = text.trim().as_bytes();
        let (neg, rest) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let (mantissa, exponent) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, &b""[..]),
        };
        let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
            return Err(not_a_number());
        }
        let exp10: i64 = match exponent {
            None => 0,
            Some(e) => {
                let text = std::str::from_utf8(e).map_err(|_| not_a_number())?;
                let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(not_a_number());
                }
                // A huge exponent is an overflow or underflow below.
                text.parse::<i64>().unwrap_or(if text.starts_with('-') {
                    -100_000
                } else {
                    100_000
                })
            }
        };
        let mut all: Vec<u8> = int.iter().chain(frac).map(|b| b - b'0').collect();
        let point = int.len() as i64;
        let lead = all.iter().take_while(|&&d| d == 0).count();
        all.drain(..lead);
        while all.last() == Some(&0) {
            all.pop();
        }
        if all.is_empty() {
            return Ok(Number::zero());
        }
        let exp = point - lead as i64 + exp10;
        Number::checked(neg, all, exp)
    }

    /// Checks the precision and range of normalised digits.
    fn checked(neg: bool, digits: Vec<u8>, exp: i64) -> Result<Number, DynamoError> {
        if digits.is_empty() {
            return Ok(Number::zero());
        }
        if digits.len() > DIGITS_MAX {
            return Err(DynamoError::validation(
                "Attempting to store more than 38 significant digits in a Number",
            ));
        }
        if exp > EXP_MAX as i64 {
            return Err(DynamoError::validation(
                "Number overflow. Attempting to store a number with magnitude larger than supported range",
            ));
        }
        if exp < EXP_MIN as i64 {
            return Err(DynamoError::validation(
                "Number underflow. Attempting to store a number with magnitude smaller than supported range",
            ));
        }
        Ok(Number {
            neg,
            digits,
            exp: exp as i32,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// The number of significant digits (for item sizes).
    pub fn significant_digits(&self) -> usize {
        self.digits.len()
    }

    pub fn negate(&self) -> Number {
        Number {
            neg: !self.neg && !self.is_zero(),
            ..self.clone()
        }
    }

    /// `self + other`, exact; an error if the sum needs more than 38 digits.
    pub fn add(&self, other: &Number) -> Result<Number, DynamoError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        // Both as integers of units 10^low.
        let low = (self.exp - self.digits.len() as i32).min(other.exp - other.digits.len() as i32);
        let high = self.exp.max(other.exp);
        let width = (high - low) as usize;
        if width > 4 * DIGITS_MAX {
            // One operand is below the other's last digit by far more than
            // 38 places: the sum cannot be held exactly.
            return Err(DynamoError::validation(
                "Attempting to store more than 38 significant digits in a Number",
            ));
        }
        let a = self.aligned(high, width);
        let b = other.aligned(high, width);
        let (neg, mut sum) = if self.neg == other.neg {
            (self.neg, add_digits(&a, &b))
        } else {
            match a.cmp(&b) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (self.neg, sub_digits(&a, &b)),
                Ordering::Less => (other.neg, sub_digits(&b, &a)),
            }
        };
        // `sum` is most significant first with one carry digit in front.
        let lead = sum.iter().take_while(|&&d| d == 0).count();
        let exp = high as i64 + 1 - lead as i64;
        sum.drain(..lead);
        while sum.last() == Some(&0) {
            sum.pop();
        }
        Number::checked(neg, sum, exp)
    }

    pub fn sub(&self, other: &Number) -> Result<Number, DynamoError> {
        self.add(&other.negate())
    }

    /// The magnitude's digits placed in `width` places below `10^high`.
    fn aligned(&self, high: i32, width: usize) -> Vec<u8> {
        let mut out = vec![0u8; width];
        let start = (high - self.exp) as usize;
        out[start..start + self.digits.len()].copy_from_slice(&self.digits);
        out
    }

    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self
                .exp
                .cmp(&other.exp)
                .then_with(|| self.digits.cmp(&other.digits)),
        }
    }
}

/// Sum of two equal-length digit strings, with one carry digit in front.
fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len() + 1];
    let mut carry = 0;
    for i in (0..a.len()).rev() {
        let d = a[i] + b[i] + carry;
        out[i + 1] = d % 10;
        carry = d / 10;
    }
    out[0] = carry;
    out
}

/// `a - b` for equal-length digit strings with `a >= b`, with a zero in front.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len() + 1];
    let mut borrow = 0i8;
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i8 - b[i] as i8 - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out[i + 1] = d as u8;
    }
    out
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self.neg, other.neg) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The plain decimal DynamoDB answers with: no exponent, no needless zeros.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut out = String::with_capacity(self.digits.len() + 8);
        if self.neg {
            out.push('-');
        }
        let digits: String = self.digits.iter().map(|d| (b'0' + d) as char).collect();
        let len = self.digits.len() as i32;
        if self.exp <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-self.exp) as usize));
            out.push_str(&digits);
        } else if self.exp >= len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (self.exp - len) as usize));
        } else {
            out.push_str(&digits[..self.exp as usize]);
            out.push('.');
            out.push_str(&digits[self.exp as usize..]);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn numbers_are_normalised_as_dynamodb_answers_them() {
        let cases = [
            ("1.50", "1.5"),
            ("01", "1"),
            ("1e2", "100"),
            ("-0", "0"),
            ("0.000", "0"),
            ("+3", "3"),
            ("-12.5E-3", "-0.0125"),
            (".5", "0.5"),
            ("5.", "5"),
            (
                "123456789012345678901234567890.12345678",
                "123456789012345678901234567890.12345678",
            ),
            ("1E125", &format!("1{}", "0".repeat(125))),
            ("1e-130", &format!("0.{}1", "0".repeat(129))),
        ];
        for (input, shown) in cases {
            assert_eq!(n(input).to_string(), shown, "{input}");
        }
    }

    #[test]
    fn malformed_oversized_and_out_of_range_numbers_are_refused_with_dynamodbs_texts() {
        for bad in ["", "abc", "1.2.3", "1e", "--1", "0x10", "1 2", "e5", "."] {
            let err = Number::parse(bad).unwrap_err();
            assert_eq!(
                err.message(),
                "A value provided cannot be converted into a number",
                "{bad:?}"
            );
        }
        let long = "1".repeat(39);
        assert!(
            Number::parse(&long)
                .unwrap_err()
                .message()
                .contains("38 significant digits")
        );
        assert!(Number::parse(&"1".repeat(38)).is_ok());
        // Trailing zeros are not significant.
        assert!(Number::parse(&format!("1{}", "0".repeat(100))).is_ok());
        assert!(
            Number::parse("1e126")
                .unwrap_err()
                .message()
                .starts_with("Number overflow")
        );
        assert!(
            Number::parse("1e-131")
                .unwrap_err()
                .message()
                .starts_with("Number underflow")
        );
        assert!(
            Number::parse("1e999999999999")
                .unwrap_err()
                .message()
                .starts_with("Number overflow")
        );
    }

    #[test]
    fn numbers_compare_by_value_not_by_text() {
        assert!(n("10") > n("9"));
        assert!(n("-10") < n("-9"));
        assert!(n("0.1") < n("0.11"));
        assert!(n("-0.5") < n("0"));
        assert_eq!(n("1.0").cmp(&n("1")), Ordering::Equal);
        assert!(n("1e3") > n("999.999"));
        assert!(n("-1e3") < n("-999.999"));
    }

    #[test]
    fn sums_and_differences_are_exact() {
        let cases = [
            ("1", "2", "3"),
            ("0.1", "0.2", "0.3"),
            ("99", "1", "100"),
            ("-5", "3", "-2"),
            ("5", "-5", "0"),
            ("1e20", "1", "100000000000000000001"),
            ("-0.001", "-0.009", "-0.01"),
            ("123.456", "-23.456", "100"),
        ];
        for (a, b, sum) in cases {
            assert_eq!(n(a).add(&n(b)).unwrap().to_string(), sum, "{a} + {b}");
        }
        assert_eq!(n("10").sub(&n("15")).unwrap().to_string(), "-5");
        let too_precise = n("1e37").add(&n("0.1")).unwrap_err();
        assert!(too_precise.message().contains("38 significant digits"));
    }
}
