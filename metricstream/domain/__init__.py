"""The domain: values, their validation, buckets and pages. No I/O, no HTTP."""
