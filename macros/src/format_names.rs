//! The names a format string uses implicitly: `"{count}"`, `"{x:>width$}"`.
//!
//! `format!("{k}")` reads the variable `k` without naming it as a token, so the
//! capture analysis must read the string (Rust's format syntax,
//! `std::fmt` "Named parameters" and "Width").

/// A name a format string reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatName {
    /// The variable's name.
    pub name: String,
    /// True when used as a width or precision (`name$`): it must then be a
    /// `usize` value, not a reference.
    pub count: bool,
}

/// The names `format` reads implicitly, in order of first use, each once (a name
/// used both ways is reported as a count).
pub fn format_names(format: &str) -> Vec<FormatName> {
    let mut names: Vec<FormatName> = Vec::new();
    let mut add = |name: &str, count: bool| {
        if !is_identifier(name) {
            return;
        }
        match names.iter_mut().find(|n| n.name == name) {
            Some(existing) => existing.count |= count,
            None => names.push(FormatName { name: name.to_string(), count }),
        }
    };
    let mut rest = format;
    while let Some(open) = rest.find(['{', '}']) {
        let after = &rest[open + 1..];
        if rest[open..].starts_with("{{") || rest[open..].starts_with("}}") {
            rest = &after[1..];
            continue;
        }
        if rest.as_bytes()[open] == b'}' {
            rest = after;
            continue;
        }
        let Some(close) = after.find('}') else { break };
        let field = &after[..close];
        let (argument, spec) = field.split_once(':').unwrap_or((field, ""));
        add(argument.trim(), false);
        let pieces: Vec<&str> = spec.split('$').collect();
        for piece in &pieces[..pieces.len() - 1] {
            let start = piece.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
            add(&piece[start..], true);
        }
        rest = &after[close + 1..];
    }
    names
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
        && s != "_"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<(String, bool)> {
        format_names(s).into_iter().map(|n| (n.name, n.count)).collect()
    }

    #[test]
    fn reads_named_arguments_widths_and_precisions() {
        assert_eq!(names("{k} and {k:?}"), [("k".to_string(), false)]);
        assert_eq!(names("{x:>width$.prec$}"), [("x".into(), false), ("width".into(), true), ("prec".into(), true)]);
        assert_eq!(names("{:w$}"), [("w".to_string(), true)]);
    }

    #[test]
    fn skips_positions_escapes_and_numbers() {
        assert!(names("{} {0} {{k}} }} {1:?}").is_empty());
        assert!(names("{:5.2}").is_empty());
        assert!(names("unclosed {k").is_empty());
        assert_eq!(names("{ünï}"), [("ünï".to_string(), false)]);
    }
}
