//! Where an output lives, as a job file or `--output` names it: a local folder (a path or a
//! `file://` URL) or an S3-compatible bucket and key prefix (`s3://bucket/prefix`). Parsed here
//! only, so that the job's validation, the load stage and the report agree on what a location is.

use std::path::PathBuf;

/// An output location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder.
    Folder(PathBuf),
    /// A bucket of an S3-compatible store and the key prefix the output lives under (no leading
    /// or trailing `/`; empty for the bucket's root).
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Reads `text`: `s3://bucket[/prefix]`, `file://path` or a plain path. Any other scheme is
    /// refused with the reason.
    pub fn parse(text: &str) -> Result<Location, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Folder(PathBuf::from(text)));
        };
        match scheme {
            "file" => Ok(Location::Folder(PathBuf::from(rest))),
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                // Bucket names as S3 allows them (3-63 of lower-case letters, digits, `.`, `-`);
                // anything else (a `user:secret@` part, a port) is refused rather than guessed.
                let valid = (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                    });
                if !valid {
                    return Err(format!(
                        "'{bucket}' is not a bucket name: 3 to 63 lower-case letters, digits, '.' or '-' (s3://bucket/prefix)"
                    ));
                }
                let prefix = prefix.trim_matches('/');
                if prefix.split('/').any(|p| p == "." || p == "..")
                    || prefix.contains("//")
                {
                    return Err(format!("'{prefix}' is not a key prefix: no empty, '.' or '..' parts"));
                }
                Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                })
            }
            other => Err(format!(
                "{other}:// outputs are not supported: use a folder, a file:// URL or s3://bucket/prefix"
            )),
        }
    }

    /// Whether the location is in an object store.
    pub fn is_object_store(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Folder(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_files_and_buckets() {
        assert_eq!(
            Location::parse("out/x"),
            Ok(Location::Folder("out/x".into()))
        );
        assert_eq!(
            Location::parse("file:///tmp/out"),
            Ok(Location::Folder("/tmp/out".into()))
        );
        let s3 = Location::parse("s3://my-bucket/exports/vscope/").unwrap();
        assert_eq!(
            s3,
            Location::S3 {
                bucket: "my-bucket".into(),
                prefix: "exports/vscope".into()
            }
        );
        assert_eq!(s3.to_string(), "s3://my-bucket/exports/vscope");
        assert_eq!(
            Location::parse("s3://my-bucket").unwrap().to_string(),
            "s3://my-bucket"
        );
    }

    #[test]
    fn bad_buckets_prefixes_and_schemes_are_refused() {
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Key:Secret@bucket/p",
            "s3://bucket:9000/p",
            "s3://bucket/a/../b",
            "s3://bucket/a//b",
            "gs://bucket/p",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}
