//! The control plane's wire formats: the RPC value model, XML-RPC
//! (byte-compatible with supervisor 4.3.0) and JSON-RPC 2.0. This is the only module that
//! knows JSON or XML. Also the HTTP server (`server`), the method table (`methods`) and the
//! `/logtail` streams (`logtail`), and what the daemon shows about itself: `/metrics`
//! (`metrics`), `/healthz`, `/readyz` and status records (`observe`), the web page (`web`).

pub mod docs;
pub mod jsonrpc;
pub mod logtail;
pub mod methods;
pub mod metrics;
pub mod observe;
pub mod server;
pub mod value;
pub mod web;
pub mod xmlrpc;

pub use value::Value;
