//! The plan: job + window + inventory size → ordered pages × query groups. Pure: no I/O.
