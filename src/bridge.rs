//! `supervisord bridge [-c F] [-s URL] METHOD [JSON-ARRAY]`: one JSON-RPC call for QA
//! scripts. Prints the raw `result` JSON and exits 0, or prints
//! `{"faultCode":N,"faultString":"…"}` and exits 1 on a fault (the shape QA tooling
//! parses); bad arguments and transport errors are one line on stderr and exit 2.

use std::ffi::OsString;
use std::io::Write;

use crate::ctl;
use crate::ctl::client::CallError;
use crate::rpc::{Value, jsonrpc};

/// `supervisord bridge`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "supervisord bridge",
    about = "One JSON-RPC call to supervisord: prints the result as JSON (exit 0), or the \
             fault as {\"faultCode\",\"faultString\"} (exit 1)"
)]
struct Args {
    #[command(flatten)]
    conn: ctl::ConnArgs,
    /// The method, e.g. supervisor.getState
    method: String,
    /// The parameters as a JSON array, e.g. '["web", true]'
    params: Option<String>,
}

fn fail(msg: &str) -> u8 {
    let usage = <Args as clap::CommandFactory>::command().render_usage();
    let _ = write!(std::io::stderr(), "Error: {msg}\n{usage}\n");
    2
}

/// One line for a call that did not reach a result or a fault.
pub fn describe(e: &CallError) -> String {
    match e {
        CallError::Fault(f) => f.string.clone(),
        CallError::Io { message, .. } => message.clone(),
        CallError::Resolve(m) | CallError::BadUrl(m) | CallError::BadReply(m) => m.clone(),
        CallError::Http { status, reason } => format!("HTTP {status} {reason}"),
    }
}

/// Runs the bridge with `args` (argv[0] first).
pub fn main(args: Vec<OsString>) -> u8 {
    let progname = args
        .first()
        .map_or_else(|| "supervisord".to_string(), |a| a.to_string_lossy().into_owned());
    let args: Args = match ctl::parse_clap(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (method, params) = match &args.params {
        None => (args.method, Vec::new()),
        Some(json) => match serde_json::from_str::<Value>(json) {
            Ok(Value::Array(a)) => (args.method, a),
            Ok(_) => return fail("the parameters must be a JSON array, e.g. '[\"web\", true]'"),
            Err(e) => return fail(&format!("the parameters are not valid JSON: {e}")),
        },
    };
    let opts = args.conn.options();
    let mut client = match ctl::connect(&progname, &opts) {
        Ok(c) => c,
        Err(msg) => return fail(&msg),
    };
    let mut out = String::new();
    let code = match client.call(&method, &params) {
        Ok(v) => {
            jsonrpc::write_value(&mut out, &v);
            0
        }
        Err(CallError::Fault(f)) => {
            let fault = Value::record([
                ("faultCode", Value::Int(f.code.into())),
                ("faultString", Value::str(f.string)),
            ]);
            jsonrpc::write_value(&mut out, &fault);
            1
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "Error: {} ({})", describe(&e), client.serverurl());
            return 2;
        }
    };
    out.push('\n');
    // A closed stdout is not worth an error: the exit code still says what happened.
    let _ = std::io::stdout().write_all(out.as_bytes());
    code
}
