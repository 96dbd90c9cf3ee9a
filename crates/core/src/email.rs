use std::fmt;

/// An e-mail address in the normalised form used to match accounts into people.
///
/// Normalisation trims surrounding whitespace and lower-cases the whole address. Lower-casing
/// the local part is not what RFC 5321 promises, but every platform the hub connects to treats
/// addresses case-insensitively, and an admin expects `Alice@Acme.com` and `alice@acme.com` to
/// be one person. Plus-addressing and dots are kept: `a.b@` and `ab@` may be different people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Text that cannot be an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not an e-mail address: {why}")]
pub struct InvalidEmail {
    pub value: String,
    pub why: &'static str,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let invalid = |why| InvalidEmail {
            value: raw.to_owned(),
            why,
        };
        let trimmed = raw.trim();
        if trimmed.chars().any(char::is_whitespace) {
            return Err(invalid("it contains whitespace"));
        }
        let (local, domain) = trimmed
            .split_once('@')
            .ok_or_else(|| invalid("it has no '@'"))?;
        if domain.contains('@') {
            return Err(invalid("it has more than one '@'"));
        }
        if local.is_empty() {
            return Err(invalid("nothing comes before the '@'"));
        }
        if domain.is_empty() || domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid("the domain is empty or malformed"));
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn case_and_surrounding_whitespace_do_not_matter() {
        assert_eq!(
            Email::parse("  Alice.Smith@Acme.COM \t").unwrap(),
            Email::parse("alice.smith@acme.com").unwrap()
        );
    }

    #[test]
    fn plus_tags_and_dots_are_kept() {
        assert_ne!(
            Email::parse("alice+x@acme.com").unwrap(),
            Email::parse("alice@acme.com").unwrap()
        );
        assert_ne!(
            Email::parse("a.lice@acme.com").unwrap(),
            Email::parse("alice@acme.com").unwrap()
        );
    }

    #[test]
    fn malformed_addresses_say_why() {
        for (raw, why) in [
            ("", "it has no '@'"),
            ("alice", "it has no '@'"),
            ("@acme.com", "nothing comes before the '@'"),
            ("alice@", "the domain is empty or malformed"),
            ("alice@acme.", "the domain is empty or malformed"),
            ("a@b@c", "it has more than one '@'"),
            ("al ice@acme.com", "it contains whitespace"),
        ] {
            assert_eq!(Email::parse(raw).unwrap_err().why, why, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(local in "[A-Za-z0-9._+-]{1,20}", domain in "[A-Za-z0-9-]{1,10}\\.[A-Za-z]{2,5}", pad in " {0,3}") {
            let raw = format!("{pad}{local}@{domain}{pad}");
            let once = Email::parse(&raw).unwrap();
            let twice = Email::parse(once.as_str()).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(once.as_str(), once.as_str().to_lowercase());
        }
    }
}
