//! DynamoDB's expression languages: condition (ConditionExpression,
//! FilterExpression, KeyConditionExpression), update (UpdateExpression)
//! and projection (ProjectionExpression), parsed into trees with
//! `#name`/`:value` placeholders resolved, then evaluated against items.
//!
//! Grammar (keywords case-insensitive, function names as written):
//!
//! ```text
//! condition := or
//! or        := and ("OR" and)*
//! and       := not ("AND" not)*
//! not       := "NOT" not | "(" condition ")" | function | comparison
//! function  := attribute_exists(path) | attribute_not_exists(path)
//!            | attribute_type(path, :t) | begins_with(op, op) | contains(op, op)
//! comparison:= op ("=" | "<>" | "<" | "<=" | ">" | ">=") op
//!            | op "BETWEEN" op "AND" op | op "IN" "(" op ("," op)* ")"
//! op        := path | :value | size(path)
//! path      := name ("." name | "[" digits "]")*      name := ident | #name
//! update    := (SET a ("," a)* | REMOVE path ("," path)*
//!             | ADD path :v ("," …)* | DELETE path :v ("," …)*)+
//! a         := path "=" term (("+" | "-") term)?
//! term      := op | if_not_exists(path, term) | list_append(term, term)
//! ```

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::errors::DynamoError;
use crate::number::Number;
use crate::value::{Item, Value, set_difference, set_union};

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Name(String),
    Index(usize),
}

pub type Path = Vec<Step>;

/// The top-level attribute a path starts at.
pub fn path_root(path: &Path) -> &str {
    match path.first() {
        Some(Step::Name(name)) => name,
        // The parser starts every path with a name.
        _ => "",
    }
}

