//! Supervisor's fault codes: the one source for JSON-RPC errors, XML-RPC `<fault>`s,
//! supervisorctl's messages and the bridge's `{"faultCode","faultString"}` output.

use std::fmt;

/// The fault kinds of supervisor 4.3.0 (`supervisor/xmlrpc.py` `Faults`), with their numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    UnknownMethod,
    IncorrectParameters,
    BadArguments,
    SignatureUnsupported,
    ShutdownState,
    BadName,
    BadSignal,
    NoFile,
    NotExecutable,
    Failed,
    AbnormalTermination,
    SpawnError,
    AlreadyStarted,
    NotRunning,
    Success,
    AlreadyAdded,
    StillRunning,
    CantReread,
}

impl FaultKind {
    /// Every kind, for tables and tests.
    pub const ALL: [FaultKind; 18] = [
        FaultKind::UnknownMethod,
        FaultKind::IncorrectParameters,
        FaultKind::BadArguments,
        FaultKind::SignatureUnsupported,
        FaultKind::ShutdownState,
        FaultKind::BadName,
        FaultKind::BadSignal,
        FaultKind::NoFile,
        FaultKind::NotExecutable,
        FaultKind::Failed,
        FaultKind::AbnormalTermination,
        FaultKind::SpawnError,
        FaultKind::AlreadyStarted,
        FaultKind::NotRunning,
        FaultKind::Success,
        FaultKind::AlreadyAdded,
        FaultKind::StillRunning,
        FaultKind::CantReread,
    ];

    /// The number clients see as `faultCode`.
    pub const fn code(self) -> i32 {
        match self {
            FaultKind::UnknownMethod => 1,
            FaultKind::IncorrectParameters => 2,
            FaultKind::BadArguments => 3,
            FaultKind::SignatureUnsupported => 4,
            FaultKind::ShutdownState => 6,
            FaultKind::BadName => 10,
            FaultKind::BadSignal => 11,
            FaultKind::NoFile => 20,
            FaultKind::NotExecutable => 21,
            FaultKind::Failed => 30,
            FaultKind::AbnormalTermination => 40,
            FaultKind::SpawnError => 50,
            FaultKind::AlreadyStarted => 60,
            FaultKind::NotRunning => 70,
            FaultKind::Success => 80,
            FaultKind::AlreadyAdded => 90,
            FaultKind::StillRunning => 91,
            FaultKind::CantReread => 92,
        }
    }

    /// The name that starts every `faultString`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::UnknownMethod => "UNKNOWN_METHOD",
            FaultKind::IncorrectParameters => "INCORRECT_PARAMETERS",
            FaultKind::BadArguments => "BAD_ARGUMENTS",
            FaultKind::SignatureUnsupported => "SIGNATURE_UNSUPPORTED",
            FaultKind::ShutdownState => "SHUTDOWN_STATE",
            FaultKind::BadName => "BAD_NAME",
            FaultKind::BadSignal => "BAD_SIGNAL",
            FaultKind::NoFile => "NO_FILE",
            FaultKind::NotExecutable => "NOT_EXECUTABLE",
            FaultKind::Failed => "FAILED",
            FaultKind::AbnormalTermination => "ABNORMAL_TERMINATION",
            FaultKind::SpawnError => "SPAWN_ERROR",
            FaultKind::AlreadyStarted => "ALREADY_STARTED",
            FaultKind::NotRunning => "NOT_RUNNING",
            FaultKind::Success => "SUCCESS",
            FaultKind::AlreadyAdded => "ALREADY_ADDED",
            FaultKind::StillRunning => "STILL_RUNNING",
            FaultKind::CantReread => "CANT_REREAD",
        }
    }

    /// The kind with this number, if any.
    pub fn from_code(code: i32) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// A fault as it travels: the code and the full string (`BAD_NAME: foo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: i32,
    pub string: String,
}

impl Fault {
    /// `NAME` alone, as Python raises `RPCError(Faults.X)`.
    pub fn bare(kind: FaultKind) -> Fault {
        Fault { code: kind.code(), string: kind.name().to_string() }
    }

    /// `NAME: detail`, as Python raises `RPCError(Faults.X, detail)`.
    pub fn with(kind: FaultKind, detail: impl fmt::Display) -> Fault {
        Fault { code: kind.code(), string: format!("{}: {detail}", kind.name()) }
    }

    /// The kind, when the code is one of supervisor's.
    pub fn kind(&self) -> Option<FaultKind> {
        FaultKind::from_code(self.code)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.string)
    }
}

impl std::error::Error for Fault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_pythons() {
        let table: Vec<(i32, &str)> = FaultKind::ALL.iter().map(|k| (k.code(), k.name())).collect();
        assert_eq!(
            table,
            vec![
                (1, "UNKNOWN_METHOD"),
                (2, "INCORRECT_PARAMETERS"),
                (3, "BAD_ARGUMENTS"),
                (4, "SIGNATURE_UNSUPPORTED"),
                (6, "SHUTDOWN_STATE"),
                (10, "BAD_NAME"),
                (11, "BAD_SIGNAL"),
                (20, "NO_FILE"),
                (21, "NOT_EXECUTABLE"),
                (30, "FAILED"),
                (40, "ABNORMAL_TERMINATION"),
                (50, "SPAWN_ERROR"),
                (60, "ALREADY_STARTED"),
                (70, "NOT_RUNNING"),
                (80, "SUCCESS"),
                (90, "ALREADY_ADDED"),
                (91, "STILL_RUNNING"),
                (92, "CANT_REREAD"),
            ]
        );
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_code(k.code()), Some(k));
        }
        assert_eq!(FaultKind::from_code(5), None);
    }

    #[test]
    fn strings_are_name_or_name_colon_detail() {
        assert_eq!(Fault::bare(FaultKind::ShutdownState).string, "SHUTDOWN_STATE");
        let f = Fault::with(FaultKind::BadName, "foo");
        assert_eq!((f.code, f.string.as_str()), (10, "BAD_NAME: foo"));
        assert_eq!(f.kind(), Some(FaultKind::BadName));
    }
}
