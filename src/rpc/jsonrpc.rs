//! JSON-RPC 2.0 at `POST /weka/jrpc`, the dialect of the wekanode D client: positional
//! params, supervisor's faultCode/faultString as the error's code/message, no HTML escaping,
//! no trailing newline.

use std::borrow::Cow;

use serde_json::Value as Json;

use super::value::Value;
use crate::fault::Fault;

/// JSON-RPC's own error codes for requests that never reach a method.
pub const PARSE_ERROR: i32 = -32700;
pub const INVALID_REQUEST: i32 = -32600;

/// A request that reached the method table.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub params: Vec<Value>,
    /// Echoed back verbatim; `null` when absent.
    pub id: Json,
}

/// A request that did not: the code, the message and whatever id could be recovered.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub code: i32,
    pub message: String,
    pub id: Json,
}

/// Parses one request body.
pub fn parse_request(body: &[u8]) -> Result<Request, Rejected> {
    let json: Json = serde_json::from_slice(body).map_err(|e| Rejected {
        code: PARSE_ERROR,
        message: format!("Parse error: {e}"),
        id: Json::Null,
    })?;
    let Json::Object(mut obj) = json else {
        return Err(invalid("request must be an object", Json::Null));
    };
    let id = obj.remove("id").unwrap_or(Json::Null);
    if !matches!(id, Json::Null | Json::Number(_) | Json::String(_)) {
        return Err(invalid("id must be a string, a number or null", Json::Null));
    }
    match obj.get("jsonrpc") {
        Some(Json::String(v)) if v == "2.0" => {}
        _ => return Err(invalid("jsonrpc must be \"2.0\"", id)),
    }
    let method = match obj.remove("method") {
        Some(Json::String(m)) => m,
        _ => return Err(invalid("method must be a string", id)),
    };
    let params = match obj.remove("params") {
        None | Some(Json::Null) => Vec::new(),
        Some(params @ Json::Array(_)) => match serde_json::from_value(params) {
            Ok(params) => params,
            Err(e) => return Err(invalid(&format!("params: {e}"), id)),
        },
        Some(_) => return Err(invalid("params must be an array (positional)", id)),
    };
    Ok(Request { method, params, id })
}

fn invalid(why: &str, id: Json) -> Rejected {
    Rejected { code: INVALID_REQUEST, message: format!("Invalid Request: {why}"), id }
}

pub(super) fn push_json_str(out: &mut String, s: &str) {
    // JSON's escaping (as serde_json does it): quotes, backslashes and control characters
    // only, so `<`, `>` and `&` go out as they are. Written in place, because a status
    // reply carries thousands of short strings and a temporary per string is waste.
    out.reserve(s.len() + 2);
    out.push('"');
    // Almost every string needs no escape: check with a branch-free pass first.
    let plain = !s.bytes().fold(false, |esc, b| esc | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// RPC value → JSON text, keeping struct member order.
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        // A status reply has five ints per process; core::fmt is several times slower.
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) | Value::Base64(s) | Value::DateTime(s) => push_json_str(out, s),
        Value::Double(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => out.push_str(&n.to_string()),
            None => out.push_str("null"),
        },
        Value::Nil => out.push_str("null"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Struct(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    // Our own member names (`Value::record`): identifiers, nothing to escape.
                    Cow::Borrowed(k) => {
                        debug_assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                        out.push('"');
                        out.push_str(k);
                        out.push('"');
                    }
                    Cow::Owned(k) => push_json_str(out, k),
                }
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// Roughly how long `v`'s JSON is, so a big reply is written into one allocation. Arrays
/// are estimated from their first item (a status reply is 100s of alike structs).
fn size_hint(v: &Value) -> usize {
    match v {
        Value::String(s) | Value::Base64(s) | Value::DateTime(s) => s.len() + 2,
        Value::Array(items) => 2 + items.first().map_or(0, |i| (size_hint(i) + 9) * items.len()),
        Value::Struct(members) => {
            2 + members.iter().map(|(k, v)| k.len() + 4 + size_hint(v)).sum::<usize>()
        }
        _ => 12,
    }
}

/// `{"jsonrpc":"2.0","result":…,"id":…}`.
pub fn result(id: &Json, v: &Value) -> String {
    let mut out = String::with_capacity(64 + size_hint(v));
    out.push_str("{\"jsonrpc\":\"2.0\",\"result\":");
    write_value(&mut out, v);
    out.push_str(",\"id\":");
    out.push_str(&id.to_string());
    out.push('}');
    out
}

/// [`result`] for a result already written as JSON text.
pub fn result_text(id: &Json, text: &str) -> String {
    let mut out = String::with_capacity(64 + text.len());
    out.push_str("{\"jsonrpc\":\"2.0\",\"result\":");
    out.push_str(text);
    out.push_str(",\"id\":");
    out.push_str(&id.to_string());
    out.push('}');
    out
}

/// `{"jsonrpc":"2.0","error":{"code":N,"message":"…"},"id":…}`.
pub fn error(id: &Json, code: i32, message: &str) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":");
    out.push_str(&code.to_string());
    out.push_str(",\"message\":");
    push_json_str(&mut out, message);
    out.push_str("},\"id\":");
    out.push_str(&id.to_string());
    out.push('}');
    out
}

