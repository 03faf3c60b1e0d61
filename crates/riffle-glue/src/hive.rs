//! Hive column types, as Glue tables carry them in
//! `StorageDescriptor.Columns[].Type` (`array<struct<id:bigint,tags:map<string,string>>>`),
//! parsed into a typed schema.
//!
//! Glue itself stores any text as a column's type (it does not check it);
//! the readers of the table refuse what they cannot parse, and so does
//! Firehose's format conversion, through [`parse`]. Type names are
//! case-insensitive, as in Hive; `integer` is Hive's synonym of `int`,
//! `decimal` alone is `decimal(10,0)` (Hive's default).

use std::fmt;

/// Hive's `decimal` without arguments is `decimal(10,0)`.
const DECIMAL_DEFAULT: (u8, u8) = (10, 0);
/// Hive's decimals have at most 38 digits.
pub const DECIMAL_PRECISION_MAX: u8 = 38;
/// `char(n)`: 1 to 255 characters (Hive's CHAR).
const CHAR_MAX: u32 = 255;
/// `varchar(n)`: 1 to 65535 characters (Hive's VARCHAR).
const VARCHAR_MAX: u32 = 65_535;
/// Nesting deeper than this is refused rather than recursed into: a type
/// text is up to 131072 characters (the model's ColumnTypeString).
const DEPTH_MAX: usize = 100;

/// A Hive type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HiveType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    String,
    Char(u32),
    Varchar(u32),
    Binary,
    Decimal { precision: u8, scale: u8 },
    Timestamp,
    Date,
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
}

/// Why a type text is not a Hive type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse the Hive type '{text}': {reason}")]
pub struct TypeError {
    pub text: String,
    pub reason: String,
}

/// Parses a column's type.
pub fn parse(text: &str) -> Result<HiveType, TypeError> {
    let mut parser = Parser { text, at: 0 };
    let parsed = parser.hive_type(0).and_then(|t| {
        parser.skip_spaces();
        match parser.rest() {
            "" => Ok(t),
            rest => Err(format!("unexpected '{rest}' after the type")),
        }
    });
    parsed.map_err(|reason| TypeError {
        text: text.to_owned(),
        reason,
    })
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    /// A word: letters, digits and `_` (a type or field name).
    fn word(&mut self) -> &str {
        self.skip_spaces();
        let rest = &self.text[self.at..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    /// Consumes `c` (after spaces) if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        let next = self.rest().starts_with(c);
        if next {
            self.at += c.len_utf8();
        }
        next
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            return Ok(());
        }
        match self.rest().chars().next() {
            Some(found) => Err(format!("expected '{c}', found '{found}'")),
            None => Err(format!("expected '{c}', found the end")),
        }
    }

    fn number(&mut self) -> Result<u32, String> {
        let word = self.word().to_owned();
        word.parse()
            .map_err(|_| format!("expected a number, found '{word}'"))
    }

    fn hive_type(&mut self, depth: usize) -> Result<HiveType, String> {
        if depth > DEPTH_MAX {
            return Err(format!("nested deeper than {DEPTH_MAX} levels"));
        }
        let name = self.word().to_ascii_lowercase();
        Ok(match name.as_str() {
            "boolean" => HiveType::Boolean,
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" => HiveType::Float,
            "double" => HiveType::Double,
            "string" => HiveType::String,
            "binary" => HiveType::Binary,
            "timestamp" => HiveType::Timestamp,
            "date" => HiveType::Date,
            "char" => HiveType::Char(self.length(CHAR_MAX)?),
            "varchar" => HiveType::Varchar(self.length(VARCHAR_MAX)?),
            "decimal" => self.decimal()?,
            "array" => {
                self.expect('<')?;
                let element = self.hive_type(depth + 1)?;
                self.expect('>')?;
                HiveType::Array(Box::new(element))
            }
            "map" => {
                self.expect('<')?;
                let key = self.hive_type(depth + 1)?;
                self.expect(',')?;
                let value = self.hive_type(depth + 1)?;
                self.expect('>')?;
                HiveType::Map(Box::new(key), Box::new(value))
            }
            "struct" => self.struct_fields(depth)?,
            "" => return Err("expected a type name".to_owned()),
            other => return Err(format!("unknown type '{other}'")),
        })
    }

    /// `(n)` of char and varchar, 1 to `max`.
    fn length(&mut self, max: u32) -> Result<u32, String> {
        self.expect('(')?;
        let n = self.number()?;
        self.expect(')')?;
        if n == 0 || n > max {
            return Err(format!("length {n} is not between 1 and {max}"));
        }
        Ok(n)
    }

    /// `decimal`, `decimal(p)` or `decimal(p,s)`.
    fn decimal(&mut self) -> Result<HiveType, String> {
        let (mut precision, mut scale) = (u32::from(DECIMAL_DEFAULT.0), 0);
        if self.eat('(') {
            precision = self.number()?;
            scale = u32::from(DECIMAL_DEFAULT.1);
            if self.eat(',') {
                scale = self.number()?;
            }
            self.expect(')')?;
        }
        let max = u32::from(DECIMAL_PRECISION_MAX);
        if precision == 0 || precision > max {
            return Err(format!(
                "decimal precision {precision} is not between 1 and {max}"
            ));
        }
        if scale > precision {
            return Err(format!(
                "decimal scale {scale} is greater than its precision {precision}"
            ));
        }
        // Both are at most 38, checked above.
        let (precision, scale) = (precision as u8, scale as u8);
        Ok(HiveType::Decimal { precision, scale })
    }

    /// `struct<name:type,…>` (at least one field).
    fn struct_fields(&mut self, depth: usize) -> Result<HiveType, String> {
        self.expect('<')?;
        let mut fields: Vec<(String, HiveType)> = Vec::new();
        loop {
            let name = self.word().to_owned();
            if name.is_empty() {
                return Err("expected a struct field's name".to_owned());
            }
            if fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                return Err(format!("struct field '{name}' is given twice"));
            }
            self.expect(':')?;
            fields.push((name, self.hive_type(depth + 1)?));
            if !self.eat(',') {
                break;
            }
        }
        self.expect('>')?;
        Ok(HiveType::Struct(fields))
    }
}

