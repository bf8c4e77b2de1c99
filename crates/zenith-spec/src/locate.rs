//! Maps between places in a TOML document and field paths, in both directions: the validator
//! knows a field (`services.web.port`) and needs its line and column; serde's errors know a
//! byte offset and need the field. serde's types carry no positions, so the document is parsed a
//! second time with `toml_edit`, which keeps the span of every key and value.

use std::ops::Range;

use toml_edit::{Document, Item, Table, TableLike, Value};

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
    /// points at the service's table). `[i]` segments index arrays and arrays of tables.
    pub(crate) fn find(&self, path: &[&str]) -> (usize, usize) {
        let mut node = Node::Item(self.doc.as_item());
        let mut best: Range<usize> = 0..0;
        for seg in path {
            let Some((span, child)) = node.child(seg) else {
                break;
            };
            if let Some(span) = span {
                best = span;
            }
            node = child;
        }
        self.position(best.start)
    }

    /// The dotted path of the deepest key or value that contains `offset`, e.g.
    /// `services.web.command[1]`; empty when the offset is outside every field.
    pub(crate) fn path_at(&self, offset: usize) -> String {
        let mut best = Vec::new();
        walk(Node::Item(self.doc.as_item()), offset, &mut Vec::new(), &mut best);
        join(&best)
    }
}

/// A place in the document: `toml_edit` keeps table fields as items, array elements as values
/// and `[[array]]` elements as tables, with no common type to walk.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d Item),
    Value(&'d Value),
    Table(&'d Table),
}

impl<'d> Node<'d> {
    fn table_like(self) -> Option<&'d dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
            Node::Table(t) => Some(t),
        }
    }

    /// The elements with their spans, when this is an array or an array of tables.
    fn elements(self) -> Vec<(Option<Range<usize>>, Node<'d>)> {
        let array = match self {
            Node::Item(Item::ArrayOfTables(a)) => {
                return a.iter().map(|t| (t.span(), Node::Table(t))).collect();
            }
            Node::Item(i) => i.as_array(),
            Node::Value(v) => v.as_array(),
            Node::Table(_) => None,
        };
        array.map_or_else(Vec::new, |a| a.iter().map(|v| (v.span(), Node::Value(v))).collect())
    }

    /// The child at a key, or at `[i]`, with the span a reader should be sent to.
    fn child(self, seg: &str) -> Option<(Option<Range<usize>>, Node<'d>)> {
        if let Some(i) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let i: usize = i.parse().ok()?;
            return self.elements().into_iter().nth(i);
        }
        let (key, child) = self.table_like()?.get_key_value(seg)?;
        let span = match child {
            // A table's own span is its whole body or nothing (dotted keys); the key sits in
            // the header, which is where a reader looks.
            Item::Table(_) => key.span(),
            _ => child.span().or_else(|| key.span()),
        };
        Some((span, Node::Item(child)))
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

fn walk(node: Node<'_>, offset: usize, path: &mut Vec<String>, best: &mut Vec<String>) {
    if let Some(table) = node.table_like() {
        for (name, _) in table.iter() {
            let Some((key, child)) = table.get_key_value(name) else {
                continue;
            };
            path.push(name.to_string());
            if (contains(key.span(), offset) || contains(child.span(), offset)) && path.len() > best.len() {
                best.clone_from(path);
            }
            // Always descend: a `[table]`'s children are not inside its header's span.
            walk(Node::Item(child), offset, path, best);
            path.pop();
        }
    }
    for (i, (span, element)) in node.elements().into_iter().enumerate() {
        path.push(format!("[{i}]"));
        if contains(span, offset) && path.len() > best.len() {
            best.clone_from(path);
        }
        walk(element, offset, path, best);
        path.pop();
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
    fn indexes_arrays_inline_tables_and_arrays_of_tables() {
        const ARRAYS: &str = "[s]\nsteps = [5, { weight = 25, pause = \"2m\" }]\n\n[[s.probes]]\npath = \"/\"\n\n[[s.probes]]\npath = \"x\"\n";
        let loc = Locator::new(ARRAYS).unwrap();
        assert_eq!(loc.find(&["s", "steps", "[0]"]), (2, 10));
        assert_eq!(loc.find(&["s", "steps", "[1]", "pause"]), (2, 36));
        assert_eq!(loc.find(&["s", "steps", "[7]"]), (2, 9), "falls back to the array");
        assert_eq!(loc.find(&["s", "probes", "[1]", "path"]), (8, 8));
        assert_eq!(loc.find(&["s", "probes", "[1]", "status"]).0, 7, "the table's header");
        let at = |needle: &str| loc.path_at(ARRAYS.find(needle).unwrap());
        assert_eq!(at("25"), "s.steps[1].weight");
        assert_eq!(at("5,"), "s.steps[0]");
        assert_eq!(at("\"x\""), "s.probes[1].path");
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\nçd = 1", 6), (2, 3));
        assert_eq!(position("", 0), (1, 1));
    }
}
