//! Kinesis sequence numbers: the decimal strings clients see, encoding the
//! shard and the per-shard [`Seq`] the storage engine assigns.
//!
//! # Layout
//!
//! A sequence number is a 188-bit unsigned integer written in decimal, 56
//! digits long like AWS's (e.g. `49590338271490256608559692538361571095921575989136588898`).
//! Its 47 hexadecimal nibbles, most significant first, follow the layout
//! AWS's own numbers show (version 2):
//!
//! ```text
//! nibbles  bits  field
//!  0        4    version, always 2
//!  1..10   36    shard creation time, seconds since the Unix epoch
//! 10        4    shard index, low nibble
//! 11..27   64    Seq: the record's per-shard sequence from riffle-log
//! 27..29    8    stream incarnation, low byte (tells recreated streams apart)
//! 29..38   36    record arrival time, seconds since the Unix epoch
//! 38..46   32    shard index
//! 46        4    trailer, always 2
//! ```
//!
//! Within one shard numbers grow with `Seq` (the fields above it are fixed
//! for the shard), so they compare as AWS's do; across shards of a stream
//! they differ in the shard fields and never collide. Decoding checks both
//! markers and that the two copies of the shard index agree.

use riffle_log::Seq;

/// The decoded fields of a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqNum {
    pub shard_created_secs: u64,
    pub shard_index: u32,
    pub seq: Seq,
    pub incarnation_byte: u8,
    pub arrival_secs: u64,
}

const VERSION: u128 = 2;
const TRAILER: u64 = 2;
/// Times are 36-bit second counts (good until the year 4147).
const SECS_MASK: u64 = (1 << 36) - 1;

/// The number as `hi * 2^64 + lo`, `hi < 2^124`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wide {
    hi: u128,
    lo: u64,
}

const HI_BITS: u32 = 124;
const TEN_POW_19: u128 = 10_000_000_000_000_000_000;
const TEN_POW_19_U64: u64 = TEN_POW_19 as u64;

/// Room for the decimal of a [`Wide`] (188 bits < 10^57), in whole
/// 19-digit chunks.
const DIGITS_MAX: usize = 57;
const _: () = assert!(DIGITS_MAX.is_multiple_of(19));

/// "00", "01", …, "99": decimal digits are written two at a time.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl SeqNum {
    /// Writes the number in decimal.
    pub fn encode(&self) -> String {
        let mut digits = [0u8; DIGITS_MAX];
        self.decimal(&mut digits).to_owned()
    }

    /// Appends the number in decimal to `out`, without an intermediate
    /// `String`: responses write one per record.
    pub fn encode_into(&self, out: &mut String) {
        let mut digits = [0u8; DIGITS_MAX];
        out.push_str(self.decimal(&mut digits));
    }

    fn decimal<'d>(&self, digits: &'d mut [u8; DIGITS_MAX]) -> &'d str {
        let created = u128::from(self.shard_created_secs & SECS_MASK);
        let arrival = self.arrival_secs & SECS_MASK;
        // Bits 64.. of the number (see the layout): arrival's top 8 bits,
        // the incarnation byte, Seq, the shard nibble, creation, version.
        let hi = (VERSION << 120)
            | (created << 84)
            | (u128::from(self.shard_index & 0xF) << 80)
            | (u128::from(self.seq) << 16)
            | (u128::from(self.incarnation_byte) << 8)
            | u128::from(arrival >> 28);
        let lo = ((arrival & ((1 << 28) - 1)) << 36) | (u64::from(self.shard_index) << 4) | TRAILER;
        to_decimal(Wide { hi, lo }, digits)
    }

    /// Reads a decimal sequence number; `None` if it is not one Riffle
    /// issued (wrong length, markers or inconsistent shard index).
    pub fn decode(text: &str) -> Option<SeqNum> {
        let Wide { hi, lo } = from_decimal(text)?;
        if hi >> 120 != VERSION || lo & 0xF != TRAILER {
            return None;
        }
        let shard_index = ((lo >> 4) & 0xFFFF_FFFF) as u32;
        if (hi >> 80) & 0xF != u128::from(shard_index & 0xF) {
            return None;
        }
        Some(SeqNum {
            shard_created_secs: ((hi >> 84) as u64) & SECS_MASK,
            shard_index,
            seq: (hi >> 16) as u64,
            incarnation_byte: (hi >> 8) as u8,
            arrival_secs: ((hi as u64 & 0xFF) << 28) | (lo >> 36),
        })
    }
}

