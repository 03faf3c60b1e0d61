//! AWS's custom S3 prefixes and the names of delivered objects.
