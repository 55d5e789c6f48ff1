//! The lexer: template text into tokens, as Go's `text/template/parse` reads
//! it (`{{ }}` delimiters, `{{- ` and ` -}}` trim markers, `/* */` comments).

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Text outside actions.
    Text(String),
    /// `{{`.
    Open,
    /// `}}`.
    Close,
    /// A name: a function or keyword.
    Ident(String),
    /// `.Name`.
    Field(String),
    /// `$name` (or `$`).
    Variable(String),
    /// `.` alone.
    Dot,
    /// A quoted or raw string, unquoted.
    Str(String),
    /// A character constant, as its code point.
    Char(char),
    /// A number literal, as written.
    Number(String),
    /// `true` or `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `|`.
    Pipe,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,`.
    Comma,
    /// Space between words of an action (Go needs it to tell `.a .b` from
    /// `.a.b`).
    Space,
}

/// A token and the byte offset it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Byte offset in the source.
    pub pos: usize,
}

/// A lexing error at a byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct LexError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub pos: usize,
}

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits `src` into tokens. Comments produce none.
pub fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        out: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.out)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            message: message.into(),
            pos: self.pos,
        })
    }

    fn emit(&mut self, tok: Tok, pos: usize) {
        self.out.push(Token { tok, pos });
    }

    fn run(&mut self) -> Result<(), LexError> {
        let mut trim_next_text = false;
        while self.pos < self.src.len() {
            let start = self.pos;
            let (text, found) = match self.rest().find(OPEN) {
                Some(i) => (&self.src[start..start + i], true),
                None => (self.rest(), false),
            };
            let mut text = text.to_string();
            self.pos += text.len();
            if trim_next_text {
                text = text.trim_start_matches(is_space).to_string();
            }
            let trims_left = found && self.trim_marker_after_open();
            if trims_left {
                text = text.trim_end_matches(is_space).to_string();
            }
            if !text.is_empty() {
                self.emit(Tok::Text(text), start);
            }
            if !found {
                break;
            }
            trim_next_text = self.action(trims_left)?;
        }
        Ok(())
    }

    /// Whether the `{{` at the position is followed by `- ` (a trim marker).
    fn trim_marker_after_open(&self) -> bool {
        let after = &self.rest()[OPEN.len()..];
        after.starts_with('-') && after[1..].starts_with(is_space)
    }

    /// Whether the position is at ` -}}` (returns the marker's length) or
    /// `}}` (returns 0).
    fn at_close(&self) -> Option<usize> {
        let rest = self.rest();
        if rest.starts_with(is_space) {
            let trimmed = rest[1..].trim_start_matches(is_space);
            if let Some(after) = trimmed.strip_prefix('-')
                && after.starts_with(CLOSE)
            {
                return Some(rest.len() - after.len());
            }
        }
        rest.starts_with(CLOSE).then_some(0)
    }

    /// Lexes one action; returns whether it ends with a trim marker.
    fn action(&mut self, trims_left: bool) -> Result<bool, LexError> {
        let open = self.pos;
        self.pos += OPEN.len() + if trims_left { 2 } else { 0 };
        if self.rest().starts_with("/*") {
            return self.comment(open);
        }
        self.emit(Tok::Open, open);
        let mut depth = 0usize;
        loop {
            if let Some(marker) = self.at_close() {
                if depth > 0 {
                    return self.error("unclosed left paren");
                }
                let close = self.pos;
                self.pos += marker + CLOSE.len();
                self.emit(Tok::Close, close);
                return Ok(marker > 0);
            }
            let Some(c) = self.peek() else {
                return self.error("unclosed action");
            };
            let start = self.pos;
            if is_space(c) {
                while self.peek().is_some_and(is_space) && self.at_close().is_none() {
                    self.pos += 1;
                }
                self.emit(Tok::Space, start);
                continue;
            }
            match c {
                '|' => self.single(Tok::Pipe),
                ',' => self.single(Tok::Comma),
                '=' => self.single(Tok::Assign),
                '(' => {
                    depth += 1;
                    self.single(Tok::LParen);
                }
                ')' => {
                    if depth == 0 {
                        return self.error("unexpected right paren");
                    }
                    depth -= 1;
                    self.single(Tok::RParen);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.error("expected :=");
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '"' => self.quoted()?,
                '`' => self.raw()?,
                '\'' => self.char_constant()?,
                '$' => {
                    self.pos += 1;
                    let name = self.word();
                    self.emit(Tok::Variable(format!("${name}")), start);
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        self.number()?;
                    } else {
                        self.pos += 1;
                        let name = self.word();
                        let tok = if name.is_empty() {
                            Tok::Dot
                        } else {
                            Tok::Field(name)
                        };
                        self.emit(tok, start);
                    }
                }
                '+' | '-' | '0'..='9' => self.number()?,
                c if is_word(c) => {
                    let word = self.word();
                    let tok = match word.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(word),
                    };
                    self.emit(tok, start);
                }
                other => return self.error(format!("unrecognized character in action: {other:?}")),
            }
        }
    }

    fn single(&mut self, tok: Tok) {
        let start = self.pos;
        self.pos += 1;
        self.emit(tok, start);
    }

    fn word(&mut self) -> String {
        let len = self
            .rest()
            .find(|c: char| !is_word(c))
            .unwrap_or(self.rest().len());
        let word = self.rest()[..len].to_string();
        self.pos += len;
        word
    }

    fn comment(&mut self, open: usize) -> Result<bool, LexError> {
        let Some(end) = self.rest().find("*/") else {
            self.pos = open;
            return self.error("unclosed comment");
        };
        self.pos += end + 2;
        match self.at_close() {
            Some(marker) => {
                self.pos += marker + CLOSE.len();
                Ok(marker > 0)
            }
            None => self.error("comment ends before closing delimiter"),
        }
    }

    fn number(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let mut len = 0;
        let bytes = self.rest().as_bytes();
        if matches!(bytes.first(), Some(b'+' | b'-')) {
            len = 1;
        }
        let hex = matches!(bytes.get(len..len + 2), Some([b'0', b'x' | b'X']));
        while len < bytes.len() {
            let b = bytes[len];
            let exponent_sign = matches!(b, b'+' | b'-')
                && match bytes[len - 1] {
                    b'e' | b'E' => !hex,
                    b'p' | b'P' => true,
                    _ => false,
                };
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
                len += 1;
            } else {
                break;
            }
        }
        let text = self.rest()[..len].to_string();
        if text == "+" || text == "-" {
            return self.error(format!("bad number syntax: {text:?}"));
        }
        self.pos += len;
        self.emit(Tok::Number(text), start);
        Ok(())
    }

    fn quoted(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest()[1..].char_indices();
        loop {
            let Some((i, c)) = chars.next() else {
                return self.error("unterminated quoted string");
            };
            match c {
                '"' => {
                    self.pos += i + 2;
                    break;
                }
                '\n' => return self.error("unterminated quoted string"),
                '\\' => {
                    let decoded = unescape(&mut chars, '"').map_err(|message| LexError {
                        message,
                        pos: start,
                    })?;
                    out.push_str(&decoded);
                }
                c => out.push(c),
            }
        }
        self.emit(Tok::Str(out), start);
        Ok(())
    }

    fn raw(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let Some(end) = self.rest()[1..].find('`') else {
            return self.error("unterminated raw quoted string");
        };
        let text = self.rest()[1..1 + end].replace('\r', "");
        self.pos += end + 2;
        self.emit(Tok::Str(text), start);
        Ok(())
    }

    fn char_constant(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let mut chars = self.rest()[1..].char_indices();
        let value = match chars.next() {
            Some((_, '\\')) => {
                let decoded = unescape(&mut chars, '\'').map_err(|message| LexError {
                    message,
                    pos: start,
                })?;
                let mut it = decoded.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => c,
                    _ => return self.error("malformed character constant"),
                }
            }
            Some((_, c)) if c != '\'' && c != '\n' => c,
            _ => return self.error("malformed character constant"),
        };
        match chars.next() {
            Some((i, '\'')) => self.pos += i + 2,
            _ => return self.error("unterminated character constant"),
        }
        self.emit(Tok::Char(value), start);
        Ok(())
    }
}

