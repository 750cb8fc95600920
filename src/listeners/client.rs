//! The listeners' RPC client: one call per connection to `SUPERVISOR_SERVER_URL`
//! (`unix:///path` or `http://host:port`, with `SUPERVISOR_USERNAME`/`SUPERVISOR_PASSWORD`
//! as childutils uses them), JSON-RPC at `/weka/jrpc` for our daemon and XML-RPC at `/RPC2`
//! for Python's. The HTTP is supervisorctl's client ([`crate::ctl::client`]).

use std::io;
use std::time::Duration;

use crate::ctl::client::{self as http, CallError as HttpError, parse_url};
use crate::rpc::value::Value;

/// How long one call may take; a daemon that stopped answering must not hang a listener.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The server URL and credentials a child of supervisord gets in its environment.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    /// Basic auth, sent when a user name is set (the password may be empty).
    auth: Option<(String, String)>,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No connection, or no HTTP answer.
    Transport(io::Error),
    /// The server answered, but not with a reply of the protocol asked for (e.g. Python's
    /// supervisord has no `/weka/jrpc`).
    Protocol(String),
    /// A supervisor fault.
    Fault { code: i64, message: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "cannot reach supervisord: {e}"),
            CallError::Protocol(m) => write!(f, "{m}"),
            CallError::Fault { code, message } => write!(f, "fault {code}: {message}"),
        }
    }
}

impl From<HttpError> for CallError {
    fn from(e: HttpError) -> CallError {
        match e {
            HttpError::Io { errno: Some(n), .. } => {
                CallError::Transport(io::Error::from_raw_os_error(n))
            }
            HttpError::Io { message, .. } | HttpError::Resolve(message) => {
                CallError::Transport(io::Error::other(message))
            }
            HttpError::BadUrl(m) | HttpError::BadReply(m) => CallError::Protocol(m),
            HttpError::Http { status, reason } => {
                CallError::Protocol(format!("HTTP {status} {reason}"))
            }
            HttpError::Fault(f) => CallError::Fault { code: f.code.into(), message: f.string },
        }
    }
}

impl Client {
    /// The client for `SUPERVISOR_SERVER_URL`, or `None` when it is missing or not a URL
    /// supervisor serves.
    pub fn from_env() -> Option<Client> {
        let url = std::env::var("SUPERVISOR_SERVER_URL").ok()?;
        match parse_url(&url).ok()? {
            http::Endpoint::Unix(path) if path.is_empty() => return None,
            _ => {}
        }
        let user = std::env::var("SUPERVISOR_USERNAME").unwrap_or_default();
        let pass = std::env::var("SUPERVISOR_PASSWORD").unwrap_or_default();
        Some(Client { url, auth: (!user.is_empty()).then_some((user, pass)) })
    }

    /// A client on a connection of its own, bounded by [`CALL_TIMEOUT`].
    fn http(&self) -> http::Client {
        let (user, pass) = match &self.auth {
            Some((u, p)) => (Some(u.as_str()), Some(p.as_str())),
            None => (None, None),
        };
        let mut c = http::Client::new(&self.url, user, pass);
        c.set_timeout(Some(CALL_TIMEOUT));
        c
    }

    /// A JSON-RPC call at `/weka/jrpc`.
    pub fn json(&self, method: &str, params: &[Value]) -> Result<Value, CallError> {
        Ok(self.http().call(method, params)?)
    }

    /// An XML-RPC call at `/RPC2`; returns the response document.
    pub fn xml(&self, method: &str, params: &[Value]) -> Result<String, CallError> {
        let body = crate::rpc::xmlrpc::call(method, params);
        let (status, resp) = self.http().post("/RPC2", "text/xml", body.as_bytes())?;
        if status != 200 {
            return Err(CallError::Protocol(format!("HTTP {status} from /RPC2")));
        }
        let doc = String::from_utf8_lossy(&resp).into_owned();
        if doc.contains("<fault>") {
            let code = xml_member_int(&doc, "faultCode").unwrap_or(0);
            let message = xml_member_string(&doc, "faultString").unwrap_or_default();
            return Err(CallError::Fault { code, message });
        }
        Ok(doc)
    }
}

/// The text between `<name>{name}</name>` and the end of its value, in an XML-RPC struct.
fn xml_member_value<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("<name>{name}</name>");
    let at = doc.find(&key)? + key.len();
    let rest = doc.get(at..)?;
    let end = rest.find("</value>")?;
    rest.get(..end)
}

/// An `<int>`/`<i4>` member of an XML-RPC struct.
pub fn xml_member_int(doc: &str, name: &str) -> Option<i64> {
    let v = xml_member_value(doc, name)?;
    let start = ["<int>", "<i4>", "<i8>"].iter().find_map(|t| v.find(t).map(|at| at + t.len()))?;
    let rest = v.get(start..)?;
    rest.get(..rest.find("</")?)?.trim().parse().ok()
}

/// A `<string>` member of an XML-RPC struct (entities left as sent).
pub fn xml_member_string(doc: &str, name: &str) -> Option<String> {
    let v = xml_member_value(doc, name)?;
    let start = v.find("<string>")? + "<string>".len();
    let end = v.find("</string>")?;
    v.get(start..end).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_members() {
        let doc = "<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>10</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>BAD_NAME: x</string></value>\n</member>\n<member><name>exitstatus</name><value><i4>-64</i4></value></member></struct></value>";
        assert_eq!(xml_member_int(doc, "faultCode"), Some(10));
        assert_eq!(xml_member_string(doc, "faultString").as_deref(), Some("BAD_NAME: x"));
        assert_eq!(xml_member_int(doc, "exitstatus"), Some(-64));
        assert_eq!(xml_member_int(doc, "nope"), None);
    }
}
