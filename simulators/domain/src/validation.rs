//! Field validation: every bad field of a request at once, named, with the
//! requirement id where a rule has one. (Simulators answer it as an RFC 9457
//! problem: `ecosim_core::problem`.)

/// One field-level complaint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// JSON path of the field (`contatti.cellulare`), or a header / query name.
    pub field: String,
    /// What is wrong with it and what is expected.
    pub message: String,
}

/// A request that is not valid: every bad field, and the requirement broken, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The complaints, one per bad field.
    pub errors: Vec<FieldError>,
    /// The requirement id the rule comes from.
    pub requirement: Option<String>,
}

impl Invalid {
    /// These complaints.
    pub fn new(errors: Vec<FieldError>) -> Self {
        Self { errors, requirement: None }
    }

    /// One complaint.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// Names the requirement the rule comes from.
    pub fn with_requirement(mut self, id: impl Into<String>) -> Self {
        self.requirement = Some(id.into());
        self
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<String> = self.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        write!(f, "invalid: {}", fields.join("; "))
    }
}

impl std::error::Error for Invalid {}

/// Collects field complaints, so a request hears about every bad field at once.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// No complaints yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `Ok` values; records an `Err` against `field`.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(field, e.to_string());
                None
            }
        }
    }

    /// Records a complaint.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.to_owned(), message: message.into() });
    }

    /// A required field: records "is required" when absent.
    pub fn required<'a, T>(&mut self, field: &str, value: &'a Option<T>) -> Option<&'a T> {
        if value.is_none() {
            self.error(field, "is required");
        }
        value.as_ref()
    }

    /// A required date, exactly `YYYY-MM-DD`.
    pub fn date(&mut self, field: &str, value: &Option<String>) -> Option<jiff::civil::Date> {
        let v = self.required(field, value)?;
        self.check(field, parse_date(v))
    }

    /// A required date, exactly `YYYY-MM-DD`, not after `today`.
    pub fn past_date(
        &mut self,
        field: &str,
        value: &Option<String>,
        today: jiff::civil::Date,
    ) -> Option<jiff::civil::Date> {
        let d = self.date(field, value)?;
        if d > today {
            self.error(field, "is in the future");
            return None;
        }
        Some(d)
    }

    /// Text of 1 to `max` bytes, trimmed; absent is an error only if `required`.
    pub fn text(&mut self, field: &str, value: Option<&str>, required: bool, max: usize) -> Option<String> {
        match value {
            None => {
                if required {
                    self.error(field, "is required");
                }
                None
            }
            Some(s) if s.trim().is_empty() || s.len() > max => {
                self.error(field, format!("must be 1 to {max} characters"));
                None
            }
            Some(s) => Some(s.trim().to_owned()),
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` if nothing was recorded, else every complaint.
    pub fn finish(self) -> Result<(), Invalid> {
        if self.0.is_empty() { Ok(()) } else { Err(Invalid::new(self.0)) }
    }

    /// `value` (built from the checked fields, `None` where one failed) if nothing was
    /// recorded, else every complaint. So a validator never needs an "impossible" arm.
    pub fn into_result<T>(self, value: Option<T>) -> Result<T, Invalid> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            // A failed check always records why; this only guards a validator's slip.
            _ if self.0.is_empty() => Err(Invalid::field("body", "is incomplete")),
            _ => Err(Invalid::new(self.0)),
        }
    }
}

/// A date written exactly `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<jiff::civil::Date, &'static str> {
    const MESSAGE: &str = "must be a date YYYY-MM-DD";
    if s.len() != 10 {
        return Err(MESSAGE);
    }
    s.parse().map_err(|_| MESSAGE)
}

/// A tuple of `Option`s that is `Some` only if every one is: the checked fields of a
/// request, for [`Fields::into_result`] (`f.into_result((a, b, c).all_some())`).
pub trait AllSome {
    /// The tuple of values.
    type Values;
    /// `Some` if every element is.
    fn all_some(self) -> Option<Self::Values>;
}

macro_rules! all_some {
    ($($t:ident),+) => {
        impl<$($t),+> AllSome for ($(Option<$t>,)+) {
            type Values = ($($t,)+);
            #[allow(non_snake_case)]
            fn all_some(self) -> Option<Self::Values> {
                let ($($t,)+) = self;
                Some(($($t?,)+))
            }
        }
    };
}

all_some!(A, B);
all_some!(A, B, C);
all_some!(A, B, C, D);
all_some!(A, B, C, D, E);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_kept_and_a_clean_set_gives_the_value() {
        let mut f = Fields::new();
        let a = f.check("a", "x".parse::<u8>());
        let b = f.date("b", &Some("2021-02-30".into()));
        let c = f.text("c", Some("ok"), true, 10);
        let err = f.into_result((a, b, c).all_some()).unwrap_err();
        assert_eq!(err.errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let mut f = Fields::new();
        let c = f.text("c", Some(" ok "), true, 10);
        assert_eq!(f.into_result(c).as_deref(), Ok("ok"));
    }

    #[test]
    fn a_value_missing_without_a_complaint_is_still_an_error() {
        let f = Fields::new();
        assert_eq!(f.into_result::<u8>(None).unwrap_err().errors[0].field, "body");
    }
}
