//! The supervisord configuration language (issue 2).
