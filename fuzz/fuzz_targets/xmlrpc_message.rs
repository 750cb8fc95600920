#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| supervisord::fuzz_targets::xmlrpc_message(data));
