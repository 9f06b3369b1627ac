//! One run of one job, start to finish.
