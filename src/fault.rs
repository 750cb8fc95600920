//! Supervisor's fault codes: the one source for JSON-RPC errors, XML-RPC `<fault>`s,
//! supervisorctl's messages and the bridge's `{"faultCode","faultString"}` output.

use std::fmt;

python_constants! {
    /// The fault kinds of supervisor 4.3.0 (`supervisor/xmlrpc.py` `Faults`): the number
    /// clients see as `faultCode`, and the name that starts every `faultString`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FaultKind {
        UnknownMethod = 1 => "UNKNOWN_METHOD",
        IncorrectParameters = 2 => "INCORRECT_PARAMETERS",
        BadArguments = 3 => "BAD_ARGUMENTS",
        SignatureUnsupported = 4 => "SIGNATURE_UNSUPPORTED",
        ShutdownState = 6 => "SHUTDOWN_STATE",
        BadName = 10 => "BAD_NAME",
        BadSignal = 11 => "BAD_SIGNAL",
        NoFile = 20 => "NO_FILE",
        NotExecutable = 21 => "NOT_EXECUTABLE",
        Failed = 30 => "FAILED",
        AbnormalTermination = 40 => "ABNORMAL_TERMINATION",
        SpawnError = 50 => "SPAWN_ERROR",
        AlreadyStarted = 60 => "ALREADY_STARTED",
        NotRunning = 70 => "NOT_RUNNING",
        Success = 80 => "SUCCESS",
        AlreadyAdded = 90 => "ALREADY_ADDED",
        StillRunning = 91 => "STILL_RUNNING",
        CantReread = 92 => "CANT_REREAD",
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
