"""Pure OCI and Docker formats: media types, descriptors, manifest parsing, digests. No I/O."""