/// Writes `n` in decimal at the end of `digits`; returns the digits.
fn to_decimal(n: Wide, digits: &mut [u8; DIGITS_MAX]) -> &str {
    // Three 64-bit limbs, most significant first, divided by 10^19 with
    // 128-by-64-bit steps: each quotient limb fits in 64 bits because the
    // running remainder is below 10^19. (Dividing the u128 halves directly
    // takes the much slower 128-by-128-bit path.)
    let mut limbs = [(n.hi >> 64) as u64, n.hi as u64, n.lo];
    let mut at = digits.len();
    loop {
        let mut rem = 0u64;
        for limb in &mut limbs {
            if rem == 0 {
                // Nothing carried in: a 64-bit division (a multiply) does.
                // Only 3 of the 9 steps need the 128-bit one.
                rem = *limb % TEN_POW_19_U64;
                *limb /= TEN_POW_19_U64;
                continue;
            }
            let cur = (u128::from(rem) << 64) | u128::from(*limb);
            *limb = (cur / TEN_POW_19) as u64;
            rem = (cur % TEN_POW_19) as u64;
        }
        // Base-10^19 chunks, least significant first.
        write_19_digits(&mut digits[at - 19..at], rem);
        at -= 19;
        if limbs == [0, 0, 0] {
            break;
        }
    }
    // The most significant chunk was written with leading zeros.
    while at < DIGITS_MAX - 1 && digits[at] == b'0' {
        at += 1;
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&digits[at..]).expect("ASCII digits")
}

/// Writes `chunk` (< 10^19) as exactly 19 digits (leading zeros kept).
/// Split into independent 8-, 8- and 3-digit parts first, so that the
/// digit pairs are not one long chain of dependent divisions.
fn write_19_digits(out: &mut [u8], chunk: u64) {
    const TEN_POW_8: u64 = 100_000_000;
    let top = chunk / TEN_POW_8;
    let low = (chunk % TEN_POW_8) as u32;
    let mid = (top % TEN_POW_8) as u32;
    let high = (top / TEN_POW_8) as u32;
    write_8_digits(&mut out[11..19], low);
    write_8_digits(&mut out[3..11], mid);
    out[0] = b'0' + (high / 100) as u8;
    write_pair(&mut out[1..3], high % 100);
}

/// Writes `n` (< 10^8) as exactly 8 digits.
fn write_8_digits(out: &mut [u8], n: u32) {
    let (high, low) = (n / 10_000, n % 10_000);
    write_pair(&mut out[0..2], high / 100);
    write_pair(&mut out[2..4], high % 100);
    write_pair(&mut out[4..6], low / 100);
    write_pair(&mut out[6..8], low % 100);
}

fn write_pair(out: &mut [u8], n: u32) {
    let at = n as usize * 2;
    out.copy_from_slice(&DIGIT_PAIRS[at..at + 2]);
}

