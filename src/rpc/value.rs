//! The values that cross the RPC boundary: XML-RPC's data model, which JSON-RPC maps onto.
//! Structs keep their member order, because Python's dicts do and XML-RPC clients see it.

use std::borrow::Cow;

/// A struct member's name: static for the structs the server builds ([`Value::record`]),
/// owned for parsed ones. A status reply has 14 members per process; allocating each name
/// was most of the cost of building it.
pub type Key = Cow<'static, str>;

/// One RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    String(String),
    Double(f64),
    Array(Vec<Value>),
    /// Members in the order they are sent.
    Struct(Vec<(Key, Value)>),
    /// Base64 text as sent; supervisor's API takes and returns none.
    Base64(String),
    /// ISO 8601 text as sent (`dateTime.iso8601`).
    DateTime(String),
    Nil,
}

impl Value {
    /// Builds a struct from `(name, value)` pairs, keeping their order.
    pub fn record<const N: usize>(members: [(&'static str, Value); N]) -> Value {
        Value::Struct(members.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)).collect())
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// The member called `name`, when this is a struct that has one.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(m) => m.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Python's `bool(x)`, for flags Python only tests with `if`: any value is accepted.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Int(i) => *i != 0,
            Value::Bool(b) => *b,
            Value::Double(f) => *f != 0.0,
            Value::String(s) | Value::Base64(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Struct(m) => !m.is_empty(),
            Value::DateTime(_) => true,
            Value::Nil => false,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}
