//! XML-RPC, byte-compatible with supervisor 4.3.0 (which uses Python's `xmlrpc.client.dumps`):
//! requests are parsed with quick-xml; responses are written in exactly Python's layout, one
//! element per line as Python's marshaller breaks them.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::value::Value;
use crate::fault::Fault;

/// Why a request body is not a method call; the server answers such bodies with HTTP 400,
/// as Python does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// A parsed `<methodCall>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open(String),
    Close(String),
    Text(String),
}

/// Flattens the document into open/close/text tokens, resolving entity and character
/// references and merging adjacent text, so the grammar below stays small.
fn tokenize(body: &[u8]) -> Result<Vec<Tok>, ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError("request is not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut toks = Vec::new();
    let push_text = |toks: &mut Vec<Tok>, s: &str| match toks.last_mut() {
        Some(Tok::Text(t)) => t.push_str(s),
        _ => toks.push(Tok::Text(s.to_string())),
    };
    loop {
        let ev = reader.read_event().map_err(|e| ParseError(format!("malformed XML: {e}")))?;
        match ev {
            Event::Start(s) => toks.push(Tok::Open(s.name().as_ref().to_string())),
            Event::End(e) => toks.push(Tok::Close(e.name().as_ref().to_string())),
            Event::Empty(s) => {
                let name = s.name().as_ref().to_string();
                toks.push(Tok::Open(name.clone()));
                toks.push(Tok::Close(name));
            }
            Event::Text(t) => push_text(&mut toks, &t.xml10_content()),
            Event::CData(c) => push_text(&mut toks, &c.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name: &str = r.as_ref();
                        quick_xml::escape::resolve_predefined_entity(name)
                            .ok_or_else(|| ParseError(format!("unknown entity &{name};")))?
                            .to_string()
                    }
                    Err(e) => return Err(ParseError(format!("bad character reference: {e}"))),
                };
                push_text(&mut toks, &resolved);
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    Ok(toks)
}

/// How deeply arrays and structs may nest: deeper is refused rather than recursed into,
/// so a hostile body cannot overflow the stack of the task parsing it.
pub const MAX_DEPTH: usize = 100;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// Skips whitespace-only text, which XML-RPC allows between elements.
    fn skip_ws(&mut self) {
        while let Some(Tok::Text(t)) = self.peek() {
            if !t.trim().is_empty() {
                break;
            }
            self.pos += 1;
        }
    }

    fn open(&mut self, name: &str) -> Result<(), ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(Tok::Open(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            other => Err(ParseError(format!("expected <{name}>, found {other:?}"))),
        }
    }

    fn close(&mut self, name: &str) -> Result<(), ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(Tok::Close(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            other => Err(ParseError(format!("expected </{name}>, found {other:?}"))),
        }
    }

    fn at_open(&mut self, name: &str) -> bool {
        self.skip_ws();
        matches!(self.peek(), Some(Tok::Open(n)) if n == name)
    }

    /// Text up to the closing tag (empty when the element is empty).
    fn text(&mut self) -> String {
        match self.peek() {
            Some(Tok::Text(t)) => {
                let t = t.clone();
                self.pos += 1;
                t
            }
            _ => String::new(),
        }
    }

    fn call(&mut self) -> Result<Call, ParseError> {
        self.open("methodCall")?;
        self.open("methodName")?;
        let method = self.text().trim().to_string();
        self.close("methodName")?;
        if method.is_empty() {
            return Err(ParseError("no methodName".into()));
        }
        let mut params = Vec::new();
        if self.at_open("params") {
            self.open("params")?;
            while self.at_open("param") {
                self.open("param")?;
                params.push(self.value()?);
                self.close("param")?;
            }
            self.close("params")?;
        }
        self.close("methodCall")?;
        self.skip_ws();
        if self.peek().is_some() {
            return Err(ParseError("trailing content after </methodCall>".into()));
        }
        Ok(Call { method, params })
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError(format!("values nested deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        let v = self.value_inner();
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self) -> Result<Value, ParseError> {
        self.open("value")?;
        // A <value> with no type element is a string, whitespace included.
        match self.peek() {
            Some(Tok::Close(n)) if n == "value" => {
                self.pos += 1;
                return Ok(Value::String(String::new()));
            }
            Some(Tok::Text(t)) if !matches!(self.toks.get(self.pos + 1), Some(Tok::Open(_))) => {
                let s = t.clone();
                self.pos += 1;
                self.close("value")?;
                return Ok(Value::String(s));
            }
            _ => {}
        }
        self.skip_ws();
        let ty = match self.peek() {
            Some(Tok::Open(n)) => n.clone(),
            other => {
                return Err(ParseError(format!("expected a type in <value>, found {other:?}")));
            }
        };
        self.pos += 1;
        let v = match ty.as_str() {
            "int" | "i4" | "i8" => {
                let t = self.text();
                Value::Int(t.trim().parse().map_err(|_| ParseError(format!("bad int {t:?}")))?)
            }
            "boolean" => match self.text().trim() {
                "1" => Value::Bool(true),
                "0" => Value::Bool(false),
                t => return Err(ParseError(format!("bad boolean {t:?}"))),
            },
            "string" => Value::String(self.text()),
            "double" => {
                let t = self.text();
                Value::Double(
                    t.trim().parse().map_err(|_| ParseError(format!("bad double {t:?}")))?,
                )
            }
            "dateTime.iso8601" => Value::DateTime(self.text().trim().to_string()),
            "base64" => Value::Base64(self.text().trim().to_string()),
            "nil" => Value::Nil,
            "array" => {
                self.open("data")?;
                let mut items = Vec::new();
                while self.at_open("value") {
                    items.push(self.value()?);
                }
                self.close("data")?;
                Value::Array(items)
            }
            "struct" => {
                let mut members = Vec::new();
                while self.at_open("member") {
                    self.open("member")?;
                    self.open("name")?;
                    let name = self.text();
                    self.close("name")?;
                    let v = self.value()?;
                    self.close("member")?;
                    members.push((name.into(), v));
                }
                Value::Struct(members)
            }
            other => return Err(ParseError(format!("unknown type <{other}>"))),
        };
        self.close(&ty)?;
        self.close("value")?;
        Ok(v)
    }
    fn response(&mut self) -> Result<Result<Value, Fault>, ParseError> {
        self.open("methodResponse")?;
        let out = if self.at_open("fault") {
            self.open("fault")?;
            let v = self.value()?;
            self.close("fault")?;
            let code = v.member("faultCode").and_then(Value::as_int);
            let string = v.member("faultString").and_then(Value::as_str);
            match (code.and_then(|c| i32::try_from(c).ok()), string) {
                (Some(code), Some(string)) => Err(Fault { code, string: string.to_string() }),
                _ => return Err(ParseError("fault without faultCode/faultString".into())),
            }
        } else {
            self.open("params")?;
            self.open("param")?;
            let v = self.value()?;
            self.close("param")?;
            self.close("params")?;
            Ok(v)
        };
        self.close("methodResponse")?;
        self.skip_ws();
        if self.peek().is_some() {
            return Err(ParseError("trailing content after </methodResponse>".into()));
        }
        Ok(out)
    }
}

/// Parses a `<methodCall>` body.
pub fn parse_call(body: &[u8]) -> Result<Call, ParseError> {
    let toks = tokenize(body)?;
    Parser { toks, pos: 0, depth: 0 }.call()
}

/// Parses a `<methodResponse>` body (the client side): the value, or the fault it carries.
pub fn parse_response(body: &[u8]) -> Result<Result<Value, Fault>, ParseError> {
    let toks = tokenize(body)?;
    Parser { toks, pos: 0, depth: 0 }.response()
}

/// Python's `xmlrpc.client.escape`: only `&`, `<` and `>`.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// Python's `repr(float)` for the finite values a server sends.
fn python_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        let s = format!("{f:?}");
        // Rust writes 1e16 where Python writes 1e+16.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Int(i) => {
            out.push_str("<value><int>");
            out.push_str(&i.to_string());
            out.push_str("</int></value>\n");
        }
        Value::Bool(b) => out.push_str(if *b {
            "<value><boolean>1</boolean></value>\n"
        } else {
            "<value><boolean>0</boolean></value>\n"
        }),
        Value::String(s) => {
            out.push_str("<value><string>");
            escape_into(out, s);
            out.push_str("</string></value>\n");
        }
        Value::Double(f) => {
            out.push_str("<value><double>");
            out.push_str(&python_float(*f));
            out.push_str("</double></value>\n");
        }
        Value::Array(items) => {
            out.push_str("<value><array><data>\n");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array></value>\n");
        }
        Value::Struct(members) => {
            out.push_str("<value><struct>\n");
            for (k, v) in members {
                out.push_str("<member>\n<name>");
                escape_into(out, k);
                out.push_str("</name>\n");
                write_value(out, v);
                out.push_str("</member>\n");
            }
            out.push_str("</struct></value>\n");
        }
        Value::Base64(s) => {
            out.push_str("<value><base64>\n");
            out.push_str(s);
            out.push_str("\n</base64></value>\n");
        }
        Value::DateTime(s) => {
            out.push_str("<value><dateTime.iso8601>");
            escape_into(out, s);
            out.push_str("</dateTime.iso8601></value>\n");
        }
        Value::Nil => out.push_str("<value><nil/></value>"),
    }
}

