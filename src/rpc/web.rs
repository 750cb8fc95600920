//! The web page at `/`: plain HTML, CSS and JavaScript compiled into the binary (no build
//! step, nothing fetched from elsewhere). The page talks JSON-RPC to `/weka/jrpc` with the
//! browser's credentials, so it is behind the same authentication as everything else.

/// `index.html`, self-contained.
pub const PAGE: &str = include_str!("web/index.html");
