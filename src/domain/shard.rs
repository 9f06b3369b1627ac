//! Sharded runs: which one of N disjoint slices of a job a run does (`--shard I/N`, `shard =
//! "I/N"`), and the name a slice's files, state and lock go under. Which series a slice holds is
//! the plan's business; this is only the address.
//!
//! The index is 0-based, as Kubernetes' `JOB_COMPLETION_INDEX` and Airflow's map index are: the
//! slices of a job split in four are `0/4` to `3/4`. `0/1` is the whole job, so it is no shard at
//! all: the same files, state and lock as a run without `--shard`.

use std::fmt;

/// The environment variable `auto/N` takes the index from: a Kubernetes Indexed Job sets it in
/// each of its pods, 0 to `completions - 1`.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Reads an environment variable (`std::env::var` in the program, a map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One of `count` disjoint slices of a job; `count` is at least 2 (see [`Shard::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why a shard could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("'{text}' is not a shard: write I/N, the 0-based index I of N slices (0/4 to 3/4)")]
    Syntax { text: String },
    #[error("'{text}': the shard count must be at least 1")]
    NoSlices { text: String },
    #[error("'{text}': the index is 0-based, so it must be less than {count} (0 to {})", count - 1)]
    IndexTooLarge { text: String, count: u32 },
    #[error(
        "'{text}' takes the index from {INDEX_ENV}, which is not set (a Kubernetes Indexed Job \
         sets it; elsewhere give the index itself)"
    )]
    NoIndex { text: String },
    #[error("'{text}' takes the index from {INDEX_ENV}, whose value '{value}' is not a number")]
    BadIndex { text: String, value: String },
}

impl Shard {
    /// Reads `I/N`; `None` for `0/1`, the whole job. With `auto_index`, `auto/N` takes the index
    /// from [`INDEX_ENV`] through `env`; without it `auto` is refused (a job file names its shard).
    pub fn parse(text: &str, env: Option<Env<'_>>) -> Result<Option<Shard>, ShardError> {
        let syntax = || ShardError::Syntax {
            text: text.to_string(),
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let count: u32 = number(count).ok_or_else(syntax)?;
        let index: u32 = match (index.trim(), env) {
            ("auto", Some(env)) => {
                let value = env(INDEX_ENV).ok_or_else(|| ShardError::NoIndex {
                    text: text.to_string(),
                })?;
                number(&value).ok_or_else(|| ShardError::BadIndex {
                    text: text.to_string(),
                    value,
                })?
            }
            (index, _) => number(index).ok_or_else(syntax)?,
        };
        if count == 0 {
            return Err(ShardError::NoSlices {
                text: text.to_string(),
            });
        }
        if index >= count {
            return Err(ShardError::IndexTooLarge {
                text: text.to_string(),
                count,
            });
        }
        Ok((count > 1).then_some(Shard { index, count }))
    }

    /// `s<I>of<N>`: what sets a slice's file, state and lock names apart.
    pub fn tag(self) -> String {
        format!("s{}of{}", self.index, self.count)
    }

    /// Reads back a [`Shard::tag`].
    pub fn from_tag(tag: &str) -> Option<Shard> {
        let (index, count) = tag.strip_prefix('s')?.split_once("of")?;
        let shard = Shard {
            index: strict_number(index)?,
            count: strict_number(count)?,
        };
        (shard.count > 1 && shard.index < shard.count).then_some(shard)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The name a job's slice keeps its files (`part-<owner>-0.parquet`), state and lock under:
/// the job's name, with `-s<I>of<N>` for a shard. Job names may not end that way themselves
/// (the job file's check), so no job's files are ever taken for another's shard's.
pub fn owner(job: &str, shard: Option<Shard>) -> String {
    match shard {
        None => job.to_string(),
        Some(shard) => format!("{job}-{}", shard.tag()),
    }
}

/// Which slice of `job` an owner name (from [`owner`]) belongs to: `Some(None)` for the whole
/// job, `Some(Some(shard))` for a shard, `None` for another job's name.
pub fn owned_by(owner: &str, job: &str) -> Option<Option<Shard>> {
    if owner == job {
        return Some(None);
    }
    let tag = owner.strip_prefix(job)?.strip_prefix('-')?;
    Shard::from_tag(tag).map(Some)
}

/// Whether a job name ends like a shard's owner name (`…-s2of4`), which would make its files
/// hard to tell from another job's shard's.
pub fn looks_like_shard_owner(name: &str) -> bool {
    name.rsplit_once('-')
        .is_some_and(|(_, tag)| Shard::from_tag(tag).is_some())
}

fn number(text: &str) -> Option<u32> {
    let text = text.trim();
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// A number as [`Shard::tag`] writes it: digits, no leading zero, no sign or space.
fn strict_number(text: &str) -> Option<u32> {
    let n = number(text)?;
    (n.to_string() == text).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Shard>, ShardError> {
        Shard::parse(text, None)
    }

    #[test]
    fn a_shard_is_a_0_based_index_of_a_count() {
        assert_eq!(parse("2/4"), Ok(Some(Shard { index: 2, count: 4 })));
        assert_eq!(parse(" 0 / 3 "), Ok(Some(Shard { index: 0, count: 3 })));
        assert_eq!(parse("0/1"), Ok(None), "one slice is the whole job");
        assert!(matches!(
            parse("4/4"),
            Err(ShardError::IndexTooLarge { count: 4, .. })
        ));
        assert!(parse("4/4").unwrap_err().to_string().contains("0 to 3"));
        assert!(matches!(parse("0/0"), Err(ShardError::NoSlices { .. })));
        for bad in [
            "", "2", "2/", "/4", "-1/4", "a/4", "1.5/4", "auto/4", "2/4/8",
        ] {
            assert!(
                matches!(parse(bad), Err(ShardError::Syntax { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn auto_takes_the_index_from_the_kubernetes_completion_index() {
        let set = |value: &'static str| move |k: &str| (k == INDEX_ENV).then(|| value.to_string());
        let three = set("3");
        assert_eq!(
            Shard::parse("auto/4", Some(&three)),
            Ok(Some(Shard { index: 3, count: 4 }))
        );
        let five = set("5");
        assert!(matches!(
            Shard::parse("auto/4", Some(&five)),
            Err(ShardError::IndexTooLarge { .. })
        ));
        let junk = set("x");
        assert!(matches!(
            Shard::parse("auto/4", Some(&junk)),
            Err(ShardError::BadIndex { .. })
        ));
        let unset = |_: &str| None;
        let error = Shard::parse("auto/4", Some(&unset)).unwrap_err();
        assert!(error.to_string().contains(INDEX_ENV), "{error}");
    }

    #[test]
    fn owner_names_read_back_and_other_jobs_names_do_not() {
        let shard = Shard { index: 2, count: 4 };
        assert_eq!(owner("nightly", None), "nightly");
        assert_eq!(owner("nightly", Some(shard)), "nightly-s2of4");
        assert_eq!(owned_by("nightly-s2of4", "nightly"), Some(Some(shard)));
        assert_eq!(owned_by("nightly", "nightly"), Some(None));
        for other in [
            "nightly-b",
            "nightly-s4of4",
            "nightly-s02of4",
            "nightly2",
            "night",
        ] {
            assert_eq!(owned_by(other, "nightly"), None, "{other}");
        }
        assert!(looks_like_shard_owner("nightly-s0of2"));
        assert!(!looks_like_shard_owner("nightly-s1of1"));
        assert!(!looks_like_shard_owner("nightly-sales"));
    }
}