fn from_decimal(text: &str) -> Option<Wide> {
    if text.is_empty() || text.len() > 60 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n = Wide { hi: 0, lo: 0 };
    for digit in text.bytes().map(|b| u128::from(b - b'0')) {
        let low = u128::from(n.lo) * 10 + digit;
        n.lo = low as u64;
        n.hi = n.hi.checked_mul(10)?.checked_add(low >> 64)?;
        if n.hi >> HI_BITS != 0 {
            return None;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SeqNum {
        SeqNum {
            shard_created_secs: 1_795_000_000,
            shard_index: 3,
            seq: 42,
            incarnation_byte: 0xAB,
            arrival_secs: 1_795_000_123,
        }
    }

    #[test]
    fn small_values_print_without_leading_zeros() {
        for n in [0u64, 7, 10, 9_999_999_999_999_999_999] {
            let mut digits = [0u8; DIGITS_MAX];
            assert_eq!(
                to_decimal(Wide { hi: 0, lo: n }, &mut digits),
                n.to_string()
            );
        }
    }

    #[test]
    fn numbers_look_like_aws_ones() {
        let text = sample().encode();
        assert_eq!(text.len(), 56, "{text}");
        assert!(text.starts_with("49"), "{text}");
    }

    #[test]
    fn numbers_round_trip() {
        let parts = sample();
        assert_eq!(SeqNum::decode(&parts.encode()), Some(parts));
        let extreme = SeqNum {
            shard_created_secs: SECS_MASK,
            shard_index: u32::MAX,
            seq: u64::MAX,
            incarnation_byte: 0xFF,
            arrival_secs: SECS_MASK,
        };
        assert_eq!(SeqNum::decode(&extreme.encode()), Some(extreme));
    }

    #[test]
    fn numbers_grow_with_seq_within_a_shard_even_when_time_goes_back() {
        let a = SeqNum {
            seq: 9,
            arrival_secs: 2_000_000_000,
            ..sample()
        }
        .encode();
        let b = SeqNum {
            seq: 10,
            arrival_secs: 1_000,
            ..sample()
        }
        .encode();
        assert!(a.len() == b.len() && a < b, "{a} {b}");
    }

    #[test]
    fn foreign_or_malformed_numbers_are_refused() {
        for bad in ["", "0", "1", "abc", "-1", &"9".repeat(61), &"9".repeat(57)] {
            assert_eq!(SeqNum::decode(bad), None, "{bad}");
        }
        let good = sample().encode();
        let mut tampered = good.clone().into_bytes();
        tampered[55] = if tampered[55] == b'0' { b'5' } else { b'0' };
        assert_eq!(
            SeqNum::decode(std::str::from_utf8(&tampered).unwrap()),
            None
        );
    }

    proptest! {
        #[test]
        fn decimal_conversion_agrees_with_u128(hi in any::<u64>(), lo in any::<u64>()) {
            let value = (u128::from(hi) << 64) | u128::from(lo);
            let wide = Wide { hi: u128::from(hi), lo };
            let mut digits = [0u8; DIGITS_MAX];
            prop_assert_eq!(to_decimal(wide, &mut digits), value.to_string());
            prop_assert_eq!(from_decimal(&value.to_string()), Some(wide));
        }

        #[test]
        fn decimal_conversion_round_trips_all_188_bits(hi in 0..(1u128 << HI_BITS), lo in any::<u64>()) {
            let wide = Wide { hi, lo };
            let mut digits = [0u8; DIGITS_MAX];
            let text = to_decimal(wide, &mut digits);
            prop_assert!(!text.starts_with('0') || text == "0", "{}", text);
            prop_assert_eq!(from_decimal(text), Some(wide));
        }

        #[test]
        fn any_fields_round_trip(created in 0..=SECS_MASK, shard in any::<u32>(), seq in any::<u64>(),
                                 inc in any::<u8>(), arrival in 0..=SECS_MASK) {
            let parts = SeqNum { shard_created_secs: created, shard_index: shard, seq,
                                 incarnation_byte: inc, arrival_secs: arrival };
            prop_assert_eq!(SeqNum::decode(&parts.encode()), Some(parts));
        }

        #[test]
        fn order_follows_seq(a in any::<u64>(), b in any::<u64>(), ta in 0..=SECS_MASK, tb in 0..=SECS_MASK) {
            let x = SeqNum { seq: a, arrival_secs: ta, ..sample() }.encode();
            let y = SeqNum { seq: b, arrival_secs: tb, ..sample() }.encode();
            let by_number = (x.len(), &x).cmp(&(y.len(), &y));
            if a != b {
                prop_assert_eq!(by_number, a.cmp(&b));
            }
        }
    }
}
