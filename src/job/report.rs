//! Collecting problems while a job file is checked: each names its dotted key and, looked up in
//! the parsed document, the line and column of that key's value.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::Problem;

/// Every problem and warning found so far, positioned in `text`.
pub(super) struct Report<'a> {
    text: &'a str,
    /// The parsed document, once it exists: keys are located in it.
    root: Option<&'a DeTable<'a>>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl<'a> Report<'a> {
    pub fn new(text: &'a str) -> Report<'a> {
        Report {
            text,
            root: None,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Locates later problems in `root`.
    pub fn locate_in(&mut self, root: &'a DeTable<'a>) {
        self.root = Some(root);
    }

    /// A problem with the value at `key` (e.g. `export[1].metrics[0]`), positioned at that value
    /// or, if it is absent, at the nearest enclosing key that is present.
    pub fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let problem = self.at_key(key.into(), message.into());
        self.problems.push(problem);
    }

    /// Like [`Report::problem`], but the job is still valid.
    pub fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let warning = self.at_key(key.into(), message.into());
        self.warnings.push(warning);
    }

    /// A problem at a known byte range of the text.
    pub fn problem_at(
        &mut self,
        key: impl Into<String>,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = line_col(self.text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        self.problems.push(Problem {
            key: key.into(),
            line,
            column,
            message: message.into(),
        });
    }

    /// A deserialization error inside the section `section`: keyed by the deepest key whose span
    /// holds the error (serde's "missing field `x`" names `section.x`). Answers the key of the
    /// offending value when the section can be read again without it, `None` when it cannot
    /// (a required key is missing, or the section itself has the wrong type). A required key
    /// that is missing only because it was `removed` after its own problem is not reported again.
    pub fn serde_error(
        &mut self,
        section: &str,
        error: &toml::de::Error,
        removed: &[String],
    ) -> Option<String> {
        let mut message = error.message().trim_end().to_string();
        let mut key = match (self.root, error.span()) {
            (Some(root), Some(span)) => key_at(root, span.start).unwrap_or_default(),
            _ => String::new(),
        };
        if !key.starts_with(section) {
            key = section.to_string();
        }
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            let key = format!("{key}.{field}");
            if !removed.contains(&key) {
                self.problem(key, "missing; this key is required");
            }
            return None;
        }
        // Serde sees a TOML date-time as a map; say what to write instead.
        if let Some(DeValue::Datetime(datetime)) = self
            .root
            .and_then(|root| value_at(root, &key))
            .map(Spanned::get_ref)
        {
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            message = format!("write times as strings: {leaf} = \"{datetime}\"");
        }
        self.problem_at(key.clone(), error.span(), message);
        (key != section).then_some(key)
    }

    /// Sorts problems and warnings into document order (file-wide ones first) and drops repeats.
    pub fn finish(&mut self) {
        for list in [&mut self.problems, &mut self.warnings] {
            list.sort_by_key(|p| (p.line, p.column));
            list.dedup();
        }
    }

    fn at_key(&self, key: String, message: String) -> Problem {
        let span = self.root.and_then(|root| locate(root, &key));
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = line_col(self.text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        Problem {
            key,
            line,
            column,
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // Back off to a character boundary, so the slice below cannot panic.
    let offset = (0..=offset)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// One step of a dotted key path: a table key, then array indices (`export[1]`).
pub(super) fn segments(key: &str) -> Vec<(&str, Vec<usize>)> {
    key.split('.')
        .filter(|s| !s.is_empty())
        .map(|segment| {
            let (name, rest) = segment.split_at(segment.find('[').unwrap_or(segment.len()));
            let indices = rest
                .split(['[', ']'])
                .filter_map(|i| i.parse().ok())
                .collect();
            (name, indices)
        })
        .collect()
}

/// The span of the value at `key`, or of the nearest ancestor that is present.
pub(super) fn locate(root: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    walk(root, key).0.map(Spanned::span)
}

/// The value at `key`, if it is present.
fn value_at<'t, 'i>(root: &'t DeTable<'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    match walk(root, key) {
        (found, true) => found,
        (_, false) => None,
    }
}

/// The deepest value on the way to `key`, and whether it is `key`'s own.
fn walk<'t, 'i>(root: &'t DeTable<'i>, key: &str) -> (Option<&'t Spanned<DeValue<'i>>>, bool) {
    let steps = segments(key);
    let mut table = root;
    let mut found = None;
    for (step, (name, indices)) in steps.iter().enumerate() {
        let Some(mut value) = table.get(*name) else {
            return (found, false);
        };
        for &index in indices {
            match value.get_ref() {
                DeValue::Array(array) if index < array.len() => value = &array[index],
                _ => return (Some(value), false),
            }
        }
        found = Some(value);
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return (found, step + 1 == steps.len()),
        }
    }
    (found, true)
}

/// The deepest dotted key whose key or value span holds `offset`.
pub(super) fn key_at(root: &DeTable<'_>, offset: usize) -> Option<String> {
    fn in_value(
        value: &Spanned<DeValue<'_>>,
        path: String,
        offset: usize,
        best: &mut Option<String>,
    ) {
        let span = value.span();
        if span.contains(&offset) && best.as_ref().is_none_or(|b| b.len() < path.len()) {
            *best = Some(path.clone());
        }
        match value.get_ref() {
            DeValue::Table(table) => in_table(table, &path, offset, best),
            DeValue::Array(array) => {
                for (i, item) in array.iter().enumerate() {
                    in_value(item, format!("{path}[{i}]"), offset, best);
                }
            }
            _ => {}
        }
    }
    fn in_table(table: &DeTable<'_>, prefix: &str, offset: usize, best: &mut Option<String>) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            if key.span().contains(&offset) && best.as_ref().is_none_or(|b| b.len() < path.len()) {
                *best = Some(path.clone());
            }
            in_value(value, path, offset, best);
        }
    }
    let mut best = None;
    in_table(root, "", offset, &mut best);
    best
}
