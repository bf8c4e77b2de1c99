//! Maps between places in a TOML document and field paths, in both directions: the validator
//! knows a field (`services.web.port`) and needs its line and column; serde's errors know a
//! byte offset and need the field. serde's types carry no positions, so the document is parsed a
//! second time with `toml_edit`, which keeps the span of every key and value.

use std::ops::Range;

use toml_edit::{Document, Item};

pub(crate) struct Locator<'a> {
    text: &'a str,
    doc: Document<&'a str>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str) -> Result<Locator<'a>, toml_edit::TomlError> {
        Ok(Locator {
            text,
            doc: Document::parse(text)?,
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        position(self.text, offset)
    }

    /// The position of the field at `path`: its value, or for a `[table]` its header; when the
    /// field is absent, the position of the nearest ancestor that exists (so "missing command"
    /// points at the service's table).
    pub(crate) fn find(&self, path: &[&str]) -> (usize, usize) {
        let mut item = self.doc.as_item();
        let mut best: Range<usize> = 0..0;
        for seg in path {
            let Some((key, child)) = item.as_table_like().and_then(|t| t.get_key_value(seg)) else {
                break;
            };
            let span = match child {
                // A table's own span is its whole body or nothing (dotted keys); the key sits
                // in the header, which is where a reader looks.
                Item::Table(_) => key.span(),
                _ => child.span().or_else(|| key.span()),
            };
            if let Some(span) = span {
                best = span;
            }
            item = child;
        }
        self.position(best.start)
    }

    /// The dotted path of the deepest key or value that contains `offset`, e.g.
    /// `services.web.command[1]`; empty when the offset is outside every field.
    pub(crate) fn path_at(&self, offset: usize) -> String {
        let mut best = Vec::new();
        walk(self.doc.as_item(), offset, &mut Vec::new(), &mut best);
        join(&best)
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

fn walk(item: &Item, offset: usize, path: &mut Vec<String>, best: &mut Vec<String>) {
    if let Some(table) = item.as_table_like() {
        for (name, _) in table.iter() {
            let Some((key, child)) = table.get_key_value(name) else {
                continue;
            };
            path.push(name.to_string());
            if (contains(key.span(), offset) || contains(child.span(), offset)) && path.len() > best.len() {
                best.clone_from(path);
            }
            // Always descend: a `[table]`'s children are not inside its header's span.
            walk(child, offset, path, best);
            path.pop();
        }
    } else if let Some(array) = item.as_array() {
        for (i, value) in array.iter().enumerate() {
            if contains(value.span(), offset) && path.len() + 1 > best.len() {
                best.clone_from(path);
                best.push(format!("[{i}]"));
            }
        }
    }
}

/// Dotted path, with `[i]` segments attached to the array before them.
pub(crate) fn join<S: AsRef<str>>(path: &[S]) -> String {
    let mut out = String::new();
    for seg in path {
        let seg = seg.as_ref();
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(seg);
    }
    out
}

/// 1-based line and column (in characters) of a byte offset into `text`.
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[app]\nname = \"shop\"\n\n[services.web]\ncommand = [\"a\", \"b\"]\nenv = { A = \"1\" }\n";

    #[test]
    fn finds_values_tables_and_falls_back_to_ancestors() {
        let loc = Locator::new(DOC).unwrap();
        assert_eq!(loc.find(&["app", "name"]), (2, 8));
        assert_eq!(loc.find(&["services", "web"]), (4, 11));
        assert_eq!(loc.find(&["services", "web", "replicas"]), (4, 11));
        assert_eq!(loc.find(&["services", "web", "env", "A"]), (6, 13));
        assert_eq!(loc.find(&["nothing"]), (1, 1));
    }

    #[test]
    fn names_the_field_at_an_offset() {
        let loc = Locator::new(DOC).unwrap();
        let at = |needle: &str| loc.path_at(DOC.find(needle).unwrap());
        assert_eq!(at("\"shop\""), "app.name");
        assert_eq!(at("\"b\""), "services.web.command[1]");
        assert_eq!(at("A ="), "services.web.env.A");
        assert_eq!(loc.path_at(DOC.len() + 5), "");
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\nçd = 1", 6), (2, 3));
        assert_eq!(position("", 0), (1, 1));
    }
}
