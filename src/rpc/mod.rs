//! The control plane's wire formats: the RPC value model, XML-RPC
//! (byte-compatible with supervisor 4.3.0) and JSON-RPC 2.0. This is the only module that
//! knows JSON or XML. Also the HTTP server (`server`), the method table (`methods`) and the
//! `/logtail` streams (`logtail`).

pub mod docs;
pub mod jsonrpc;
pub mod logtail;
pub mod methods;
pub mod server;
pub mod value;
pub mod xmlrpc;

pub use value::Value;
