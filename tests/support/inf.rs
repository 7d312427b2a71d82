//! A parser for Windows INF files: sections, `key = value` and value-only
//! lines, comma-separated values, quoted strings (with `""` for a quote),
//! `;` comments, `\` line continuations and `%strkey%` substitution from
//! `[Strings]` (`%%` is a percent sign; `%13%`-style DIRIDs stay as they are).

use std::collections::BTreeMap;

/// One line of a section, after continuation joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The key, if the line has `=` outside quotes (case kept).
    pub key: Option<String>,
    /// The values, unquoted and substituted.
    pub values: Vec<String>,
    /// The 1-based source line where it starts.
    pub line_no: usize,
}

#[derive(Debug, Default)]
pub struct Inf {
    /// Lower-cased section name to lines, in order; a section that appears
    /// twice is merged, as Windows does.
    sections: BTreeMap<String, Vec<Line>>,
    /// Lower-cased string key to value.
    strings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line_no: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line_no, self.message)
    }
}

/// A token of a line: text, and whether any of it was quoted.
#[derive(Debug, Clone)]
struct Field {
    text: String,
    quoted: bool,
}

/// Splits one logical line into key/value fields. Handles quotes, `;`
/// comments and the trailing `\` continuation marker (returned as true).
fn split_line(raw: &str, line_no: usize) -> Result<(Option<Field>, Vec<Field>, bool), ParseError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut key: Option<Field> = None;
    let mut cur = Field { text: String::new(), quoted: false };
    // White space outside quotes, kept only if more of the field follows.
    let mut ws = String::new();
    let mut chars = raw.chars().peekable();
    let mut in_quotes = false;
    let mut continued = false;
    let new_field = || Field { text: String::new(), quoted: false };
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.text.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cur.text.push(c);
            }
            continue;
        }
        if c.is_whitespace() {
            ws.push(c);
            continue;
        }
        match c {
            ';' => break,
            '=' if key.is_none() && fields.is_empty() => {
                key = Some(std::mem::replace(&mut cur, new_field()));
                ws.clear();
                continue;
            }
            ',' => {
                fields.push(std::mem::replace(&mut cur, new_field()));
                ws.clear();
                continue;
            }
            '\\' => {
                // A continuation if only white space (or a comment) follows.
                let rest: String = chars.clone().collect();
                let rest = rest.trim_start();
                if rest.is_empty() || rest.starts_with(';') {
                    continued = true;
                    break;
                }
            }
            _ => {}
        }
        if !cur.text.is_empty() || cur.quoted {
            cur.text.push_str(&ws);
        }
        ws.clear();
        if c == '"' {
            in_quotes = true;
            cur.quoted = true;
        } else {
            cur.text.push(c);
        }
    }
    if in_quotes {
        return Err(ParseError { line_no, message: "unterminated quoted string".into() });
    }
    let has_content = !cur.text.is_empty() || cur.quoted || !fields.is_empty() || key.is_some();
    if has_content {
        fields.push(cur);
    }
    Ok((key, fields, continued))
}

/// One unsubstituted line: key, values, line number.
type RawLine = (Option<Field>, Vec<Field>, usize);

