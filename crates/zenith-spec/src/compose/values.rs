//! Small readers for compose's value syntaxes: shell-word command strings, Go-style durations,
//! `${VAR}` references, and a best-effort line lookup (YAML values carry no positions once
//! parsed, so warnings find their line by walking the text's indentation).

use std::time::Duration;

use serde_norway::Value;

/// A compose command string split as compose splits it: shell words, but no shell runs it.
/// `None` when a quote is left open.
pub(super) fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => w.push(c),
                            c => w.extend(['\\', c]),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next().unwrap_or('\\')),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// A compose duration: Go's syntax (`1m30s`, `1.5s`, `500ms`, `2h`), which humantime does not
/// fully read (no fractions).
pub(super) fn go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    // Bound it so absurd values fail here instead of panicking in `from_secs_f64`.
    (total < 1e12).then(|| Duration::from_secs_f64(total))
}

/// The variables a compose string refers to (`${VAR}`, `${VAR:-default}`, `$VAR`); `$$` is
/// compose's escape for a literal `$` and refers to nothing.
pub(super) fn variables(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            let name = inner[..end].split([':', '-', '?', '+']).next().unwrap_or_default();
            out.push(name.to_string());
            rest = &inner[end..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end > 0 {
                out.push(after[..end].to_string());
            }
            rest = &after[end..];
        }
    }
    out
}

/// A scalar as the string compose would use (`8080` and `true` become `"8080"`, `"true"`).
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of strings, or one string (several compose fields take either).
pub(super) fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Sequence(seq) => seq.iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

/// 1-based line of the key at `path` in YAML text (or of its nearest ancestor found), by
/// following indentation; 0 when even the first key is not found. A key also matches a list
/// item that starts with it (`- KEY=value`, `- name`), which is how compose writes
/// environment and secrets lists.
pub(super) fn yaml_line(text: &str, path: &[&str]) -> usize {
    let (mut found, mut depth) = (0, 0);
    let mut parent_indent: Option<usize> = None;
    // The indentation of the parent's children, learnt from the first of them.
    let mut child_indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') || depth == path.len() {
            continue;
        }
        let indent = line.len() - body.len();
        if parent_indent.is_some_and(|p| indent <= p) && !body.starts_with('-') {
            break; // left the parent's block without meeting the key
        }
        let child = *child_indent.get_or_insert(indent);
        if indent != child {
            continue;
        }
        let key = path[depth];
        let item = body.strip_prefix("- ").map(str::trim_start);
        let is_key = [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")]
            .iter()
            .any(|k| body.starts_with(k.as_str()) || item.is_some_and(|i| i.starts_with(k.as_str())));
        let is_item = item.is_some_and(|i| {
            i.strip_prefix(key)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        });
        if is_key || is_item {
            found = n + 1;
            depth += 1;
            parent_indent = Some(indent);
            child_indent = None;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_compose() {
        assert_eq!(
            shell_words(r#"sh -c "echo \"hi\" there" 'a b'c"#).unwrap(),
            ["sh", "-c", "echo \"hi\" there", "a bc"]
        );
        assert_eq!(shell_words("  ").unwrap(), Vec::<String>::new());
        assert!(shell_words("echo 'open").is_none());
    }

    #[test]
    fn reads_go_durations() {
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration("120s"), Some(Duration::from_secs(120)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("10 parsecs"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn finds_variable_references() {
        assert_eq!(variables("${A}:$B-${C:-x} $$D"), ["A", "B", "C"]);
        assert!(variables("plain $").is_empty());
    }

    #[test]
    fn finds_lines_by_indentation() {
        let y = "services:\n  web:\n    image: x\n  db:\n    deploy:\n      replicas: 2\n";
        assert_eq!(yaml_line(y, &["services", "db", "deploy", "replicas"]), 6);
        assert_eq!(yaml_line(y, &["services", "web", "deploy"]), 2);
        assert_eq!(yaml_line(y, &["nothing"]), 0);
        let y = "services:\n  web:\n    networks: [a]\n    environment:\n      - A=1\n      - B=2\nnetworks: {}\n";
        assert_eq!(yaml_line(y, &["networks"]), 7);
        assert_eq!(yaml_line(y, &["services", "web", "environment", "B"]), 6);
    }
}
