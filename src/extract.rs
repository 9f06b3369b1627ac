//! The extract stage: pages in flight with a bound, one request per (page, query group).
