//! Reading `FMN_*` settings, with one policy for every variable and every crate.

/// A set variable whose value cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{name}: `{value}` is not {expected}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub expected: &'static str,
}

/// `FMN_*` settings, read with one policy: an unset or empty (blank) variable takes the
/// documented default; a set value that cannot be used is a [`ConfigError`] naming the
/// variable, never silently a default.
pub struct Vars<'a> {
    lookup: Box<Lookup<'a>>,
}

/// A variable's value by name.
type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl Vars<'static> {
    /// The process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

impl<'a> Vars<'a> {
    /// Variables from `lookup` (a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// `name`'s value, trimmed; `None` when unset or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `name`'s value, or `default`.
    pub fn text_or(&self, name: &str, default: &str) -> String {
        self.text(name).unwrap_or_else(|| default.to_string())
    }

    /// Whether `name` is set at all (even blank).
    pub fn is_set(&self, name: &str) -> bool {
        (self.lookup)(name).is_some()
    }

    /// `name` parsed as a `T`, or `default`; `expected` says what a valid value is.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        self.parsed_if(name, default, expected, |_| true)
    }

    /// `name` as a number above zero (a count, a port, seconds), or `default`.
    pub fn positive<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + Default,
    {
        self.parsed_if(name, default, "a number above zero", |v| *v > T::default())
    }

    /// `name` as seconds above zero (fractions allowed), or `None` when unset.
    pub fn seconds(&self, name: &str) -> Result<Option<std::time::Duration>, ConfigError> {
        let expected = "a positive number of seconds";
        match self.text(name) {
            None => Ok(None),
            Some(v) => match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() => {
                    Ok(Some(std::time::Duration::from_secs_f64(s)))
                }
                _ => Err(self.invalid(name, v, expected)),
            },
        }
    }

    /// `name` as a boolean: true/false, 1/0, yes/no, on/off (any case), or `default`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(self.invalid(name, v, "true or false (or 1/0, yes/no, on/off)")),
            },
        }
    }

    fn parsed_if<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
        expected: &'static str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<T, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => match v.parse::<T>() {
                Ok(parsed) if valid(&parsed) => Ok(parsed),
                _ => Err(self.invalid(name, v, expected)),
            },
        }
    }

    fn invalid(&self, name: &str, value: String, expected: &'static str) -> ConfigError {
        ConfigError {
            name: name.to_string(),
            value,
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> Vars<'static> {
        Vars::from_lookup(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn unset_or_blank_is_the_default_and_invalid_is_an_error() {
        let v = vars(&[
            ("FMN_A", " "),
            ("FMN_B", "7"),
            ("FMN_C", "0"),
            ("FMN_D", "x"),
        ]);
        assert_eq!(v.positive("FMN_A", 3u32).unwrap(), 3);
        assert_eq!(v.positive("FMN_UNSET", 3u32).unwrap(), 3);
        assert_eq!(v.positive("FMN_B", 3u32).unwrap(), 7);
        let e = v.positive("FMN_C", 3u32).unwrap_err();
        assert_eq!(e.to_string(), "FMN_C: `0` is not a number above zero");
        assert!(v.positive("FMN_D", 3.0f64).is_err());
        assert_eq!(v.text_or("FMN_A", "d"), "d");
        assert!(v.seconds("FMN_D").is_err());
        assert_eq!(v.seconds("FMN_UNSET").unwrap(), None);
    }

    #[test]
    fn flags_take_the_usual_spellings() {
        let spellings = [
            ("yes", true),
            ("On", true),
            ("1", true),
            ("no", false),
            ("OFF", false),
        ];
        for (value, expected) in spellings {
            let v = Vars::from_lookup(move |_| Some(value.to_string()));
            assert_eq!(v.flag("FMN_X", !expected).unwrap(), expected, "{value}");
        }
        let maybe = Vars::from_lookup(|_| Some("maybe".to_string()));
        assert_eq!(maybe.flag("FMN_X", true).unwrap_err().name, "FMN_X");
    }
}
