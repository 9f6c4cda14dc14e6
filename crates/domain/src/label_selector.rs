//! Label selectors (`-l`), parsed and matched as apimachinery's `labels.Parse` and
//! `Requirement.Matches` do, for objects read from files: live objects are filtered by the API
//! server itself.
//!
//! Grammar: requirements separated by commas, each one of `key`, `!key`, `key=value`,
//! `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`, `key>N`, `key<N`. Keys
//! are qualified names (`[prefix/]name`), values label values (possibly empty). An empty
//! selector selects everything.

use std::collections::BTreeSet;

use crate::pull_secret::is_dns1123_subdomain;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: BTreeSet<String>,
    /// The bound of `>` and `<`.
    number: i64,
}

/// A parsed label selector; [`LabelSelector::matches`] tests an object's labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    End,
    Identifier(String),
    Comma,
    OpenPar,
    ClosedPar,
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    In,
    NotIn,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::End => "end of string",
            Token::Identifier(s) => s,
            Token::Comma => ",",
            Token::OpenPar => "(",
            Token::ClosedPar => ")",
            Token::Not => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::In => "in",
            Token::NotIn => "notin",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// Splits the selector into tokens as apimachinery's lexer does: the longest operator made of
/// special characters, else an identifier up to the next space or special character.
fn tokens(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            i += 1;
            continue;
        }
        if is_special(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (token, len) = match two.as_str() {
                "==" => (Token::DoubleEquals, 2),
                "!=" => (Token::NotEquals, 2),
                _ => (
                    match c {
                        '=' => Token::Equals,
                        '!' => Token::Not,
                        '(' => Token::OpenPar,
                        ')' => Token::ClosedPar,
                        ',' => Token::Comma,
                        '>' => Token::GreaterThan,
                        _ => Token::LessThan,
                    },
                    1,
                ),
            };
            out.push(token);
            i += len;
            continue;
        }
        let start = i;
        while i < chars.len() && !is_special(chars[i]) && !chars[i].is_whitespace() {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push(match word.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier(word),
        });
    }
    out
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters (label values may also
/// be empty).
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn validate_key(key: &str) -> Result<(), String> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid label key {key:?}: a key is an optional DNS subdomain prefix and '/', then a name of at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric one (e.g. 'app' or 'example.com/tier')"
        ))
    }
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric one"
        ))
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    /// The next token where a value is expected: `in` and `notin` are plain words there.
    fn next_value(&mut self) -> Token {
        match self.next() {
            Token::In => Token::Identifier("in".into()),
            Token::NotIn => Token::Identifier("notin".into()),
            t => t,
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let not = *self.peek() == Token::Not;
        if not {
            self.pos += 1;
        }
        let key = match self.next() {
            Token::Identifier(k) => k,
            t => return Err(format!("found '{}', expected: identifier", t.text())),
        };
        validate_key(&key)?;
        let op = if not {
            Op::DoesNotExist
        } else if matches!(self.peek(), Token::End | Token::Comma) {
            Op::Exists
        } else {
            match self.next() {
                Token::Equals | Token::DoubleEquals => Op::Equals,
                Token::NotEquals => Op::NotEquals,
                Token::In => Op::In,
                Token::NotIn => Op::NotIn,
                Token::GreaterThan => Op::GreaterThan,
                Token::LessThan => Op::LessThan,
                t => {
                    return Err(format!(
                        "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                        t.text()
                    ))
                }
            }
        };
        let mut values = BTreeSet::new();
        match op {
            Op::Exists | Op::DoesNotExist => {}
            Op::In | Op::NotIn => {
                let t = self.next();
                if t != Token::OpenPar {
                    return Err(format!("found '{}', expected: '('", t.text()));
                }
                // `()` is the set of the empty value; `(a,,b)` holds it too.
                loop {
                    match self.next_value() {
                        Token::Identifier(v) => {
                            values.insert(v);
                            match self.next() {
                                Token::Comma => {}
                                Token::ClosedPar => break,
                                t => {
                                    return Err(format!(
                                        "found '{}', expected: ',' or ')'",
                                        t.text()
                                    ))
                                }
                            }
                        }
                        Token::Comma => {
                            values.insert(String::new());
                        }
                        Token::ClosedPar => {
                            values.insert(String::new());
                            break;
                        }
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',', ')' or identifier",
                                t.text()
                            ))
                        }
                    }
                }
            }
            _ => match self.peek() {
                Token::End | Token::Comma => {
                    values.insert(String::new());
                }
                _ => match self.next_value() {
                    Token::Identifier(v) => {
                        values.insert(v);
                    }
                    t => return Err(format!("found '{}', expected: identifier", t.text())),
                },
            },
        }
        for v in &values {
            validate_value(v)?;
        }
        let mut number = 0;
        if matches!(op, Op::GreaterThan | Op::LessThan) {
            let v = values.iter().next().map(String::as_str).unwrap_or("");
            number = v
                .parse::<i64>()
                .map_err(|_| format!("for '>' and '<', the value must be an integer, not {v:?}"))?;
        }
        Ok(Requirement {
            key,
            op,
            values,
            number,
        })
    }
}