fn show_path(path: &Path) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Name(n) if out.is_empty() => out.push_str(n),
            Step::Name(n) => {
                out.push('.');
                out.push_str(n);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(Value),
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp(Operand, Cmp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// The right side of a SET action.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Operand(Operand),
    IfNotExists(Path, Box<Term>),
    ListAppend(Box<Term>, Box<Term>),
    Plus(Box<Term>, Box<Term>),
    Minus(Box<Term>, Box<Term>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Set(Path, Term),
    Remove(Path),
    Add(Path, Operand),
    Delete(Path, Operand),
}

/// The placeholders of one request, and which of them its expressions used.
pub struct Placeholders {
    names: Option<serde_json::Map<String, Json>>,
    values: Option<Item>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl Placeholders {
    /// Reads `ExpressionAttributeNames` and `ExpressionAttributeValues`.
    pub fn from_request(
        request: &serde_json::Map<String, Json>,
    ) -> Result<Placeholders, DynamoError> {
        let names = match request.get("ExpressionAttributeNames") {
            None | Some(Json::Null) => None,
            Some(Json::Object(map)) => {
                if map.is_empty() {
                    return Err(DynamoError::validation(
                        "ExpressionAttributeNames must not be empty",
                    ));
                }
                Some(map.clone())
            }
            Some(_) => {
                return Err(DynamoError::Serialization(
                    "Unexpected value type in payload".to_owned(),
                ));
            }
        };
        let values = match request.get("ExpressionAttributeValues") {
            None | Some(Json::Null) => None,
            Some(json) => {
                let item = crate::value::item_from_json(json)?;
                if item.is_empty() {
                    return Err(DynamoError::validation(
                        "ExpressionAttributeValues must not be empty",
                    ));
                }
                Some(item)
            }
        };
        Ok(Placeholders {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_none() && self.values.is_none()
    }

    /// Refuses placeholders no expression used, as DynamoDB does.
    pub fn check_all_used(&self) -> Result<(), DynamoError> {
        if let Some(names) = &self.names {
            let unused: Vec<&str> = names
                .keys()
                .filter(|k| !self.used_names.contains(*k))
                .map(String::as_str)
                .collect();
            if !unused.is_empty() {
                return Err(DynamoError::validation(format!(
                    "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                    unused.join(", ")
                )));
            }
        }
        if let Some(values) = &self.values {
            let unused: Vec<&str> = values
                .keys()
                .filter(|k| !self.used_values.contains(*k))
                .map(String::as_str)
                .collect();
            if !unused.is_empty() {
                return Err(DynamoError::validation(format!(
                    "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                    unused.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Parses a condition-language expression (`kind` names the member in
    /// error texts, e.g. `ConditionExpression`).
    pub fn condition(&mut self, kind: &'static str, text: &str) -> Result<Cond, DynamoError> {
        let mut parser = Parser::new(self, kind, text)?;
        let cond = parser.condition()?;
        parser.end()?;
        Ok(cond)
    }

    pub fn update(&mut self, text: &str) -> Result<Vec<Action>, DynamoError> {
        let mut parser = Parser::new(self, "UpdateExpression", text)?;
        let actions = parser.update()?;
        parser.end()?;
        check_overlaps(&actions)?;
        Ok(actions)
    }

    pub fn projection(&mut self, text: &str) -> Result<Vec<Path>, DynamoError> {
        let mut parser = Parser::new(self, "ProjectionExpression", text)?;
        let mut paths = vec![parser.path()?];
        while parser.eat(&Tok::Comma) {
            paths.push(parser.path()?);
        }
        parser.end()?;
        Ok(paths)
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Name(String),
    Val(String),
    Int(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Op(&'static str),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Name(s) | Tok::Val(s) | Tok::Int(s) => s.clone(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::LBracket => "[".into(),
            Tok::RBracket => "]".into(),
            Tok::Comma => ",".into(),
            Tok::Dot => ".".into(),
            Tok::Op(s) => (*s).into(),
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Tok::Ident(s) if s.eq_ignore_ascii_case(word))
    }
}

fn lex(kind: &str, text: &str) -> Result<Vec<Tok>, DynamoError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '=' => Tok::Op("="),
            '<' | '>' if matches!(two.as_str(), "<=" | ">=" | "<>") => {
                i += 2;
                out.push(Tok::Op(match two.as_str() {
                    "<=" => "<=",
                    ">=" => ">=",
                    _ => "<>",
                }));
                continue;
            }
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '#' | ':' => {
                i += 1;
                let name = word(&mut i);
                if name.is_empty() {
                    return Err(syntax(kind, &c.to_string(), text));
                }
                out.push(if c == '#' {
                    Tok::Name(format!("#{name}"))
                } else {
                    Tok::Val(format!(":{name}"))
                });
                continue;
            }
            c if c.is_ascii_digit() => {
                let digits = word(&mut i);
                out.push(if digits.bytes().all(|b| b.is_ascii_digit()) {
                    Tok::Int(digits)
                } else {
                    Tok::Ident(digits)
                });
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                out.push(Tok::Ident(word(&mut i)));
                continue;
            }
            other => {
                return Err(DynamoError::validation(format!(
                    "Invalid {kind}: Invalid character encountered; character: {other}, near: \"{text}\""
                )));
            }
        };
        out.push(tok);
        i += 1;
    }
    Ok(out)
}

fn syntax(kind: &str, token: &str, near: &str) -> DynamoError {
    DynamoError::validation(format!(
        "Invalid {kind}: Syntax error; token: \"{token}\", near: \"{near}\""
    ))
}

// ---------------------------------------------------------------- parsing

struct Parser<'p> {
    ph: &'p mut Placeholders,
    kind: &'static str,
    toks: Vec<Tok>,
    at: usize,
}

const FUNCTIONS: &[&str] = &[
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
];

impl<'p> Parser<'p> {
    fn new(
        ph: &'p mut Placeholders,
        kind: &'static str,
        text: &str,
    ) -> Result<Parser<'p>, DynamoError> {
        let toks = lex(kind, text)?;
        if toks.is_empty() {
            return Err(DynamoError::validation(format!(
                "Invalid {kind}: The expression can not be empty;"
            )));
        }
        Ok(Parser {
            ph,
            kind,
            toks,
            at: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.at + 1)
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// The syntax error at the current token.
    fn error(&self) -> DynamoError {
        let token = self.peek().map_or("<EOF>".to_owned(), Tok::text);
        let near: Vec<String> = self.toks
            [self.at.saturating_sub(1)..(self.at + 1).min(self.toks.len())]
            .iter()
            .map(Tok::text)
            .collect();
        syntax(self.kind, &token, &near.join(" "))
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), DynamoError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn end(&self) -> Result<(), DynamoError> {
        if self.at == self.toks.len() {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn condition(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            let right = self.and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.not()?;
        while self.eat_keyword("AND") {
            let right = self.not()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Cond, DynamoError> {
        if self.eat_keyword("NOT") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        if self.eat(&Tok::LParen) {
            let inner = self.condition()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        if let (Some(Tok::Ident(name)), Some(Tok::LParen)) = (self.peek(), self.peek2())
            && name != "size"
        {
            let name = name.clone();
            return self.function(&name);
        }
        self.comparison()
    }

    fn function(&mut self, name: &str) -> Result<Cond, DynamoError> {
        self.at += 2;
        let cond = match name {
            "attribute_exists" => Cond::Exists(self.path()?),
            "attribute_not_exists" => Cond::NotExists(self.path()?),
            "attribute_type" => {
                let path = self.path()?;
                self.expect(&Tok::Comma)?;
                Cond::Type(path, self.operand()?)
            }
            "begins_with" | "contains" => {
                let a = self.operand()?;
                self.expect(&Tok::Comma)?;
                let b = self.operand()?;
                if name == "contains" {
                    Cond::Contains(a, b)
                } else {
                    Cond::BeginsWith(a, b)
                }
            }
            other if FUNCTIONS.contains(&other) => {
                return Err(DynamoError::validation(format!(
                    "Invalid {}: The function is not allowed in a condition expression; function: {other}",
                    self.kind
                )));
            }
            other => {
                return Err(DynamoError::validation(format!(
                    "Invalid {}: Invalid function name; function: {other}",
                    self.kind
                )));
            }
        };
        self.expect(&Tok::RParen)?;
        Ok(cond)
    }

    fn comparison(&mut self) -> Result<Cond, DynamoError> {
        let left = self.operand()?;
        if self.eat_keyword("BETWEEN") {
            let low = self.operand()?;
            if !self.eat_keyword("AND") {
                return Err(self.error());
            }
            let high = self.operand()?;
            return Ok(Cond::Between(left, low, high));
        }
        if self.eat_keyword("IN") {
            self.expect(&Tok::LParen)?;
            let mut list = vec![self.operand()?];
            while self.eat(&Tok::Comma) {
                list.push(self.operand()?);
            }
            self.expect(&Tok::RParen)?;
            return Ok(Cond::In(left, list));
        }
        let cmp = match self.peek() {
            Some(Tok::Op("=")) => Cmp::Eq,
            Some(Tok::Op("<>")) => Cmp::Ne,
            Some(Tok::Op("<")) => Cmp::Lt,
            Some(Tok::Op("<=")) => Cmp::Le,
            Some(Tok::Op(">")) => Cmp::Gt,
            Some(Tok::Op(">=")) => Cmp::Ge,
            _ => return Err(self.error()),
        };
        self.at += 1;
        let right = self.operand()?;
        Ok(Cond::Cmp(left, cmp, right))
    }

    fn operand(&mut self) -> Result<Operand, DynamoError> {
        match self.peek().cloned() {
            Some(Tok::Val(name)) => {
                self.at += 1;
                Ok(Operand::Value(self.value(&name)?))
            }
            Some(Tok::Ident(name)) if name == "size" && self.peek2() == Some(&Tok::LParen) => {
                self.at += 2;
                let path = self.path()?;
                self.expect(&Tok::RParen)?;
                Ok(Operand::Size(path))
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    fn value(&mut self, name: &str) -> Result<Value, DynamoError> {
        let found = self.ph.values.as_ref().and_then(|v| v.get(name)).cloned();
        let Some(value) = found else {
            return Err(DynamoError::validation(format!(
                "Invalid {}: An expression attribute value used in expression is not defined; attribute value: {name}",
                self.kind
            )));
        };
        self.ph.used_values.insert(name.to_owned());
        Ok(value)
    }

    fn name(&mut self) -> Result<String, DynamoError> {
        match self.peek().cloned() {
            Some(Tok::Ident(name)) => {
                self.at += 1;
                Ok(name)
            }
            Some(Tok::Name(name)) => {
                self.at += 1;
                let found = self.ph.names.as_ref().and_then(|n| n.get(&name));
                let Some(Json::String(real)) = found else {
                    return Err(DynamoError::validation(format!(
                        "Invalid {}: An expression attribute name used in the document path is not defined; attribute name: {name}",
                        self.kind
                    )));
                };
                let real = real.clone();
                self.ph.used_names.insert(name);
                Ok(real)
            }
            _ => Err(self.error()),
        }
    }

    fn path(&mut self) -> Result<Path, DynamoError> {
        let mut path = vec![Step::Name(self.name()?)];
        loop {
            if self.eat(&Tok::Dot) {
                path.push(Step::Name(self.name()?));
            } else if self.eat(&Tok::LBracket) {
                let Some(Tok::Int(digits)) = self.peek().cloned() else {
                    return Err(self.error());
                };
                self.at += 1;
                let index = digits.parse().map_err(|_| self.error())?;
                self.expect(&Tok::RBracket)?;
                path.push(Step::Index(index));
            } else {
                return Ok(path);
            }
        }
    }

    fn update(&mut self) -> Result<Vec<Action>, DynamoError> {
        let mut actions = Vec::new();
        let mut seen = BTreeSet::new();
        while let Some(Tok::Ident(word)) = self.peek().cloned() {
            let clause = word.to_ascii_uppercase();
            if !matches!(clause.as_str(), "SET" | "REMOVE" | "ADD" | "DELETE") {
                return Err(self.error());
            }
            if !seen.insert(clause.clone()) {
                return Err(DynamoError::validation(format!(
                    "Invalid UpdateExpression: The \"{clause}\" section can only be used once in an update expression;"
                )));
            }
            self.at += 1;
            loop {
                actions.push(self.action(&clause)?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        if actions.is_empty() {
            return Err(self.error());
        }
        Ok(actions)
    }

    fn action(&mut self, clause: &str) -> Result<Action, DynamoError> {
        let path = self.path()?;
        Ok(match clause {
            "SET" => {
                self.expect(&Tok::Op("="))?;
                let left = self.term()?;
                let term = if self.eat(&Tok::Op("+")) {
                    Term::Plus(Box::new(left), Box::new(self.term()?))
                } else if self.eat(&Tok::Op("-")) {
                    Term::Minus(Box::new(left), Box::new(self.term()?))
                } else {
                    left
                };
                Action::Set(path, term)
            }
            "REMOVE" => Action::Remove(path),
            "ADD" => Action::Add(path, self.operand()?),
            _ => Action::Delete(path, self.operand()?),
        })
    }

    fn term(&mut self) -> Result<Term, DynamoError> {
        if let (Some(Tok::Ident(name)), Some(Tok::LParen)) = (self.peek(), self.peek2()) {
            let name = name.clone();
            match name.as_str() {
                "if_not_exists" => {
                    self.at += 2;
                    let path = self.path()?;
                    self.expect(&Tok::Comma)?;
                    let other = self.term()?;
                    self.expect(&Tok::RParen)?;
                    return Ok(Term::IfNotExists(path, Box::new(other)));
                }
                "list_append" => {
                    self.at += 2;
                    let a = self.term()?;
                    self.expect(&Tok::Comma)?;
                    let b = self.term()?;
                    self.expect(&Tok::RParen)?;
                    return Ok(Term::ListAppend(Box::new(a), Box::new(b)));
                }
                "size" => {}
                other => {
                    return Err(DynamoError::validation(format!(
                        "Invalid UpdateExpression: The function is not allowed in an update expression; function: {other}"
                    )));
                }
            }
        }
        Ok(Term::Operand(self.operand()?))
    }
}

/// Two actions on the same path, or one inside the other, are refused.
fn check_overlaps(actions: &[Action]) -> Result<(), DynamoError> {
    let paths: Vec<&Path> = actions
        .iter()
        .map(|a| match a {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        })
        .collect();
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            let n = a.len().min(b.len());
            if a[..n] == b[..n] {
                return Err(DynamoError::validation(format!(
                    "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [{}], path two: [{}]",
                    show_steps(a),
                    show_steps(b)
                )));
            }
        }
    }
    Ok(())
}

fn show_steps(path: &Path) -> String {
    path.iter()
        .map(|s| match s {
            Step::Name(n) => n.clone(),
            Step::Index(i) => format!("[{i}]"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------- evaluation

/// The value at `path` in `item`.
pub fn resolve<'a>(item: &'a Item, path: &Path) -> Option<&'a Value> {
    let mut steps = path.iter();
    let mut at = match steps.next()? {
        Step::Name(name) => item.get(name)?,
        Step::Index(_) => return None,
    };
    for step in steps {
        at = match (step, at) {
            (Step::Name(name), Value::M(map)) => map.get(name)?,
            (Step::Index(i), Value::L(list)) => list.get(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

fn operand_value(item: &Item, op: &Operand) -> Option<Value> {
    match op {
        Operand::Path(path) => resolve(item, path).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::Size(path) => {
            let n = match resolve(item, path)? {
                Value::S(s) => s.chars().count(),
                Value::B(b) => b.len(),
                Value::L(l) => l.len(),
                Value::M(m) => m.len(),
                Value::Ss(s) => s.len(),
                Value::Ns(s) => s.len(),
                Value::Bs(s) => s.len(),
                _ => return None,
            };
            // A count always parses as a Number.
            Some(Value::N(
                Number::parse(&n.to_string()).expect("a count is a number"),
            ))
        }
    }
}

/// Orders two scalars of the same type (S by UTF-8 bytes, N by value, B
/// by unsigned bytes); `None` for any other pair.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::S(a), Value::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::N(a), Value::N(b)) => Some(a.cmp(b)),
        (Value::B(a), Value::B(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

pub fn apply_cmp(a: Option<&Value>, cmp: Cmp, b: Option<&Value>) -> bool {
    use std::cmp::Ordering::*;
    match cmp {
        Cmp::Eq => a.is_some() && a == b,
        Cmp::Ne => a != b || a.is_none(),
        _ => {
            let (Some(a), Some(b)) = (a, b) else {
                return false;
            };
            let Some(order) = compare(a, b) else {
                return false;
            };
            match cmp {
                Cmp::Lt => order == Less,
                Cmp::Le => order != Greater,
                Cmp::Gt => order == Greater,
                _ => order != Less,
            }
        }
    }
}

pub fn begins_with(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::S(a)), Some(Value::S(b))) => a.starts_with(b.as_str()),
        (Some(Value::B(a)), Some(Value::B(b))) => a.starts_with(b),
        _ => false,
    }
}

pub fn contains(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::S(a)), Some(Value::S(b))) => a.contains(b.as_str()),
        (Some(Value::B(a)), Some(Value::B(b))) => {
            b.is_empty() || a.windows(b.len()).any(|w| w == b.as_slice())
        }
        (Some(Value::Ss(set)), Some(Value::S(x))) => set.contains(x),
        (Some(Value::Ns(set)), Some(Value::N(x))) => set.contains(x),
        (Some(Value::Bs(set)), Some(Value::B(x))) => set.contains(x),
        (Some(Value::L(list)), Some(x)) => list.contains(x),
        _ => false,
    }
}

impl Cond {
    /// Whether `item` (empty when there is none) satisfies the condition.
    pub fn eval(&self, item: &Item) -> bool {
        let val = |op: &Operand| operand_value(item, op);
        match self {
            Cond::Cmp(a, cmp, b) => apply_cmp(val(a).as_ref(), *cmp, val(b).as_ref()),
            Cond::Between(a, low, high) => {
                let (a, low, high) = (val(a), val(low), val(high));
                apply_cmp(a.as_ref(), Cmp::Ge, low.as_ref())
                    && apply_cmp(a.as_ref(), Cmp::Le, high.as_ref())
            }
            Cond::In(a, list) => {
                let a = val(a);
                a.is_some() && list.iter().any(|b| val(b) == a)
            }
            Cond::Exists(path) => resolve(item, path).is_some(),
            Cond::NotExists(path) => resolve(item, path).is_none(),
            Cond::Type(path, t) => match (resolve(item, path), val(t)) {
                (Some(v), Some(Value::S(t))) => v.type_name() == t,
                _ => false,
            },
            Cond::BeginsWith(a, b) => begins_with(val(a).as_ref(), val(b).as_ref()),
            Cond::Contains(a, b) => contains(val(a).as_ref(), val(b).as_ref()),
            Cond::And(a, b) => a.eval(item) && b.eval(item),
            Cond::Or(a, b) => a.eval(item) || b.eval(item),
            Cond::Not(a) => !a.eval(item),
        }
    }

    /// Checks what can be checked without an item: `attribute_type`'s type
    /// names, and BETWEEN's bounds when both are values.
    pub fn check(&self, kind: &str) -> Result<(), DynamoError> {
        match self {
            Cond::Type(_, Operand::Value(Value::S(t)))
                if !matches!(
                    t.as_str(),
                    "S" | "N" | "B" | "BOOL" | "NULL" | "L" | "M" | "SS" | "NS" | "BS"
                ) =>
            {
                Err(DynamoError::validation(format!(
                    "Invalid {kind}: Invalid attribute type name found; type: {t}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                )))
            }
            Cond::Between(_, Operand::Value(low), Operand::Value(high))
                if compare(low, high) == Some(std::cmp::Ordering::Greater) =>
            {
                Err(DynamoError::validation(format!(
                    "Invalid {kind}: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {{{}}}, upper bound operand: AttributeValue: {{{}}}",
                    show_value(low),
                    show_value(high)
                )))
            }
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.check(kind)?;
                b.check(kind)
            }
            Cond::Not(a) => a.check(kind),
            _ => Ok(()),
        }
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::S(s) => format!("S:{s}"),
        Value::N(n) => format!("N:{n}"),
        other => other.type_name().to_owned(),
    }
}

fn operand_error(op: &str, value: &Value) -> DynamoError {
    DynamoError::validation(format!(
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: {op}, operand type: {}",
        value_type_word(value)
    ))
}

fn value_type_word(value: &Value) -> &'static str {
    match value {
        Value::S(_) => "STRING",
        Value::N(_) => "NUMBER",
        Value::B(_) => "BINARY",
        Value::Bool(_) => "BOOLEAN",
        Value::Null => "NULL",
        Value::L(_) => "LIST",
        Value::M(_) => "MAP",
        Value::Ss(_) => "STRING SET",
        Value::Ns(_) => "NUMBER SET",
        Value::Bs(_) => "BINARY SET",
    }
}

fn missing_operand(path: &Path) -> DynamoError {
    DynamoError::validation(format!(
        "The provided expression refers to an attribute that does not exist in the item; path: {}",
        show_path(path)
    ))
}

impl Term {
    fn eval(&self, item: &Item) -> Result<Value, DynamoError> {
        match self {
            Term::Operand(op) => operand_value(item, op).ok_or_else(|| match op {
                Operand::Path(p) | Operand::Size(p) => missing_operand(p),
                Operand::Value(_) => missing_operand(&Vec::new()),
            }),
            Term::IfNotExists(path, other) => match resolve(item, path) {
                Some(v) => Ok(v.clone()),
                None => other.eval(item),
            },
            Term::ListAppend(a, b) => match (a.eval(item)?, b.eval(item)?) {
                (Value::L(mut a), Value::L(b)) => {
                    a.extend(b);
                    Ok(Value::L(a))
                }
                (Value::L(_), other) | (other, _) => Err(operand_error("list_append", &other)),
            },
            Term::Plus(a, b) | Term::Minus(a, b) => {
                let op = if matches!(self, Term::Plus(..)) {
                    "+"
                } else {
                    "-"
                };
                match (a.eval(item)?, b.eval(item)?) {
                    (Value::N(a), Value::N(b)) => {
                        Ok(Value::N(if op == "+" { a.add(&b)? } else { a.sub(&b)? }))
                    }
                    (Value::N(_), other) | (other, _) => Err(operand_error(op, &other)),
                }
            }
        }
    }
}

/// Applies an update expression's actions to `item` (all right-hand sides
/// are evaluated against the item as it was, as DynamoDB does).
pub fn apply_update(item: &mut Item, actions: &[Action]) -> Result<(), DynamoError> {
    let before = item.clone();
    for action in actions {
        match action {
            Action::Set(path, term) => {
                let value = term.eval(&before)?;
                set_path(item, path, value)?;
            }
            Action::Remove(path) => remove_path(item, path),
            Action::Add(path, op) => {
                let Some(add) = operand_value(&before, op) else {
                    return Err(missing_operand(path));
                };
                let new = match (resolve(&before, path), &add) {
                    (None, Value::N(_) | Value::Ss(_) | Value::Ns(_) | Value::Bs(_)) => add,
                    (Some(Value::N(a)), Value::N(b)) => Value::N(a.add(b)?),
                    (Some(old), _) => set_union(old, &add).ok_or_else(|| {
                        DynamoError::validation(
                            "An operand in the update expression has an incorrect data type",
                        )
                    })?,
                    (None, other) => return Err(operand_error("ADD", other)),
                };
                set_path(item, path, new)?;
            }
            Action::Delete(path, op) => {
                let Some(del) = operand_value(&before, op) else {
                    return Err(missing_operand(path));
                };
                if !matches!(del, Value::Ss(_) | Value::Ns(_) | Value::Bs(_)) {
                    return Err(operand_error("DELETE", &del));
                }
                if let Some(old) = resolve(&before, path) {
                    match set_difference(old, &del) {
                        Some(Some(left)) => set_path(item, path, left)?,
                        Some(None) => remove_path(item, path),
                        None => {
                            return Err(DynamoError::validation(
                                "An operand in the update expression has an incorrect data type",
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn invalid_path() -> DynamoError {
    DynamoError::validation(
        "The document path provided in the update expression is invalid for update",
    )
}

/// Sets the value at `path`; the parents must exist (a list index past
/// the end appends, as DynamoDB does).
pub fn set_path(item: &mut Item, path: &Path, value: Value) -> Result<(), DynamoError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(invalid_path());
    };
    if parents.is_empty() {
        let Step::Name(name) = last else {
            return Err(invalid_path());
        };
        item.insert(name.clone(), value);
        return Ok(());
    }
    let Some(Step::Name(root)) = parents.first() else {
        return Err(invalid_path());
    };
    let mut at = item.get_mut(root).ok_or_else(invalid_path)?;
    for step in &parents[1..] {
        at = match (step, at) {
            (Step::Name(n), Value::M(m)) => m.get_mut(n).ok_or_else(invalid_path)?,
            (Step::Index(i), Value::L(l)) => l.get_mut(*i).ok_or_else(invalid_path)?,
            _ => return Err(invalid_path()),
        };
    }
    match (last, at) {
        (Step::Name(n), Value::M(m)) => {
            m.insert(n.clone(), value);
        }
        (Step::Index(i), Value::L(l)) if *i < l.len() => l[*i] = value,
        (Step::Index(_), Value::L(l)) => l.push(value),
        _ => return Err(invalid_path()),
    }
    Ok(())
}

pub fn remove_path(item: &mut Item, path: &Path) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if parents.is_empty() {
        if let Step::Name(name) = last {
            item.remove(name);
        }
        return;
    }
    let Some(Step::Name(root)) = parents.first() else {
        return;
    };
    let Some(mut at) = item.get_mut(root) else {
        return;
    };
    for step in &parents[1..] {
        let next = match (step, at) {
            (Step::Name(n), Value::M(m)) => m.get_mut(n),
            (Step::Index(i), Value::L(l)) => l.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return };
        at = next;
    }
    match (last, at) {
        (Step::Name(n), Value::M(m)) => {
            m.remove(n);
        }
        (Step::Index(i), Value::L(l)) if *i < l.len() => {
            l.remove(*i);
        }
        _ => {}
    }
}

/// The parts of `item` the paths name, nested as in the item.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for path in paths {
        let Some(value) = resolve(item, path) else {
            continue;
        };
        let Some(Step::Name(root)) = path.first() else {
            continue;
        };
        if path.len() == 1 {
            out.insert(root.clone(), value.clone());
            continue;
        }
        // Build the nesting: maps keep their names, list elements are
        // gathered in order.
        let mut nested = value.clone();
        for step in path[1..].iter().rev() {
            nested = match step {
                Step::Name(n) => Value::M(Item::from([(n.clone(), nested)])),
                Step::Index(_) => Value::L(vec![nested]),
            };
        }
        match out.remove(root) {
            Some(existing) => {
                out.insert(root.clone(), merge(existing, nested));
            }
            None => {
                out.insert(root.clone(), nested);
            }
        }
    }
    out
}

fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::M(mut a), Value::M(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::M(a)
        }
        (Value::L(mut a), Value::L(b)) => {
            a.extend(b);
            Value::L(a)
        }
        (_, b) => b,
    }
}

/// The top-level attributes an update's actions touch (UPDATED_OLD/NEW).
pub fn touched(actions: &[Action]) -> BTreeSet<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => {
                path_root(p).to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::item_from_json;
    use serde_json::json;

    fn ph(names: Json, values: Json) -> Placeholders {
        let request = json!({
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        });
        Placeholders::from_request(request.as_object().unwrap()).unwrap()
    }

    fn item(j: Json) -> Item {
        item_from_json(&j).unwrap()
    }

    fn holds(expr: &str, values: Json, it: &Item) -> bool {
        let mut p = ph(json!({"#o": "owner", "#c": "counter"}), values);
        p.condition("ConditionExpression", expr).unwrap().eval(it)
    }

    #[test]
    fn conditions_evaluate_as_dynamodb_evaluates_them() {
        let lease = item(json!({
            "leaseKey": {"S": "shard-1"}, "owner": {"S": "w1"}, "counter": {"N": "7"},
            "tags": {"SS": ["a", "b"]}, "list": {"L": [{"N": "1"}, {"S": "x"}]},
            "m": {"M": {"deep": {"S": "value"}}}
        }));
        let v = json!({":w": {"S": "w1"}, ":n": {"N": "7"}, ":lo": {"N": "5"}, ":hi": {"N": "10"},
                       ":p": {"S": "sha"}, ":a": {"S": "a"}, ":t": {"S": "SS"}, ":two": {"N": "2"}});
        let cases = [
            ("attribute_exists(leaseKey)", true),
            ("attribute_not_exists(leaseKey)", false),
            ("attribute_not_exists(nope)", true),
            ("#o = :w AND #c = :n", true),
            ("#o <> :w OR #c > :n", false),
            ("NOT (#o <> :w)", true),
            ("#c BETWEEN :lo AND :hi", true),
            ("#c IN (:lo, :n)", true),
            ("begins_with(leaseKey, :p)", true),
            ("contains(tags, :a)", true),
            ("attribute_type(tags, :t)", true),
            ("size(list) = :two", true),
            ("m.deep = :w", false),
            ("attribute_exists(list[1])", true),
            ("attribute_exists(list[2])", false),
            ("nope <> :w", true),
            ("nope < :w", false),
            ("#c < :w", false),
            ("(#o = :w OR #c = :lo) AND NOT attribute_exists(nope)", true),
            ("#o = :w and #c >= :n", true),
        ];
        for (expr, expected) in cases {
            assert_eq!(holds(expr, v.clone(), &lease), expected, "{expr}");
        }
    }

    #[test]
    fn syntax_errors_and_undefined_placeholders_are_refused_with_dynamodbs_texts() {
        let mut p = ph(json!({"#a": "a"}), json!({":v": {"S": "x"}}));
        let err = |p: &mut Placeholders, e: &str| {
            p.condition("ConditionExpression", e).unwrap_err().message()
        };
        assert_eq!(
            err(&mut p, "#a = :missing"),
            "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :missing"
        );
        assert_eq!(
            err(&mut p, "#b = :v"),
            "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #b"
        );
        assert!(
            err(&mut p, "#a = ")
                .starts_with("Invalid ConditionExpression: Syntax error; token: \"<EOF>\"")
        );
        assert!(err(&mut p, "#a = :v :v").contains("Syntax error"));
        assert!(err(&mut p, "frob(#a)").contains("Invalid function name; function: frob"));
    }

    #[test]
    fn unused_placeholders_are_named() {
        let mut p = ph(
            json!({"#a": "a", "#b": "b"}),
            json!({":v": {"S": "x"}, ":w": {"S": "y"}}),
        );
        p.condition("ConditionExpression", "#a = :v").unwrap();
        assert_eq!(
            p.check_all_used().unwrap_err().message(),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
        );
        p.condition("ConditionExpression", "#b = :v").unwrap();
        assert_eq!(
            p.check_all_used().unwrap_err().message(),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
        );
    }

    #[test]
    fn updates_set_remove_add_and_delete() {
        let mut it = item(json!({
            "id": {"S": "k"}, "n": {"N": "1"}, "gone": {"S": "x"},
            "set": {"SS": ["a", "b"]}, "l": {"L": [{"N": "1"}]}, "m": {"M": {}}
        }));
        let mut p = ph(
            json!({"#n": "n"}),
            json!({":one": {"N": "1"}, ":s": {"SS": ["c"]}, ":d": {"SS": ["a"]},
                   ":l": {"L": [{"N": "2"}]}, ":z": {"N": "0"}, ":x": {"S": "v"}}),
        );
        let actions = p
            .update(
                "SET #n = #n + :one, fresh = if_not_exists(fresh, :z), l = list_append(l, :l), m.inner = :x \
                 REMOVE gone ADD set :s, counter :one DELETE other :d",
            )
            .unwrap();
        apply_update(&mut it, &actions).unwrap();
        assert_eq!(
            it,
            item(json!({
                "id": {"S": "k"}, "n": {"N": "2"}, "fresh": {"N": "0"},
                "set": {"SS": ["a", "b", "c"]}, "l": {"L": [{"N": "1"}, {"N": "2"}]},
                "m": {"M": {"inner": {"S": "v"}}}, "counter": {"N": "1"}
            }))
        );
        let actions = p.update("DELETE set :d").unwrap();
        apply_update(&mut it, &actions).unwrap();
        assert_eq!(it["set"], item(json!({"x": {"SS": ["b", "c"]}}))["x"]);
    }

    #[test]
    fn bad_updates_are_refused() {
        let mut p = ph(json!(null), json!({":x": {"S": "v"}, ":one": {"N": "1"}}));
        let mut it = item(json!({"s": {"S": "t"}}));
        let err = |p: &mut Placeholders, it: &mut Item, e: &str| {
            let actions = p.update(e)?;
            apply_update(it, &actions)
        };
        assert!(
            err(&mut p, &mut it, "SET s = s + :one")
                .unwrap_err()
                .message()
                .contains("operator or function: +")
        );
        assert!(
            err(&mut p, &mut it, "SET a = :x, a = :x")
                .unwrap_err()
                .message()
                .contains("Two document paths overlap")
        );
        assert!(
            err(&mut p, &mut it, "SET a = :x SET b = :x")
                .unwrap_err()
                .message()
                .contains("can only be used once")
        );
        assert!(
            err(&mut p, &mut it, "SET q = nope")
                .unwrap_err()
                .message()
                .contains("does not exist in the item")
        );
        assert!(
            err(&mut p, &mut it, "SET x.y = :x")
                .unwrap_err()
                .message()
                .contains("document path provided")
        );
    }

    #[test]
    fn projections_keep_the_named_parts() {
        let it = item(
            json!({"a": {"S": "1"}, "b": {"M": {"c": {"N": "2"}, "d": {"N": "3"}}}, "e": {"S": "x"}}),
        );
        let mut p = ph(json!({"#e": "e"}), json!({":unused": {"S": "x"}}));
        let paths = p.projection("a, b.c, #e").unwrap();
        assert_eq!(
            project(&it, &paths),
            item(json!({"a": {"S": "1"}, "b": {"M": {"c": {"N": "2"}}}, "e": {"S": "x"}}))
        );
    }
}