/// A successful `<methodResponse>`.
pub fn response(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n");
    write_value(&mut out, v);
    out.push_str("</param>\n</params>\n</methodResponse>\n");
    out
}

/// A `<fault>` response (sent with HTTP 200, as Python does).
pub fn fault(f: &Fault) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n");
    write_value(
        &mut out,
        &Value::record([
            ("faultCode", Value::Int(f.code.into())),
            ("faultString", Value::str(f.string.clone())),
        ]),
    );
    out.push_str("</fault>\n</methodResponse>\n");
    out
}

/// A `<methodCall>`, for clients that speak XML-RPC (tests, tools).
pub fn call(method: &str, params: &[Value]) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodCall>\n<methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName>\n<params>\n");
    for p in params {
        out.push_str("<param>\n");
        write_value(&mut out, p);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;

    #[test]
    fn fault_is_byte_identical_to_python() {
        // Captured from supervisord 4.3.0: getProcessInfo('nope').
        let expected = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n\
<name>faultCode</name>\n<value><int>10</int></value>\n</member>\n<member>\n<name>faultString</name>\n\
<value><string>BAD_NAME: nope</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
        assert_eq!(fault(&Fault::with(FaultKind::BadName, "nope")), expected);
    }

    #[test]
    fn struct_response_is_byte_identical_to_python() {
        // Captured from supervisord 4.3.0: getState().
        let expected = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><struct>\n\
<member>\n<name>statecode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>statename</name>\n\
<value><string>RUNNING</string></value>\n</member>\n</struct></value>\n</param>\n</params>\n</methodResponse>\n";
        let v = Value::record([("statecode", Value::Int(1)), ("statename", Value::str("RUNNING"))]);
        assert_eq!(response(&v), expected);
    }

    #[test]
    fn arrays_bools_and_escaping() {
        let v =
            Value::Array(vec![Value::Bool(true), Value::str("a<b>&c\"'"), Value::Array(vec![])]);
        assert_eq!(
            response(&v),
            "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n\
<value><boolean>1</boolean></value>\n<value><string>a&lt;b&gt;&amp;c\"'</string></value>\n\
<value><array><data>\n</data></array></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n"
        );
    }

    #[test]
    fn floats_print_like_python_repr() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(-2.5), "-2.5");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(1.5e-7), "1.5e-7");
    }

    #[test]
    fn parses_python_clients_calls() {
        let body = b"<?xml version='1.0'?>\n<methodCall>\n<methodName>supervisor.startProcess</methodName>\n\
<params>\n<param>\n<value><string>web</string></value>\n</param>\n<param>\n<value><boolean>1</boolean></value>\n\
</param>\n</params>\n</methodCall>\n";
        let c = parse_call(body).expect("parse");
        assert_eq!(c.method, "supervisor.startProcess");
        assert_eq!(c.params, vec![Value::str("web"), Value::Bool(true)]);
    }

    #[test]
    fn parses_every_type_and_untyped_values() {
        let body = "<methodCall><methodName>x.y</methodName><params>\
<param><value>plain &amp; simple</value></param>\
<param><value></value></param>\
<param><value><i4> -7 </i4></value></param>\
<param><value><int>42</int></value></param>\
<param><value><double>2.5</double></value></param>\
<param><value><string>&#233;t&#xE9; &lt;x&gt;</string></value></param>\
<param><value><string/></value></param>\
<param><value><nil/></value></param>\
<param><value><array><data><value><int>1</int></value><value>two</value></data></array></value></param>\
<param><value><struct><member><name>methodName</name><value><string>a.b</string></value></member></struct></value></param>\
<param><value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value></param>\
</params></methodCall>";
        let c = parse_call(body.as_bytes()).expect("parse");
        assert_eq!(
            c.params,
            vec![
                Value::str("plain & simple"),
                Value::str(""),
                Value::Int(-7),
                Value::Int(42),
                Value::Double(2.5),
                Value::str("été <x>"),
                Value::str(""),
                Value::Nil,
                Value::Array(vec![Value::Int(1), Value::str("two")]),
                Value::record([("methodName", Value::str("a.b"))]),
                Value::DateTime("20260101T00:00:00".into()),
            ]
        );
    }

    #[test]
    fn params_may_be_left_out() {
        let c =
            parse_call(b"<methodCall><methodName>supervisor.getState</methodName></methodCall>")
                .expect("parse");
        assert!(c.params.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bad: [&[u8]; 10] = [
            b"",
            b"\xff\xfe\x00",
            b"<methodCall>",
            b"<methodCall><methodName></methodName></methodCall>",
            b"<methodCall><methodName>a</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
            b"<methodCall><methodName>a</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>",
            b"<methodCall><methodName>a</methodName><params><param><value><blob>1</blob></value></param></params></methodCall>",
            b"<methodCall><methodName>a</methodName></methodCall><extra/>",
            b"<methodCall><methodName>a &bogus;</methodName></methodCall>",
            b"<x><methodName>a</methodName></x>",
        ];
        for b in bad {
            assert!(parse_call(b).is_err(), "{:?} parsed", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let deep = 100_000;
        let body = format!(
            "<methodCall><methodName>a.b</methodName><params><param>{}{}</param></params></methodCall>",
            "<value><array><data>".repeat(deep),
            "</data></array></value>".repeat(deep)
        );
        assert!(parse_call(body.as_bytes()).is_err());
        let ok = format!(
            "<methodCall><methodName>a.b</methodName><params><param>{}<value>x</value>{}</param></params></methodCall>",
            "<value><array><data>".repeat(MAX_DEPTH - 1),
            "</data></array></value>".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_call(ok.as_bytes()).is_ok());
    }

    #[test]
    fn responses_and_faults_parse_back() {
        let v = Value::Array(vec![Value::Int(3), Value::record([("a", Value::str("x<y"))])]);
        assert_eq!(parse_response(response(&v).as_bytes()), Ok(Ok(v)));
        let f = Fault::with(FaultKind::BadName, "nope");
        assert_eq!(parse_response(fault(&f).as_bytes()), Ok(Err(f)));
        assert!(parse_response(b"<methodResponse><params></params></methodResponse>").is_err());
        assert!(
            parse_response(
                b"<methodResponse><fault><value><int>1</int></value></fault></methodResponse>"
            )
            .is_err()
        );
    }

    #[test]
    fn call_and_parse_round_trip() {
        let params = vec![
            Value::str("g:*"),
            Value::Int(-1),
            Value::Array(vec![Value::record([("a", Value::Bool(false))])]),
            Value::str("<&>"),
        ];
        let c = parse_call(call("system.multicall", &params).as_bytes()).expect("parse");
        assert_eq!((c.method.as_str(), c.params), ("system.multicall", params));
    }
}