impl LabelSelector {
    /// Parses `-l`'s text; the error says what was found where and what was expected.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut p = Parser {
            tokens: tokens(text),
            pos: 0,
        };
        let mut reqs = Vec::new();
        loop {
            match p.peek() {
                Token::End => break,
                Token::Identifier(_) | Token::Not => {}
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.text()
                    ))
                }
            }
            reqs.push(p.requirement()?);
            match p.next() {
                Token::End => break,
                Token::Comma => {
                    if !matches!(p.peek(), Token::Identifier(_) | Token::Not) {
                        return Err(format!(
                            "found '{}', expected: identifier after ','",
                            p.peek().text()
                        ));
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.text()
                    ))
                }
            }
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object with these labels is selected (every requirement holds).
    pub fn matches<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|r| {
            let value = label(&r.key);
            match r.op {
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
                Op::Equals | Op::In => value.is_some_and(|v| r.values.contains(v)),
                Op::NotEquals | Op::NotIn => !value.is_some_and(|v| r.values.contains(v)),
                Op::GreaterThan => value
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|n| n > r.number),
                Op::LessThan => value
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|n| n < r.number),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn selects(selector: &str, labels: &[(&str, &str)]) -> bool {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        LabelSelector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector:?}: {e}"))
            .matches(|k| labels.get(k).copied())
    }

    #[test]
    fn matching_follows_apimachinery() {
        let web = [("app", "web"), ("tier", "front"), ("replicas", "3")];
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("app", true),
            ("!app", false),
            ("db", false),
            ("!db", true),
            ("app=web", true),
            ("app==web", true),
            ("app = web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("db!=x", true),
            ("app in (web,db)", true),
            ("app in (db)", false),
            ("db in (x)", false),
            ("app notin (db)", true),
            ("app notin (web)", false),
            ("db notin (x)", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("replicas>2", true),
            ("replicas>3", false),
            ("replicas<4", true),
            ("replicas<3", false),
            ("app>1", false),
            ("db<1", false),
            ("app=", false),
            ("x in ()", false),
        ];
        for &(selector, want) in cases {
            assert_eq!(selects(selector, &web), want, "{selector:?}");
        }
        // An empty value is a value: `key=` selects objects with that label empty.
        assert!(selects("app=", &[("app", "")]));
        assert!(selects("app in ()", &[("app", "")]));
        assert!(selects("app in (a,,b)", &[("app", "")]));
        assert!(selects(
            "example.com/tier=front",
            &[("example.com/tier", "front")]
        ));
    }

    #[test]
    fn bad_selectors_say_what_was_expected() {
        let cases: &[(&str, &str)] = &[
            (
                "app=web tier=x",
                "found 'tier', expected: ',' or 'end of string'",
            ),
            (
                "app=web,",
                "found 'end of string', expected: identifier after ','",
            ),
            (
                ",app",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            ("app in web", "found 'web', expected: '('"),
            ("app in (web", "found 'end of string', expected: ',' or ')'"),
            ("app notin (a b)", "found 'b', expected: ',' or ')'"),
            ("app=(x)", "found '(', expected: identifier"),
            ("app==!x", "found '!', expected: identifier"),
            ("!", "found 'end of string', expected: identifier"),
            ("!app=x", "found '=', expected: ',' or 'end of string'"),
            ("app>x", "the value must be an integer"),
            ("app<", "the value must be an integer"),
            ("-app=x", "invalid label key \"-app\""),
            ("a/b/c", "invalid label key"),
            ("Bad_Prefix/app", "invalid label key"),
            ("app=-x", "invalid label value \"-x\""),
            ("app in", "found 'end of string', expected: '('"),
        ];
        for (selector, want) in cases {
            let err = LabelSelector::parse(selector).unwrap_err();
            assert!(err.contains(want), "{selector:?}: {err}");
        }
        let long = format!("k={}", "v".repeat(64));
        assert!(LabelSelector::parse(&long)
            .unwrap_err()
            .contains("invalid label value"));
        // `in` and `notin` are values where a value is expected.
        assert!(selects("app=in", &[("app", "in")]));
        assert!(selects("app in (notin,x)", &[("app", "notin")]));
    }
}
