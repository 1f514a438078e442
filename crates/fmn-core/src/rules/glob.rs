//! Topic globs, as FMN 3.x's `topic` filter (Python's `fnmatch`): `*` any run of characters,
//! `?` one character, `[abc]` / `[!abc]` / `[a-z]` a class. Matching is iterative with one
//! backtrack point per star, so it is linear-ish and cannot blow up on hostile patterns.

use super::error::{bad, RuleError, MAX_PATTERN};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::Any => true,
            Token::Star => unreachable!("stars are handled by the matcher"),
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

/// A compiled topic glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    /// The topic itself when the glob has no wildcard (an index key).
    literal: Option<String>,
}

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, RuleError> {
        if pattern.is_empty() {
            return Err(bad("glob", "empty glob"));
        }
        if pattern.len() > MAX_PATTERN {
            return Err(bad("glob", format!("at most {MAX_PATTERN} bytes")));
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(c) = chars.next() else {
                            return Err(bad("glob", "unclosed `[`"));
                        };
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        if chars.peek() == Some(&'-') {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    ranges.push((c, c));
                                    ranges.push(('-', '-'));
                                    break;
                                }
                                Some(hi) if hi >= c => ranges.push((c, hi)),
                                Some(hi) => {
                                    return Err(bad("glob", format!("bad range `{c}-{hi}`")))
                                }
                                None => return Err(bad("glob", "unclosed `[`")),
                            }
                        } else {
                            ranges.push((c, c));
                        }
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c if c.is_control() => return Err(bad("glob", "control characters")),
                c => tokens.push(Token::Char(c)),
            }
        }
        let literal = tokens
            .iter()
            .map(|t| match t {
                Token::Char(c) => Some(*c),
                _ => None,
            })
            .collect::<Option<String>>();
        Ok(Self { tokens, literal })
    }

    /// The exact topic this glob matches, when it has no wildcard.
    pub fn literal(&self) -> Option<&str> {
        self.literal.as_deref()
    }

    /// Whether `text` matches the whole glob.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    backtrack = Some((p, t));
                    p += 1;
                }
                Some(tok) if tok.matches(text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match backtrack {
                    Some((bp, bt)) => {
                        p = bp + 1;
                        t = bt + 1;
                        backtrack = Some((bp, bt + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, text: &str) -> bool {
        Glob::new(glob).unwrap().matches(text)
    }

    #[test]
    fn fnmatch_semantics() {
        assert!(m(
            "*.bodhi.update.comment",
            "org.fedoraproject.prod.bodhi.update.comment"
        ));
        assert!(!m(
            "*.bodhi.update.comment",
            "org.fedoraproject.prod.bodhi.update.request"
        ));
        assert!(m("org.*.koji.*", "org.fedoraproject.prod.koji.build.done"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("v[0-9]", "v7"));
        assert!(m("*", ""));
        assert!(m("**a**", "bab"));
        assert!(!m("abc", "abcd"));
    }

    #[test]
    fn literals_are_known() {
        assert_eq!(Glob::new("a.b").unwrap().literal(), Some("a.b"));
        assert_eq!(Glob::new("a.*").unwrap().literal(), None);
    }

    #[test]
    fn bad_globs_are_refused() {
        assert!(Glob::new("[abc").is_err());
        assert!(Glob::new("").is_err());
        assert!(Glob::new("[z-a]").is_err());
    }

    #[test]
    fn hostile_globs_stay_fast() {
        let g = Glob::new(&"*a".repeat(100)).unwrap();
        assert!(!g.matches(&"a".repeat(99)));
    }
}