/// Decodes one escape sequence after a backslash (Go's rules for quoted
/// strings and character constants).
fn unescape(chars: &mut std::str::CharIndices<'_>, quote: char) -> Result<String, String> {
    let Some((_, c)) = chars.next() else {
        return Err("unterminated quoted string".into());
    };
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        c if c == quote => Some(c),
        _ => None,
    };
    if let Some(s) = simple {
        return Ok(s.to_string());
    }
    let mut digits = |n: usize, radix: u32| -> Result<u32, String> {
        let mut value = 0u32;
        for _ in 0..n {
            let d = chars
                .next()
                .and_then(|(_, c)| c.to_digit(radix))
                .ok_or("invalid syntax")?;
            value = value * radix + d;
        }
        Ok(value)
    };
    let code = match c {
        'x' => return Ok(char::from(digits(2, 16)? as u8).to_string()),
        'u' => digits(4, 16)?,
        'U' => digits(8, 16)?,
        '0'..='7' => {
            let rest = digits(2, 8)?;
            let value = c.to_digit(8).unwrap_or(0) * 64 + rest;
            if value > 255 {
                return Err("invalid syntax".into());
            }
            return Ok(char::from(value as u8).to_string());
        }
        _ => return Err("invalid syntax".into()),
    };
    char::from_u32(code)
        .map(String::from)
        .ok_or_else(|| "invalid syntax".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn trim_markers_eat_whitespace_around_actions() {
        assert_eq!(
            toks("a  \n{{- .x -}}\n  b"),
            vec![
                Tok::Text("a".into()),
                Tok::Open,
                Tok::Field("x".into()),
                Tok::Close,
                Tok::Text("b".into())
            ]
        );
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(
            toks("{{-3}}"),
            vec![Tok::Open, Tok::Number("-3".into()), Tok::Close]
        );
    }

    #[test]
    fn comments_vanish_and_must_end_at_the_delimiter() {
        assert_eq!(
            toks("a {{- /* c */ -}} b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into())]
        );
        assert!(lex("{{/* c */ x}}").is_err());
    }

    #[test]
    fn strings_fields_variables_and_chains() {
        assert_eq!(
            toks(r#"{{$x := "a\tb" | printf `%s\n` ($x).y.z 'c'}}"#),
            vec![
                Tok::Open,
                Tok::Variable("$x".into()),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::Str("a\tb".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("printf".into()),
                Tok::Space,
                Tok::Str("%s\\n".into()),
                Tok::Space,
                Tok::LParen,
                Tok::Variable("$x".into()),
                Tok::RParen,
                Tok::Field("y".into()),
                Tok::Field("z".into()),
                Tok::Space,
                Tok::Char('c'),
                Tok::Close
            ]
        );
    }

    #[test]
    fn numbers_in_go_syntax() {
        for n in [
            "1", "-1.5", "1e+06", "0x1F", "1_000", ".5", "0b101", "0x1p-2",
        ] {
            assert_eq!(
                toks(&format!("{{{{{n}}}}}")),
                vec![Tok::Open, Tok::Number(n.into()), Tok::Close],
                "{n}"
            );
        }
    }

    #[test]
    fn unclosed_things_are_errors() {
        assert!(lex("{{ .x ").is_err());
        assert!(lex("{{ \"abc }}").is_err());
        assert!(lex("{{ (.x }}").is_err());
    }
}
