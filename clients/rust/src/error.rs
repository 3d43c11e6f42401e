//! The crate's error type.

use std::time::Duration;

use tonic::{Code, Status};

use crate::connect::ConnectError;
use tonic_types::{BadRequest, ErrorDetails, ErrorInfo, FieldViolation, StatusExt};

/// A `Result` whose error is the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a call of this crate can fail with.
///
/// The server's errors are [`Error::Status`]; the standard details it attaches
/// (`google.rpc.BadRequest`, `RetryInfo`, `ErrorInfo`) are decoded by
/// [`Error::field_violations`], [`Error::retry_delay`], [`Error::reason`] and
/// [`Error::details`]. A stream that breaks the API's contract (it ends before
/// every sample finished, or repeats a sample's `Finished` event) is an
/// [`Error::ProtocolViolation`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A gRPC status: the server's answer, a failed connection (tonic
    /// reports it as `UNAVAILABLE`), a passed deadline, or a request this
    /// client refused before sending it (`INVALID_ARGUMENT`, ...). Displayed
    /// as `CODE: message`, e.g. `RESOURCE_EXHAUSTED: queue full`.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(Box<Status>),
    /// A client could not be made ([`crate::Client::connect_with`]'s error,
    /// for `?` in functions that return this type).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The channel could not be built or connected.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The server's stream broke the API's contract, e.g. it ended without a
    /// `Finished` event (for each sample), or sent one twice.
    #[error("protocol violation: {0}")]
    ProtocolViolation(String),
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self::Status(Box::new(status))
    }
}

impl Error {
    /// The gRPC code: the status's; `UNAVAILABLE` for a transport error (or
    /// a connection that failed); `INVALID_ARGUMENT` for invalid connect
    /// options; `UNKNOWN` for a protocol violation.
    pub fn code(&self) -> Code {
        match self {
            Self::Status(status) => status.code(),
            Self::Transport(_) | Self::Connect(ConnectError::Transport(_)) => Code::Unavailable,
            Self::Connect(_) => Code::InvalidArgument,
            Self::ProtocolViolation(_) => Code::Unknown,
        }
    }

    /// The code's canonical name, e.g. `RESOURCE_EXHAUSTED`.
    pub fn code_name(&self) -> String {
        code_name(self.code())
    }

    /// The status's message, or the error's text for other variants.
    pub fn message(&self) -> String {
        match self {
            Self::Status(status) => status.message().to_owned(),
            Self::Connect(error) => error.to_string(),
            Self::Transport(error) => error.to_string(),
            Self::ProtocolViolation(message) => message.clone(),
        }
    }

    /// The gRPC status, for [`Error::Status`].
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Whether this is an [`Error::ProtocolViolation`].
    pub fn is_protocol_violation(&self) -> bool {
        matches!(self, Self::ProtocolViolation(_))
    }

    /// Every standard error detail the status carried (empty when none).
    pub fn details(&self) -> ErrorDetails {
        self.status()
            .map(StatusExt::get_error_details)
            .unwrap_or_default()
    }

    /// The `google.rpc.BadRequest` field violations (which request field was
    /// refused, and why); empty when there are none.
    pub fn field_violations(&self) -> Vec<FieldViolation> {
        self.status()
            .and_then(StatusExt::get_details_bad_request)
            .map(|BadRequest { field_violations }| field_violations)
            .unwrap_or_default()
    }

    /// How long the server asked to wait before retrying
    /// (`google.rpc.RetryInfo`), if it said.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.status()
            .and_then(StatusExt::get_details_retry_info)
            .and_then(|info| info.retry_delay)
    }

    /// The `google.rpc.ErrorInfo`, if the status carried one.
    pub fn error_info(&self) -> Option<ErrorInfo> {
        self.status().and_then(StatusExt::get_details_error_info)
    }

    /// The `google.rpc.ErrorInfo` reason (e.g. `READER_STALLED`), if any.
    pub fn reason(&self) -> Option<String> {
        self.error_info().map(|info| info.reason)
    }
}

/// The canonical name of a status code: `PermissionDenied` ->
/// `PERMISSION_DENIED`.
pub fn code_name(code: Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").char_indices() {
        if i > 0 && c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_details(code: Code, details: ErrorDetails) -> Error {
        Status::with_error_details(code, "refused", details).into()
    }

    #[test]
    fn decodes_field_violations() {
        let error = with_details(
            Code::InvalidArgument,
            ErrorDetails::with_bad_request_violation("sampling.temperature", "must be >= 0"),
        );
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(error.to_string(), "INVALID_ARGUMENT: refused");
        let violations = error.field_violations();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "sampling.temperature");
        assert_eq!(violations[0].description, "must be >= 0");
        assert_eq!(error.retry_delay(), None);
        assert_eq!(error.reason(), None);
    }

    #[test]
    fn decodes_retry_info_and_error_info() {
        let mut details = ErrorDetails::with_retry_info(Some(Duration::from_millis(1500)));
        details.set_error_info(
            "QUEUE_FULL",
            "tokenwire",
            [("queued".to_owned(), "12".to_owned())],
        );
        let error = with_details(Code::ResourceExhausted, details);
        assert_eq!(error.retry_delay(), Some(Duration::from_millis(1500)));
        assert_eq!(error.reason().as_deref(), Some("QUEUE_FULL"));
        let info = error.error_info().unwrap();
        assert_eq!(info.domain, "tokenwire");
        assert_eq!(info.metadata["queued"], "12");
        assert!(error.field_violations().is_empty());
        assert_eq!(error.code_name(), "RESOURCE_EXHAUSTED");
    }

    #[test]
    fn other_variants_have_codes_and_no_details() {
        let error = Error::ProtocolViolation("no finished event".into());
        assert!(error.is_protocol_violation());
        assert_eq!(error.code(), Code::Unknown);
        assert_eq!(error.message(), "no finished event");
        assert_eq!(error.to_string(), "protocol violation: no finished event");
        assert!(error.status().is_none());
        assert!(error.field_violations().is_empty());
        assert_eq!(error.retry_delay(), None);
        let plain: Error = Status::unavailable("down").into();
        assert!(plain.details().retry_info().is_none());
        assert!(!plain.is_protocol_violation());
    }

    #[test]
    fn code_names_are_screaming_snake_case() {
        assert_eq!(code_name(Code::PermissionDenied), "PERMISSION_DENIED");
        assert_eq!(code_name(Code::Ok), "OK");
    }
}
