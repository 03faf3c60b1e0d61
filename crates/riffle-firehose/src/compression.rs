//! The CompressionFormat codecs of S3 delivery and the file extension AWS adds for each.