impl Inf {
    pub fn parse(text: &str) -> Result<Inf, ParseError> {
        // Raw (unsubstituted) lines per section, with continuations joined.
        let mut raw_sections: Vec<(String, Vec<RawLine>)> = Vec::new();
        let mut pending: Option<RawLine> = None;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let trimmed = raw.trim();
            if pending.is_none() && trimmed.starts_with('[') {
                let end = trimmed
                    .find(']')
                    .ok_or_else(|| ParseError { line_no, message: "section header without ']'".into() })?;
                let name = trimmed[1..end].trim().to_ascii_lowercase();
                if name.is_empty() {
                    return Err(ParseError { line_no, message: "empty section name".into() });
                }
                raw_sections.push((name, Vec::new()));
                continue;
            }
            let (key, fields, continued) = split_line(raw, line_no)?;
            let joined = match pending.take() {
                Some((pkey, mut pfields, start)) => {
                    if key.is_some() {
                        return Err(ParseError { line_no, message: "'=' in a continuation line".into() });
                    }
                    // The first field of the continuation extends the last
                    // field of the previous line.
                    let mut it = fields.into_iter();
                    if let Some(first) = it.next() {
                        match pfields.last_mut() {
                            Some(last) if last.text.is_empty() && !last.quoted => *last = first,
                            Some(last) => {
                                last.text.push_str(&first.text);
                                last.quoted |= first.quoted;
                            }
                            None => pfields.push(first),
                        }
                    }
                    pfields.extend(it);
                    (pkey, pfields, start)
                }
                None => (key, fields, line_no),
            };
            if continued {
                pending = Some(joined);
                continue;
            }
            if joined.0.is_none() && joined.1.is_empty() {
                continue;
            }
            match raw_sections.last_mut() {
                Some((_, lines)) => lines.push(joined),
                None => return Err(ParseError { line_no, message: "content before the first section".into() }),
            }
        }
        if let Some((_, _, start)) = pending {
            return Err(ParseError { line_no: start, message: "continuation at the end of the file".into() });
        }
        let mut inf = Inf::default();
        // [Strings] first: its values are not substituted.
        for (name, lines) in &raw_sections {
            if name == "strings" {
                for (key, values, line_no) in lines {
                    let key = key.as_ref().ok_or_else(|| ParseError {
                        line_no: *line_no,
                        message: "a [Strings] line without a key".into(),
                    })?;
                    let value = values.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(",");
                    inf.strings.insert(key.text.to_ascii_lowercase(), value);
                }
            }
        }
        for (name, lines) in raw_sections {
            let mut out = Vec::new();
            for (key, values, line_no) in lines {
                let key = match key {
                    Some(k) => Some(inf.substitute(&k.text, line_no)?),
                    None => None,
                };
                let values = values
                    .into_iter()
                    .map(|f| if name == "strings" { Ok(f.text) } else { inf.substitute(&f.text, line_no) })
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(Line { key, values, line_no });
            }
            inf.sections.entry(name).or_default().extend(out);
        }
        Ok(inf)
    }

    /// Replaces `%key%` with the `[Strings]` value; `%%` is `%`; an unknown
    /// numeric key (a DIRID such as `%13%`) stays; any other unknown key is
    /// an error.
    fn substitute(&self, s: &str, line_no: usize) -> Result<String, ParseError> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end =
                after.find('%').ok_or_else(|| ParseError { line_no, message: format!("unmatched % in {s:?}") })?;
            let key = &after[..end];
            if key.is_empty() {
                out.push('%');
            } else if let Some(v) = self.strings.get(&key.to_ascii_lowercase()) {
                out.push_str(v);
            } else if key.chars().all(|c| c.is_ascii_digit()) {
                out.push('%');
                out.push_str(key);
                out.push('%');
            } else {
                return Err(ParseError { line_no, message: format!("unknown string key %{key}%") });
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The lines of a section (case-insensitive name).
    pub fn section(&self, name: &str) -> Option<&[Line]> {
        self.sections.get(&name.to_ascii_lowercase()).map(Vec::as_slice)
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    /// The values of the first `key` in `section` (both case-insensitive).
    pub fn get(&self, section: &str, key: &str) -> Option<&[String]> {
        self.section(section)?
            .iter()
            .find(|l| l.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key)))
            .map(|l| l.values.as_slice())
    }

    /// The first value of `key` in `section`.
    pub fn value(&self, section: &str, key: &str) -> Option<&str> {
        self.get(section, key)?.first().map(String::as_str)
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        self.strings.get(&key.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_features_it_claims() {
        let inf = Inf::parse(
            "; comment\n[Version]\nSignature = \"$WINDOWS NT$\" ; trailing\n\
             [A]\nKey = %Name%, \"x,y\", \"say \"\"hi\"\"\", %13%\\f.sys, 100%%\n\
             HKR, Ndi, LowerRange, 0, \\\n   \"a,b\"\nvalue,,,2\n\
             [a]\nMore = 1\n\
             [Strings]\nName = \"The Name\"\n",
        )
        .unwrap();
        assert_eq!(inf.value("version", "SIGNATURE"), Some("$WINDOWS NT$"));
        assert_eq!(
            inf.get("A", "key").unwrap(),
            &["The Name", "x,y", "say \"hi\"", "%13%\\f.sys", "100%"].map(String::from)
        );
        let lines = inf.section("a").unwrap();
        assert_eq!(lines[1].values, ["HKR", "Ndi", "LowerRange", "0", "a,b"].map(String::from));
        assert_eq!(lines[2].values, ["value", "", "", "2"].map(String::from));
        assert_eq!(inf.value("A", "More"), Some("1"), "repeated sections merge");
    }

    #[test]
    fn reports_errors() {
        assert!(Inf::parse("[A]\nk = \"open\n").is_err());
        assert!(Inf::parse("k = v\n").is_err());
        assert!(Inf::parse("[A]\nk = %Missing%\n").is_err());
        assert!(Inf::parse("[A]\nk = a, \\\n").is_err());
    }
}
