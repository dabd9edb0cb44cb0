//! Reader for the Azure Functions 2019 trace's invocation files
//! (`invocations_per_function_md.anon.dNN.csv`): a header
//! `HashOwner,HashApp,HashFunction,Trigger,1,2,…,1440` and one row per function with its
//! invocation count for each minute of the day. Each row becomes a [`Series`] with a 60 s step.
//!
//! The reader is strict: a wrong header, a row with the wrong number of fields or a count that is not
//! a non-negative integer is an error naming the 1-based line and column (field) and what was found.
use crate::error::{Error, Result};
use crate::series::Series;
use std::path::Path;

const KEYS: [&str; 4] = ["HashOwner", "HashApp", "HashFunction", "Trigger"];

/// Reads a trace file handed to us.
pub fn read_file(path: &Path) -> Result<Vec<Series>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&path.display().to_string(), &text)
}

/// Parses trace text; `source_name` labels errors.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Series>> {
    let err = |line: usize, column: usize, message: String| Error::Parse {
        source_name: source_name.to_string(),
        line,
        column,
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let (_, header) = lines
        .next()
        .ok_or_else(|| err(1, 1, "empty file: expected a header line".into()))?;
    let head: Vec<&str> = header.split(',').collect();
    for (i, key) in KEYS.iter().enumerate() {
        match head.get(i) {
            Some(h) if h.trim() == *key => {}
            found => {
                return Err(err(
                    1,
                    i + 1,
                    format!(
                        "expected header field {key:?}, found {:?}",
                        found.unwrap_or(&"")
                    ),
                ));
            }
        }
    }
    let minutes = head.len() - KEYS.len();
    if minutes == 0 {
        return Err(err(
            1,
            KEYS.len() + 1,
            "no minute columns after Trigger".into(),
        ));
    }
    for (j, h) in head[KEYS.len()..].iter().enumerate() {
        if h.trim() != (j + 1).to_string() {
            return Err(err(
                1,
                KEYS.len() + j + 1,
                format!("expected minute column \"{}\", found {h:?}", j + 1),
            ));
        }
    }
    let mut out = Vec::new();
    for (line, row) in lines {
        if row.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split(',').collect();
        if fields.len() != head.len() {
            return Err(err(
                line,
                fields.len().min(head.len()) + 1,
                format!("expected {} fields, found {}", head.len(), fields.len()),
            ));
        }
        if fields[2].trim().is_empty() {
            return Err(err(line, 3, "empty HashFunction".into()));
        }
        let mut counts = Vec::with_capacity(minutes);
        for (j, f) in fields[KEYS.len()..].iter().enumerate() {
            let v = f.trim();
            // Some exports write counts as floats ("3.0"); accept integral floats only.
            let parsed = v.parse::<u32>().ok().or_else(|| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x <= f64::from(u32::MAX))
                    .map(|x| x as u32)
            });
            match parsed {
                Some(c) => counts.push(c),
                None => {
                    return Err(err(
                        line,
                        KEYS.len() + j + 1,
                        format!(
                            "minute {}: expected a non-negative integer count, found {v:?}",
                            j + 1
                        ),
                    ));
                }
            }
        }
        out.push(Series {
            name: fields[2].trim().to_string(),
            step_s: 60,
            counts,
        });
    }
    if out.is_empty() {
        return Err(err(2, 1, "no function rows after the header".into()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows() {
        let t = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\r\no,a,f1,http,0,5,2\no,a,f2,timer,1,1.0,1\n";
        let s = parse("t", t).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "f1");
        assert_eq!(s[0].step_s, 60);
        assert_eq!(s[0].counts, vec![0, 5, 2]);
        assert_eq!(s[1].counts, vec![1, 1, 1]);
    }

    fn pos(t: &str) -> (usize, usize) {
        match parse("t", t).unwrap_err() {
            Error::Parse { line, column, .. } => (line, column),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn malformed_reports_line_and_column() {
        let h = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n";
        assert_eq!(pos(&format!("{h}o,a,f,http,1,x,3\n")), (2, 6));
        assert_eq!(
            pos(&format!("{h}o,a,f,http,1,2,3\no,a,g,http,1,-2,3\n")),
            (3, 6)
        );
        assert_eq!(pos(&format!("{h}o,a,f,http,1,2\n")), (2, 7));
        assert_eq!(pos("HashOwner,App,HashFunction,Trigger,1\n"), (1, 2));
        assert_eq!(pos("HashOwner,HashApp,HashFunction,Trigger,1,3\n"), (1, 6));
        assert_eq!(pos(h), (2, 1));
        assert_eq!(pos(""), (1, 1));
    }
}