/// A supervisor fault as a JSON-RPC error.
pub fn fault(id: &Json, f: &Fault) -> String {
    error(id, f.code, &f.string)
}

/// A request body, for our own clients.
pub fn request(method: &str, params: &[Value], id: u64) -> String {
    let mut out = String::with_capacity(96);
    out.push_str("{\"jsonrpc\":\"2.0\",\"method\":");
    push_json_str(&mut out, method);
    out.push_str(",\"params\":");
    write_value(&mut out, &Value::Array(params.to_vec()));
    out.push_str(",\"id\":");
    out.push_str(&id.to_string());
    out.push('}');
    out
}

/// A response as our clients see it: a result read as `T`, or a fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T = Value> {
    Result(T),
    Error { code: i32, message: String },
}

/// A response body as it is on the wire; `result` is `Some(Nil)` for `null`, `None` when
/// absent.
#[derive(serde::Deserialize)]
#[serde(bound = "T: serde::de::DeserializeOwned")]
struct WireReply<T> {
    #[serde(default = "Option::default", deserialize_with = "present")]
    result: Option<T>,
    #[serde(default)]
    error: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Parses a response body (our clients' side), straight into `T` ([`Value`] for the
/// generic case): a status reply for 1,000 processes is 15,000 members, and a
/// `serde_json::Value` tree in between would double the allocations of every
/// supervisorctl run.
pub fn parse_reply<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Reply<T>, String> {
    // A derived struct would also accept `[result, error]`.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("JSON-RPC reply is not an object".into());
    }
    // One UTF-8 check for the whole body: `from_slice` would check each string on its
    // own, and a status reply has thousands.
    let text = std::str::from_utf8(body).map_err(|e| format!("bad JSON-RPC reply: {e}"))?;
    let wire: WireReply<T> =
        serde_json::from_str(text).map_err(|e| format!("bad JSON-RPC reply: {e}"))?;
    if let Some(err) = wire.error.filter(|e| *e != Value::Nil) {
        let code = err.member("code").and_then(Value::as_int).unwrap_or(0);
        let message = err.member("message").and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(Reply::Error { code: i32::try_from(code).unwrap_or(0), message });
    }
    wire.result
        .map(Reply::Result)
        .ok_or_else(|| "JSON-RPC reply has neither result nor error".into())
}

/// JSON → [`Value`] (also from a `serde_json::Value`, with `serde_json::from_value`):
/// integral numbers that fit an i64 are ints, other numbers doubles, objects structs in the
/// order they were sent.
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Double(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Double(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            members.push((k.into(), v));
        }
        Ok(Value::Struct(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;

    #[test]
    fn parses_the_d_clients_requests() {
        let r = parse_request(
            br#"{"jsonrpc":"2.0","method":"supervisor.startProcess","params":["web",true],"id":7}"#,
        )
        .expect("parse");
        assert_eq!(r.method, "supervisor.startProcess");
        assert_eq!(r.params, vec![Value::str("web"), Value::Bool(true)]);
        assert_eq!(r.id, Json::from(7));
        let r = parse_request(br#"{"jsonrpc":"2.0","method":"supervisor.getState","id":"a"}"#)
            .expect("parse");
        assert!(r.params.is_empty());
        assert_eq!(r.id, Json::from("a"));
    }

    #[test]
    fn bad_json_and_bad_envelopes() {
        for (body, code) in [
            (&b"{"[..], PARSE_ERROR),
            (b"\xff", PARSE_ERROR),
            (b"", PARSE_ERROR),
            (b"[]", INVALID_REQUEST),
            (b"{\"method\":\"a.b\",\"id\":1}", INVALID_REQUEST),
            (b"{\"jsonrpc\":\"1.0\",\"method\":\"a.b\",\"id\":1}", INVALID_REQUEST),
            (b"{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", INVALID_REQUEST),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"a.b\",\"params\":{\"x\":1},\"id\":1}",
                INVALID_REQUEST,
            ),
            (b"{\"jsonrpc\":\"2.0\",\"method\":\"a.b\",\"id\":[1]}", INVALID_REQUEST),
        ] {
            let e = parse_request(body).expect_err("must be rejected");
            assert_eq!(e.code, code, "{}", String::from_utf8_lossy(body));
        }
        let e = parse_request(br#"{"jsonrpc":"2.0","method":5,"id":9}"#).expect_err("rejected");
        assert_eq!(e.id, Json::from(9));
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\ncr\rtab\t",
            "\u{1}\u{8}\u{c}\u{1f}",
            "été <&> \u{7f}",
            "",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, Json::String(s.to_string()).to_string(), "{s:?}");
        }
    }

    #[test]
    fn results_keep_order_and_do_not_html_escape() {
        let v = Value::record([
            ("name", Value::str("<a&b>")),
            ("group", Value::str("g")),
            ("pid", Value::Int(0)),
        ]);
        assert_eq!(
            result(&Json::from(1), &v),
            r#"{"jsonrpc":"2.0","result":{"name":"<a&b>","group":"g","pid":0},"id":1}"#
        );
    }

    #[test]
    fn faults_are_code_and_message() {
        let s = fault(&Json::from(3), &Fault::with(FaultKind::BadName, "foo"));
        assert_eq!(s, r#"{"jsonrpc":"2.0","error":{"code":10,"message":"BAD_NAME: foo"},"id":3}"#);
        assert_eq!(
            parse_reply::<Value>(s.as_bytes()),
            Ok(Reply::Error { code: 10, message: "BAD_NAME: foo".into() })
        );
    }

    #[test]
    fn request_round_trips() {
        let body = request("weka.startProcess", &[Value::str("x"), Value::Bool(false)], 42);
        let r = parse_request(body.as_bytes()).expect("parse");
        assert_eq!(
            (r.method.as_str(), r.params.len(), r.id),
            ("weka.startProcess", 2, Json::from(42))
        );
        let reply = result(&Json::from(42), &Value::Array(vec![Value::Int(1), Value::Nil]));
        assert_eq!(
            parse_reply(reply.as_bytes()),
            Ok(Reply::Result(Value::Array(vec![Value::Int(1), Value::Nil])))
        );
    }

    #[test]
    fn replies_parse_straight_into_values() {
        let r = parse_reply(br#"{"jsonrpc":"2.0","result":{"z":1,"a":[true,null,2.5,"x\u00e9"],"big":18446744073709551615},"id":1}"#);
        let Ok(Reply::Result(Value::Struct(m))) = r else { panic!("{r:?}") };
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["z", "a", "big"], "members keep the order they were sent in");
        assert_eq!(
            m[1].1,
            Value::Array(vec![
                Value::Bool(true),
                Value::Nil,
                Value::Double(2.5),
                Value::str("x\u{e9}")
            ])
        );
        assert_eq!(m[2].1, Value::Double(18446744073709551615.0));
        assert_eq!(parse_reply(br#"{"result":null,"id":1}"#), Ok(Reply::Result(Value::Nil)));
        assert_eq!(
            parse_reply::<Value>(br#"{"result":null,"error":{"code":10,"message":"BAD_NAME: x"}}"#),
            Ok(Reply::Error { code: 10, message: "BAD_NAME: x".into() })
        );
        assert!(parse_reply::<Value>(br#"{"id":1}"#).is_err(), "neither result nor error");
        assert!(parse_reply::<Value>(b"[1]").is_err());
        assert!(parse_reply::<Value>(br#"{"result":1"#).is_err());
    }
}