impl fmt::Display for HiveType {
    /// The type as Hive writes it (lowercase, no spaces): parsing it back
    /// gives the same type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::Boolean => f.write_str("boolean"),
            HiveType::TinyInt => f.write_str("tinyint"),
            HiveType::SmallInt => f.write_str("smallint"),
            HiveType::Int => f.write_str("int"),
            HiveType::BigInt => f.write_str("bigint"),
            HiveType::Float => f.write_str("float"),
            HiveType::Double => f.write_str("double"),
            HiveType::String => f.write_str("string"),
            HiveType::Char(n) => write!(f, "char({n})"),
            HiveType::Varchar(n) => write!(f, "varchar({n})"),
            HiveType::Binary => f.write_str("binary"),
            HiveType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            HiveType::Timestamp => f.write_str("timestamp"),
            HiveType::Date => f.write_str("date"),
            HiveType::Array(element) => write!(f, "array<{element}>"),
            HiveType::Map(key, value) => write!(f, "map<{key},{value}>"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_primitive_parses_case_insensitively() {
        let cases = [
            ("boolean", HiveType::Boolean),
            ("TINYINT", HiveType::TinyInt),
            ("smallint", HiveType::SmallInt),
            ("Int", HiveType::Int),
            ("integer", HiveType::Int),
            ("bigint", HiveType::BigInt),
            ("float", HiveType::Float),
            ("double", HiveType::Double),
            ("string", HiveType::String),
            ("char(10)", HiveType::Char(10)),
            ("varchar(255)", HiveType::Varchar(255)),
            ("binary", HiveType::Binary),
            ("timestamp", HiveType::Timestamp),
            ("date", HiveType::Date),
            (
                "decimal",
                HiveType::Decimal {
                    precision: 10,
                    scale: 0,
                },
            ),
            (
                "decimal(38, 9)",
                HiveType::Decimal {
                    precision: 38,
                    scale: 9,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn nested_types_parse_and_print_back() {
        let text = "array<struct<id:bigint,tags:map<string,array<decimal(5,2)>>,at:timestamp>>";
        let parsed = parse(text).unwrap();
        assert_eq!(
            parsed,
            HiveType::Array(Box::new(HiveType::Struct(vec![
                ("id".to_owned(), HiveType::BigInt),
                (
                    "tags".to_owned(),
                    HiveType::Map(
                        Box::new(HiveType::String),
                        Box::new(HiveType::Array(Box::new(HiveType::Decimal {
                            precision: 5,
                            scale: 2
                        })))
                    )
                ),
                ("at".to_owned(), HiveType::Timestamp),
            ])))
        );
        assert_eq!(parsed.to_string(), text);
        let spaced = parse(" map < string , struct< a : int > > ").unwrap();
        assert_eq!(spaced.to_string(), "map<string,struct<a:int>>");
    }

    #[test]
    fn bad_types_are_refused_with_the_reason() {
        let cases = [
            ("", "expected a type name"),
            ("uniontype<int,string>", "unknown type 'uniontype'"),
            ("array<int", "expected '>', found the end"),
            ("map<string>", "expected ',', found '>'"),
            ("struct<>", "expected a struct field's name"),
            ("struct<a:int,A:string>", "struct field 'A' is given twice"),
            (
                "decimal(39,2)",
                "decimal precision 39 is not between 1 and 38",
            ),
            (
                "decimal(5,6)",
                "decimal scale 6 is greater than its precision 5",
            ),
            ("varchar(0)", "length 0 is not between 1 and 65535"),
            ("char(x)", "expected a number, found 'x'"),
            ("int int", "unexpected 'int' after the type"),
        ];
        for (text, reason) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.reason, reason, "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed_into() {
        let text = format!("{}int{}", "array<".repeat(500), ">".repeat(500));
        let err = parse(&text).unwrap_err();
        assert!(err.reason.starts_with("nested deeper than"), "{err}");
    }
}
